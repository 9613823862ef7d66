"""BreakoutInfinite on the real Breakout ROM: crafted RAM states show that the score rewrite brings the wall
back, that plain Breakout does not, and that the reward stream stays the true score."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import fls  # noqa: F401  (registers the id)
from fls.envs import make_eval_env
from fls.envs.breakout_infinite import (
    BRICK_BYTES,
    SCORE_HUNDREDS,
    SCORE_TENS_ONES,
    BreakoutInfiniteEnv,
    make_breakout_infinite,
    ram_score,
    write_ram_score,
)
from fls.envs.registration import BREAKOUT_INFINITE_ID

BRICK_ROWS = slice(57, 93)  # screen rows of the six brick rows
PLAY_COLS = slice(8, 152)  # between the side walls
LIVES_BYTE = 57  # ALE reads Breakout's lives from RAM 0xB9
PADDLE_X, BALL_X = 72, 99


def _raw(env_id: str):
    return gym.make(env_id, frameskip=1, repeat_action_probability=0.0, max_num_frames_per_episode=None).unwrapped


def _brick_pixels(rgb: np.ndarray) -> int:
    return int(rgb[BRICK_ROWS, PLAY_COLS].any(axis=2).sum())


def _clear_all_but_bottom_row_and_play(env, start_score: int, max_frames: int = 4000):
    """Serve, leave only the bottom (1-point) row, set the score, then follow the ball with the paddle.

    Returns per-frame rewards, the RAM brick bytes of a full wall, the frame at which the full wall was
    back (None if never) and the final observation.
    """
    obs, _ = env.reset(seed=0)
    full_wall = env.ale.getRAM()[BRICK_BYTES].copy()
    full_pixels = _brick_pixels(obs)
    rewards = [env.step(1)[1]]  # FIRE serves the ball
    rewards += [env.step(0)[1] for _ in range(60)]
    bottom_row = np.arange(36) % 6 == 0  # bytes 0, 6, ..., 30: the 18 one-point bricks
    for i in np.flatnonzero(~bottom_row):
        env.ale.setRAM(int(i), 0)
    write_ram_score(env.ale, start_score)
    respawned = None
    for t in range(max_frames):
        ram = env.ale.getRAM()
        env.ale.setRAM(LIVES_BYTE, 5)  # never run out of lives while the wall is being cleared
        paddle, ball = int(ram[PADDLE_X]), int(ram[BALL_X])
        if t % 40 == 0:
            a = 1
        elif ball == 0:
            a = 0
        else:
            a = 2 if ball > paddle + 8 else (3 if ball < paddle + 4 else 0)
        obs, r, term, _trunc, info = env.step(a)
        rewards.append(r)
        assert not term
        if np.array_equal(env.ale.getRAM()[BRICK_BYTES], full_wall):
            respawned = t
            break
    return np.array(rewards), full_pixels, respawned, obs


def test_registered_and_rejects_frame_skip():
    env = gym.make(BREAKOUT_INFINITE_ID)
    assert isinstance(env.unwrapped, BreakoutInfiniteEnv)
    assert env.unwrapped.get_action_meanings() == ["NOOP", "FIRE", "RIGHT", "LEFT"]
    env.close()
    with pytest.raises(ValueError, match="frameskip"):
        gym.make(BREAKOUT_INFINITE_ID, frameskip=4)


def test_score_bytes_are_where_ale_reads_the_reward():
    env = _raw("BreakoutNoFrameskip-v4")
    env.reset(seed=0)
    assert ram_score(env.ale.getRAM()) == 0
    env.ale.setRAM(SCORE_HUNDREDS, 0x03)
    env.ale.setRAM(SCORE_TENS_ONES, 0x57)
    assert ram_score(env.ale.getRAM()) == 357
    # ALE's Breakout reward is the change of this BCD score
    assert env.step(0)[1] == 357
    env.close()


def test_wall_respawns_after_864_and_rewards_stay_the_true_score():
    env = _raw(BREAKOUT_INFINITE_ID)
    rewards, full_pixels, respawned, obs = _clear_all_but_bottom_row_and_play(env, 864 - 18)
    assert respawned is not None, "the wall did not come back"
    assert env.rewrites == 1
    assert rewards.min() >= 0  # ALE alone reports -432 on the frame after the rewrite
    assert rewards.sum() == env.true_score == 864  # 846 written + the 18 bottom bricks
    assert ram_score(env.ale.getRAM()) == 432
    # the bricks are drawn again: nearly the whole brick band is coloured once more
    obs = env.step(0)[0]
    assert _brick_pixels(obs) >= 0.95 * full_pixels
    env.close()


def test_plain_breakout_keeps_the_screen_empty_after_864():
    env = _raw("BreakoutNoFrameskip-v4")
    rewards, full_pixels, respawned, obs = _clear_all_but_bottom_row_and_play(env, 864 - 18, max_frames=2500)
    assert respawned is None
    assert ram_score(env.ale.getRAM()) == 864 and rewards.sum() == 864
    assert _brick_pixels(obs) < 0.05 * full_pixels
    env.close()


def test_rewrite_keeps_the_excess_over_864():
    env = _raw(BREAKOUT_INFINITE_ID)
    env.reset(seed=0)
    write_ram_score(env.ale, 870)  # as if a 7-point brick took the score from 863 to 870
    _, r, *_ , info = env.step(0)
    assert r == 870 and info["true_score"] == 870
    assert ram_score(env.ale.getRAM()) == 438
    _, r, *_ , info = env.step(0)
    assert r == 0 and info["true_score"] == 870  # no -432
    env.close()


def _assert_same_steps(a_env, b_env, *, num_envs: int, steps: int, seed: int) -> None:
    """Step two vector envs with the same random Breakout actions; every VecStep field must match."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        actions = rng.integers(0, 4, num_envs)
        sa, sb = a_env.step(actions), b_env.step(actions)
        for field in sa._fields:
            assert np.array_equal(getattr(sa, field), getattr(sb, field)), field


def test_eval_env_for_breakout_infinite_matches_cpp_breakout_before_864():
    """The Python backend and the C++ backend play the same Breakout byte for byte (no-op starts off)."""
    py = make_eval_env("BreakoutInfinite", 2, 1000, 30_000, noop_max=0)
    cpp = make_eval_env("Breakout", 2, 1000, 30_000, noop_max=0)
    assert py.action_meanings == cpp.action_meanings and py.num_actions == 4
    assert np.array_equal(py.reset(), cpp.reset())
    assert py.env_seeds == cpp.env_seeds == [1000, 1001]
    _assert_same_steps(py, cpp, num_envs=2, steps=250, seed=0)
    assert py.pop_episodes() == cpp.pop_episodes()
    py.close()
    cpp.close()


def test_single_env_form():
    env = make_breakout_infinite(seed=3, noop_max=0)
    obs, info = env.reset()
    assert obs.shape == (4, 84, 84) and info["lives"] == 5
    assert isinstance(env.core.raw, BreakoutInfiniteEnv)
    env.close()


def test_eval_env_worker_processes_match_in_process_stepping():
    local = make_eval_env("BreakoutInfinite", 3, 50, 30_000)
    workers = make_eval_env("BreakoutInfinite", 3, 50, 30_000, num_workers=2)
    try:
        assert np.array_equal(local.reset(), workers.reset())  # same seeds, same no-op draws
        _assert_same_steps(local, workers, num_envs=3, steps=150, seed=1)
    finally:
        local.close()
        workers.close()
