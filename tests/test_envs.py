"""The vector env's Baselines semantics, checked on real ALE games (fls.envs.vector / fls.envs.single)."""

from __future__ import annotations

import numpy as np
import pytest

from fls.envs import EnvConfigError, make_eval_env, make_vector_env
from fls.envs.single import make_single_env
from fls.games import GAMES


def test_vector_and_single_paths_give_identical_observations_through_life_losses():
    """C++ backend and the Python single env (same Baselines logic over AtariCore) agree byte for byte."""
    v = make_vector_env("Breakout", 1, 7, noop_max=0)
    s = make_single_env("Breakout", seed=7, noop_max=0, episodic_life=True)
    ov = v.reset()
    os_, _ = s.reset()
    assert np.array_equal(ov[0], os_)
    rng = np.random.default_rng(0)
    kinds = []
    for t in range(1500):
        a = int(rng.integers(0, v.num_actions))
        st = v.step(np.array([a]))
        o, r, term, trunc, info = s.step(a)
        assert np.array_equal(st.obs[0], o), f"observations differ at step {t}"
        assert st.reward[0] == r and bool(st.done[0]) == (term or trunc)
        if st.done[0]:
            kinds.append("game_over" if st.game_over[0] else "life")
            if st.game_over[0]:
                break
            o, _ = s.reset()  # the game goes on: reset hands back the already restarted observation
            assert np.array_equal(st.obs[0], o)
    assert kinds == ["life"] * 4 + ["game_over"]  # Breakout: 5 lives, the last loss is the game over
    v.close()
    s.close()


def test_reset_observation_is_zero_padded_stack():
    env = make_vector_env("Breakout", 2, 3, noop_max=0)
    obs = env.reset()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert not obs[:, :3].any() and obs[:, 3].any()
    env.close()


def test_life_loss_ends_learning_episode_zeroes_the_stack_and_stats_span_the_whole_game():
    env = make_vector_env("Breakout", 2, 11, noop_max=0)
    env.reset()
    rng = np.random.default_rng(1)
    length = np.zeros(2, int)
    lives_before = np.full(2, 5)
    life_losses = np.zeros(2, int)
    games = []
    while len(games) < 4:
        st = env.step(rng.integers(0, 4, 2))
        length += 1
        lost = st.done & ~st.game_over & ~st.truncated
        assert np.all(st.lives[lost] == lives_before[lost] - 1)
        life_losses += lost
        for i in np.flatnonzero(st.done):
            # VecFrameStack: zeros, then the first frame after the hidden NOOP / FIRE / action-2 skips
            assert not st.obs[i, :3].any() and st.obs[i, 3].any()
        for i in np.flatnonzero(~st.done):
            assert st.obs[i, 3].any()
        for i in np.flatnonzero(st.game_over):
            assert st.lives[i] == 5
            games.append((i, length[i], life_losses[i]))
            length[i], life_losses[i] = 0, 0
        lives_before = st.lives.copy()
    eps = env.pop_episodes()
    assert env.pop_episodes() == []
    assert [e.env for e in eps] == [i for i, _, _ in games]
    for e, (_, steps, losses) in zip(eps, games):
        assert losses == 4  # four learning episodes ended by lost lives inside each whole game
        # the Monitor counts the hidden skips: FIRE + action 2 at the start, NOOP + FIRE + 2 per lost life
        assert e.length == steps + 2 + 3 * 4
        assert e.frames == 4 * e.length and not e.truncated
    env.close()


def test_hidden_fire_serves_the_ball_after_a_lost_life():
    """An agent that only sends NOOP keeps losing lives only because FIRE is pressed for it, hidden."""

    def noop_play(fire_reset: bool):
        env = make_vector_env("Breakout", 1, 9, fire_reset=fire_reset)
        env.reset()
        lost = 0
        for _ in range(1500):
            st = env.step(np.array([0]))
            lost += int(st.done[0] and not st.game_over[0])
            if st.game_over[0]:
                break
        env.close()
        return bool(st.game_over[0]), lost, env.hidden_steps

    # 2 hidden skips at the start, 3 after each of the 4 lost lives, 2 for the next game's start
    assert noop_play(True) == (True, 4, 2 + 3 * 4 + 2)
    # Without FireResetEnv the ball is never served: no life is lost; only EpisodicLife's NOOP would be hidden.
    assert noop_play(False) == (False, 0, 0)


