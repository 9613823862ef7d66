"""The vector env's Baselines semantics, checked on real ALE games (fls.envs.vector / fls.envs.single)."""

from __future__ import annotations

import numpy as np
import pytest

from fls.envs import EnvConfigError, make_eval_env, make_vector_env
from fls.envs.single import make_single_env
from fls.games import GAMES


def _play_aligned(game: str, seed: int, steps: int, rng_seed: int = 0):
    """Step the C++ vector env and the Python single env with the same actions; yield both results.

    The single env performs the FIRE after a lost life inside ``step``; the vector env does it as a
    separate forced step, which this helper takes right away so that the two stay aligned.
    """
    v = make_vector_env(game, 1, seed, noop_max=0, num_threads=1)
    s = make_single_env(game, seed=seed, noop_max=0)
    ov = v.reset()
    os_, _ = s.reset()
    yield "reset", ov[0], os_, None, None
    rng = np.random.default_rng(rng_seed)
    for _ in range(steps):
        a = int(rng.integers(0, v.num_actions))
        st = v.step(np.array([a]))
        assert st.valid[0]
        o, r, term, trunc, info = s.step(a)
        if v.pending_fire[0]:
            assert st.done[0] and not st.game_over[0]
            fire = v.step(np.array([a]))
            assert not fire.valid[0]
            r_v = st.reward[0] + fire.reward[0]
            yield "life", fire.obs[0], o, (r_v, r), (st, info)
            continue
        if term or trunc:
            o2, _ = s.reset()
            yield "game_over", st.obs[0], o2, (st.reward[0], r), (st, info)
            v.close()
            return
        yield "step", st.obs[0], o, (st.reward[0], r), (st, info)
    v.close()


def test_vector_and_single_paths_give_identical_observations_through_life_losses():
    kinds = []
    for kind, ov, os_, rewards, _ in _play_aligned("Breakout", seed=7, steps=1500):
        kinds.append(kind)
        assert ov.shape == os_.shape == (4, 84, 84) and ov.dtype == os_.dtype == np.uint8
        assert np.array_equal(ov, os_), f"observations differ at step {len(kinds)} ({kind})"
        if rewards is not None:
            assert rewards[0] == rewards[1]
    assert kinds.count("life") == 4  # Breakout: 5 lives, the last loss is the game over
    assert kinds[-1] == "game_over"


def test_reset_observation_is_zero_padded_stack():
    env = make_vector_env("Breakout", 2, 3, noop_max=0)
    obs = env.reset()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert not obs[:, :3].any() and obs[:, 3].any()
    env.close()


def test_life_loss_ends_learning_episode_fire_is_forced_and_stats_span_the_whole_game():
    env = make_vector_env("Breakout", 2, 11, noop_max=0)
    first_obs = env.reset()
    rng = np.random.default_rng(1)
    pending = np.zeros(2, bool)
    ret = np.zeros(2)
    length = np.zeros(2, int)
    lives_before = np.full(2, 5)
    life_losses = np.zeros(2, int)
    games = []
    while len(games) < 4:
        st = env.step(rng.integers(0, 4, 2))
        assert np.array_equal(st.valid, ~pending), "only the step after a lost life is forced"
        ret += st.reward
        length += 1
        lost = st.done & ~st.game_over & ~st.truncated
        assert np.all(st.lives[lost] == lives_before[lost] - 1)
        life_losses += lost
        pending = lost  # Breakout's action 1 is FIRE
        assert np.array_equal(env.pending_fire, pending)
        for i in np.flatnonzero(st.game_over):
            # SameStep autoreset: the game-over step already returns the new game's first frame
            # (noop_max=0 makes it the same frame as at the first reset); no reset step follows.
            assert np.array_equal(st.obs[i], first_obs[i])
            assert st.lives[i] == 5 and not pending[i]
            games.append((i, ret[i], length[i], life_losses[i]))
            ret[i], length[i], life_losses[i] = 0, 0, 0
        lives_before = st.lives.copy()
    eps = env.pop_episodes()
    assert env.pop_episodes() == []
    assert [(e.env, e.ret, e.length) for e in eps] == [(i, r, n) for i, r, n, _ in games]
    for e, (_, _, _, losses) in zip(eps, games):
        assert losses == 4  # four learning episodes ended by lost lives inside each whole game
        assert e.frames == 4 * e.length and not e.truncated
    env.close()


def test_forced_fire_serves_the_ball_after_a_lost_life():
    """An agent that only sends NOOP keeps losing lives only because FIRE is pressed for it."""

    def noop_play(fire_on_life_loss: bool):
        env = make_vector_env("Breakout", 1, 9, fire_on_life_loss=fire_on_life_loss)
        env.reset()
        forced = 0
        for _ in range(1500):
            st = env.step(np.array([0]))
            forced += int(not st.valid[0])
            if st.game_over[0]:
                break
        env.close()
        return bool(st.game_over[0]), forced, int(st.lives[0])

    assert noop_play(True) == (True, 4, 5)  # 4 lost lives each followed by FIRE, then game over (new game)
    # Without it the ball stays on the paddle after the first lost life (reset served the first ball).
    assert noop_play(False) == (False, 0, 4)


