"""Corner cases of the hidden skips that real games reach too rarely to test by playing them.

A scripted backend (the ``Backend`` protocol of fls.envs.vector) plays games whose life losses, game overs
and rewards fall on chosen skips, and logs every call, so each test can state the exact sequence of skips
that Baselines' wrappers (EpisodicLifeEnv -> FireResetEnv over the Monitor) would have run.
"""

from __future__ import annotations

import numpy as np

from fls.envs.vector import FIRE, FIRE_SECOND, NOOP, AtariVecEnv, RawStep
from fls.frames import OBS_SIZE

MEANINGS = ["NOOP", "FIRE", "RIGHT", "LEFT"]


class ScriptedBackend:
    """Every game: ``lives`` at the start, one life lost at each skip in ``lose_at`` (first game only),
    game over at skip ``over_at``, ``reward_at[k]`` points on skip k. Frames encode (game, skip) so the
    tests can tell which skip an observation came from."""

    def __init__(self, num_envs: int, *, lives: int, lose_at: set[int], over_at: int, reward_at: dict[int, float],
                 noops: int = 3):
        self.num_envs = num_envs
        self.action_meanings = list(MEANINGS)
        self.lives0, self.lose_at, self.over_at, self.reward_at, self.noops = lives, lose_at, over_at, reward_at, noops
        self.game = np.zeros(num_envs, np.int64)
        self.skip = np.zeros(num_envs, np.int64)
        self.lives = np.full(num_envs, lives, np.int64)
        self.log: list[tuple] = []

    @staticmethod
    def marker(game: int, skip: int) -> int:
        return (16 * game + skip + 1) % 256

    def _frame(self, i: int) -> np.ndarray:
        return np.full((OBS_SIZE, OBS_SIZE), self.marker(int(self.game[i]), int(self.skip[i])), np.uint8)

    def _new_game(self, i: int) -> None:
        self.game[i] += 1
        self.skip[i] = 0
        self.lives[i] = self.lives0

    def reset(self, ids, seeds):
        for i in ids.tolist():
            self.log.append(("reset", i))
            if self.log.count(("reset", i)) > 1 or self.skip[i] > 0:
                self._new_game(i)
        frames = np.stack([self._frame(i) for i in ids.tolist()])
        return frames, self.lives[ids].copy(), np.full(len(ids), self.noops, np.int64)

    def step(self, ids, actions):
        k = len(ids)
        frame = np.empty((k, OBS_SIZE, OBS_SIZE), np.uint8)
        reward, over = np.zeros(k, np.float32), np.zeros(k, bool)
        lives, noops = np.empty(k, np.int64), np.full(k, self.noops, np.int64)
        for j, (i, a) in enumerate(zip(ids.tolist(), actions.tolist())):
            self.log.append(("step", i, a))
            self.skip[i] += 1
            s = int(self.skip[i])
            reward[j] = self.reward_at.get(s, 0.0)
            if s in self.lose_at and self.game[i] == 0:
                self.lives[i] -= 1
            if s == self.over_at:
                over[j] = True
                self._new_game(i)  # SameStep autoreset: the frame is the new game's first
            frame[j], lives[j] = self._frame(i), self.lives[i]
        return RawStep(frame, reward, over, lives, noops)

    def close(self) -> None:
        pass


def _env(backend: ScriptedBackend, **kw) -> AtariVecEnv:
    return AtariVecEnv(backend, "Breakout", 0, episodic_life=True, noop_max=30, **kw)


def test_game_over_on_the_hidden_fire_after_a_lost_life_starts_the_next_game_with_action_2_only():
    # start: FIRE (skip 1), 2 (skip 2, +1); agent (skip 3) loses a life; hidden NOOP (skip 4, +5); hidden FIRE
    # (skip 5, +7) loses the last life: FireResetEnv sees done, resets (a new game), then steps action 2 only.
    b = ScriptedBackend(1, lives=2, lose_at={3, 5}, over_at=5, reward_at={2: 1.0, 4: 5.0, 5: 7.0})
    env = _env(b)
    obs = env.reset()
    assert b.log == [("reset", 0), ("step", 0, FIRE), ("step", 0, FIRE_SECOND)]
    assert (obs[0, :3] == 0).all() and (obs[0, 3] == b.marker(0, 2)).all()
    b.log.clear()
    st = env.step(np.array([3]))
    assert b.log == [("step", 0, 3), ("step", 0, NOOP), ("step", 0, FIRE), ("step", 0, FIRE_SECOND)]
    assert st.done[0] and st.game_over[0] and not st.truncated[0] and st.reward[0] == 0.0
    (ep,) = env.pop_episodes()
    # the Monitor's whole game: 5 skips (2 hidden at the start, the agent's, 2 hidden after the lost life)
    assert (ep.ret, ep.length, ep.truncated) == (13.0, 5, False)
    # the new game: its one hidden skip (action 2) is its first; zeroed stack, that skip's frame in slot 3
    assert (st.obs[0, :3] == 0).all() and (st.obs[0, 3] == b.marker(1, 1)).all()
    assert st.lives[0] == 2 and env.hidden_steps == 2 + 3


def test_cap_on_a_hidden_skip_ends_the_game_and_restarts_it_fully():
    # cap 4 skips: start FIRE (1), 2 (2); agent (3) loses a life; the hidden NOOP (4) reaches the cap.
    b = ScriptedBackend(1, lives=3, lose_at={3}, over_at=10_000, reward_at={4: 2.0})
    env = _env(b, max_episode_steps=4)
    env.reset()
    b.log.clear()
    st = env.step(np.array([0]))
    # no FIRE on the capped game: a new game (reset, its no-ops), then its hidden FIRE and action 2
    assert b.log == [("step", 0, 0), ("step", 0, NOOP), ("reset", 0), ("step", 0, FIRE), ("step", 0, FIRE_SECOND)]
    assert st.done[0] and st.truncated[0] and not st.game_over[0]
    (ep,) = env.pop_episodes()
    assert (ep.ret, ep.length, ep.truncated) == (2.0, 4, True)
    assert (st.obs[0, :3] == 0).all() and (st.obs[0, 3] == b.marker(1, 2)).all()
    assert st.lives[0] == 3
    # the new game's cap counts from its own start: its 2 hidden skips, then 2 agent steps reach 4
    b.log.clear()
    st1 = env.step(np.array([0]))
    assert not st1.done[0] and b.log == [("step", 0, 0)]
    st2 = env.step(np.array([0]))
    assert st2.truncated[0] and env.pop_episodes()[0].length == 4