def test_hidden_skips_step_only_the_env_that_needs_them():
    """Env 1 of a 2-env vector plays exactly as a 1-env vector seeded like it, whatever env 0 does."""
    rng = np.random.default_rng(6)
    acts = rng.integers(0, 4, (600, 2))
    pair = make_vector_env("Breakout", 2, 40)
    alone = make_vector_env("Breakout", 1, 41)
    assert np.array_equal(pair.reset()[1], alone.reset()[0])
    dones = np.zeros(2, int)
    for a in acts:
        sp, sa = pair.step(a), alone.step(a[1:])
        dones += sp.done
        assert np.array_equal(sp.obs[1], sa.obs[0]) and sp.reward[1] == sa.reward[0] and sp.done[1] == sa.done[0]
    assert dones.min() >= 2 and (dones[0] != dones[1] or dones[0] > 0)
    pair.close()
    alone.close()


@pytest.mark.parametrize("game", ["Breakout", "BreakoutInfinite"])
def test_start_noops_are_uniform_in_one_to_noop_max(game):
    """Baselines' NoopResetEnv: randint(1, noop_max + 1) raw no-op frames (ALE alone would draw 0..k-1)."""
    draws = []
    for seed in range(0, 240, 8):
        env = make_eval_env(game, 8, seed, noop_max=3)
        env.reset()
        draws += env._noops.tolist()
        env.close()
    assert set(draws) == {1, 2, 3}


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
    assert e.ret >= total[e.env] and e.ret > 1  # the Monitor also counts the hidden skips' points
    env.close()


def test_without_episodic_life_done_comes_only_at_game_over():
    env = make_eval_env("Breakout", 1, 21, noop_max=0, episodic_life=False)
    env.reset()
    rng = np.random.default_rng(3)
    dones = lost = 0
    lives = 5
    while True:
        st = env.step(rng.integers(0, 4, 1))
        lost += int(st.lives[0] < lives)
        lives = st.lives[0]
        if st.done[0]:
            dones += 1
            assert st.game_over[0]
            break
    assert dones == 1 and lost == 4
    assert env.hidden_steps == 4  # FIRE + action 2 at each game start only, none after a lost life
    env.close()


def test_truncation_at_the_step_cap_counts_hidden_skips_and_is_reported_separately():
    env = make_vector_env("Breakout", 1, 4, max_episode_steps=50, episodic_life=False)
    env.reset()
    steps = 0
    while True:
        st = env.step(np.array([0]))  # NOOP: at most a lost life within 50 steps, no game over
        steps += 1
        if st.done[0]:
            break
    assert st.truncated[0] and not st.game_over[0]
    (e,) = env.pop_episodes()
    assert e.truncated and e.length == 50 and steps == 48  # 2 hidden start skips count in the cap
    assert not st.obs[0, :3].any()  # a new game: zeroed stack
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
    # (4 envs: two seeds can draw the same of the 30 no-op counts; here seeds 100 and 101 both draw 16)
    same, _ = run(100, np.repeat(actions[:, :1], 4, axis=1))
    assert any(not np.array_equal(same[:, 0], same[:, k]) for k in (1, 2, 3))


@pytest.mark.parametrize("name", list(GAMES))
def test_action_sets_and_fire_after_life_loss(name):
    env = make_vector_env(name, 1, 0)
    assert env.num_actions == GAMES[name].num_actions == len(env.action_meanings)
    assert env.action_meanings[0] == "NOOP"
    # Baselines' FireResetEnv applies only where action 1 is FIRE: all games but MsPacman.
    assert env.fire_reset == (name != "MsPacman")
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
    with pytest.raises(EnvConfigError, match="max_episode_steps: expected a positive integer"):
        make_vector_env("Breakout", 1, 0, max_episode_steps=0)
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
    while True:
        obs, r, term, trunc, info = env.step(int(rng.integers(0, 4)))
        assert r in (-1.0, 0.0, 1.0)
        if term or trunc:
            lives_seen.append(info["lives"])
            assert not obs[:3].any()
            if "episode" in info:
                break
            obs, info = env.reset()  # the game goes on after a lost life
            assert info["lives"] == lives_seen[-1]
    assert lives_seen == [4, 3, 2, 1, 5]  # the game over already shows the next game's lives
    assert info["game_over"] and info["episode"]["r"] >= 0
    env.close()