def test_episode_returns_are_unclipped():
    env = make_vector_env("SpaceInvaders", 2, 5)
    env.reset()
    rng = np.random.default_rng(2)
    total = np.zeros(2)
    seen = set()
    eps = []
    while not eps:
        st = env.step(rng.integers(0, env.num_actions, 2))
        seen.update(st.reward.tolist())
        total += st.reward
        eps = env.pop_episodes()
    assert max(seen) > 1  # invaders are worth 5..30 points; a clipped stream would only hold 0 and 1
    e = eps[0]
    assert e.ret == total[e.env] and e.ret > 1
    env.close()


def test_without_episodic_life_done_comes_only_at_game_over():
    env = make_eval_env("Breakout", 1, 21, 108_000, noop_max=0)
    env.reset()
    rng = np.random.default_rng(3)
    dones = forced = 0
    while True:
        st = env.step(rng.integers(0, 4, 1))
        forced += int(not st.valid[0])
        if st.done[0]:
            dones += 1
            assert st.game_over[0]
            break
    assert forced == 4 and dones == 1  # FIRE still pressed after each of the 4 lost lives
    env.close()


def test_truncation_at_the_frame_cap_is_reported_separately():
    env = make_vector_env("Breakout", 1, 4, max_episode_frames=200, episodic_life=False)
    env.reset()
    steps = 0
    while True:
        st = env.step(np.array([0]))  # NOOP: at most a lost life or two within 200 frames, no game over
        steps += 1
        if st.done[0]:
            break
    assert st.truncated[0] and not st.game_over[0]
    (e,) = env.pop_episodes()
    assert e.truncated and e.length == steps == 50
    env.close()


def test_seeding_is_deterministic_and_env_i_gets_seed_plus_i():
    rng = np.random.default_rng(4)
    actions = rng.integers(0, 9, (150, 3))

    def run(seed, acts):
        env = make_vector_env("MsPacman", acts.shape[1], seed)
        obs = [env.reset()] + [env.step(a).obs for a in acts]
        seeds = env.env_seeds
        env.close()
        return np.stack(obs), seeds

    a, seeds_a = run(100, actions)
    b, _ = run(100, actions)
    c, seeds_c = run(101, actions[:, 1:2])
    assert seeds_a == [100, 101, 102] and seeds_c == [101]
    assert np.array_equal(a, b)
    # env 1 of a seed-100 env plays exactly like env 0 of a seed-101 env given the same actions
    assert np.array_equal(c[:, 0], a[:, 1])
    # the same actions from differently seeded envs give different games (different no-op starts)
    same, _ = run(100, np.repeat(actions[:, :1], 2, axis=1))
    assert not np.array_equal(same[:, 0], same[:, 1])


@pytest.mark.parametrize("name", list(GAMES))
def test_action_sets_and_fire_after_life_loss(name):
    env = make_vector_env(name, 1, 0)
    assert env.num_actions == GAMES[name].num_actions == len(env.action_meanings)
    assert env.action_meanings[0] == "NOOP"
    # Baselines' FireResetEnv applies only where action 1 is FIRE: all games but MsPacman.
    assert env.fire_after_life_loss == (name != "MsPacman")
    assert (env.action_meanings[1] == "FIRE") == (name != "MsPacman")
    env.close()


def test_bad_input_is_rejected_with_clear_errors():
    with pytest.raises(ValueError, match="unknown game"):
        make_vector_env("Pong", 2, 0)
    with pytest.raises(EnvConfigError, match="make_eval_env"):
        make_vector_env("BreakoutInfinite", 2, 0)
    with pytest.raises(EnvConfigError, match="seed"):
        make_vector_env("Breakout", 2, -1)
    with pytest.raises(EnvConfigError, match="num_envs"):
        make_vector_env("Breakout", 0, 0)
    env = make_vector_env("Breakout", 2, 0)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.zeros(2, int))
    env.reset()
    with pytest.raises(EnvConfigError, match="shape"):
        env.step(np.zeros(3, int))
    with pytest.raises(EnvConfigError, match="values"):
        env.step(np.array([0, 4]))
    env.close()


def test_single_env_wrappers():
    env = make_single_env("Breakout", seed=2, noop_max=0, episodic_life=True, clip_rewards=True)
    obs, info = env.reset()
    assert obs.shape == (4, 84, 84) and info["lives"] == 5
    assert env.render().shape == (210, 160, 3)
    rng = np.random.default_rng(5)
    lives_seen = []
    raw, clipped = 0.0, 0.0
    while True:
        obs, r, term, trunc, info = env.step(int(rng.integers(0, 4)))
        raw += info["raw_reward"]
        clipped += r
        assert r in (-1.0, 0.0, 1.0)
        if term or trunc:
            lives_seen.append(info["lives"])
            if "episode" in info:
                break
            obs, info = env.reset()  # the game goes on after a lost life (one hidden FIRE step)
            raw += info["raw_reward"]
            assert info["lives"] == lives_seen[-1]
    assert lives_seen == [4, 3, 2, 1, 0]
    assert info["episode"]["r"] == raw
    env.close()
