"""``fls env trace`` against a plain re-statement of Baselines' wrappers (tests/baselines_reference.py).

Breakout and SpaceInvaders render so that ALE's gray-then-max equals Baselines' RGB-max-then-gray, so the
traces must match byte for byte, across lost lives and game overs (no-op starts off: ``--noop-max 0``,
the only randomness that the two stacks draw from different generators). For the games where the order
of max and gray matters, benchmarks/reference_diff.py measures the difference (docs/environments.md).
"""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from baselines_reference import ReferenceEnv
from fls.envs.trace import TRACE_FIELDS, TraceConfig, trace_env
from fls.games import get_game
from pipeline.app import app


@pytest.mark.parametrize("game, steps", [("Breakout", 2500), ("SpaceInvaders", 2000)])
def test_trace_matches_the_baselines_wrapper_stack_byte_for_byte(game, steps):
    tr = trace_env(TraceConfig(game=game, steps=steps, actions_seed=3, seed=5, noop_max=0))
    ref = ReferenceEnv(get_game(game).rom, 5, noop_max=0)
    assert np.array_equal(ref.reset(), tr["obs"][0])
    assert tr["lives"][0] == ref.raw.ale.lives()
    for t in range(steps):
        obs, r, done, game_over, lives = ref.step(int(tr["actions"][t]))
        assert np.array_equal(obs, tr["obs"][t + 1]), f"{game}: observation after step {t} differs"
        assert (r, done, game_over, lives) == (tr["reward"][t], tr["done"][t], tr["game_over"][t], tr["lives"][t + 1]), t
    lost = tr["done"] & ~tr["game_over"]
    assert lost.sum() >= 4 and tr["game_over"].sum() >= 1  # several lost lives and a game over were checked
    after = np.flatnonzero(tr["done"]) + 1
    assert not tr["obs"][after, :3].any() and tr["obs"][after, 3].any(axis=(1, 2)).all()  # zeroed stacks
    if game == "SpaceInvaders":
        assert tr["reward"].max() > 1  # raw, unclipped (invaders are worth 5..30)


def test_cli_trace_writes_the_documented_npz(tmp_path):
    out = tmp_path / "trace.npz"
    res = CliRunner().invoke(app, ["env", "trace", "--game", "MsPacman", "--steps", "40", "--actions-seed", "1",
                                   "--noop-max", "5", "--no-episodic-life", "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    with np.load(out, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(TRACE_FIELDS)
        assert z["obs"].shape == (41, 4, 84, 84) and z["obs"].dtype == np.uint8
        assert z["lives"].shape == (41,) and z["reward"].dtype == np.float32
        assert np.array_equal(z["actions"], np.random.default_rng(1).integers(0, 9, 40))
        for k in ("done", "game_over"):
            assert z[k].shape == (40,) and z[k].dtype == bool
    res = CliRunner().invoke(app, ["env", "trace", "--game", "Pong", "--steps", "4", "--actions-seed", "1",
                                   "--out", str(tmp_path / "x.npz")])
    assert res.exit_code == 2 and res.output.startswith("error:") and "unknown game" in res.output
    assert not (tmp_path / "x.npz").exists()
