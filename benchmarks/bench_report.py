"""Time ``fls report`` (tables, Table 3b/4b statistics, flat metrics, Figure 3 and performance profiles) on a
synthetic paper-size grid: 15 architectures x 6 games x 5 seeds = 450 training runs, each with an eval.json
of 8192 episodes, a metrics.csv curve, attention scores for the 14 attention archs on the 5 Atari-HEAD games
and BreakoutInfinite evaluations of every Breakout run. Outputs use the stages' real schemas and live in a
temporary directory. Figures 4/5 (gaze panels, perception) need trained model files and are off here.

Usage: ``python benchmarks/bench_report.py [--quick] [--episodes 8192] [--curve-rows 1000] [--keep DIR]``
(the paper's runs log 48,828 updates; --curve-rows sets how many rows each synthetic metrics.csv has).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from fls.atomic import atomic_write_json
from fls.evaluation.protocol import summarize
from fls.games import GAMES
from fls.models import ARCHS
from fls.report import build_report, figures, seed_stats
from fls.report.build import load_context
from fls.layout import Layout
from fls.scoring.score import metric_summary

SEEDS = [1, 9, 17, 25, 33]


def make_grid(root: Path, episodes: int, curve_rows: int, inputs: int) -> Path:
    rng = np.random.default_rng(0)
    archs = list(ARCHS)
    games = [GAMES[k].name for k in GAMES]
    head_games = [GAMES[k].name for k in GAMES if GAMES[k].atari_head is not None]
    attention = [a for a in archs if a != "nature_cnn"]
    layout = Layout(runs=root / "runs", evals=root / "evals", scores=root / "scores")
    for a in archs:
        for g in games + ["BreakoutInfinite"]:
            for s in SEEDS:
                rewards = np.round(rng.gamma(2.0, 100.0 + 10 * len(a), size=episodes))
                rows = [{"env": i % 16, "index_in_env": i // 16, "reward": float(r), "length_frames": 4000,
                         "length_steps": 1000, "truncated": False} for i, r in enumerate(rewards)]
                atomic_write_json(layout.eval_dir(g, a, s) / "eval.json", {"summary": summarize(rows), "episodes": rows, "game": g})
                if g == "BreakoutInfinite":
                    continue
                d = layout.run_dir(a, g, s)
                d.mkdir(parents=True, exist_ok=True)
                steps = np.arange(1, curve_rows + 1) * 1024
                pd.DataFrame({"global_step": steps, "update": np.arange(1, curve_rows + 1),
                              "eprewmean": np.cumsum(rng.random(curve_rows))}).to_csv(d / "metrics.csv", index=False)
                atomic_write_json(d / "summary.json", {"global_step": int(steps[-1])})
                if a in attention and g in head_games:
                    df = pd.DataFrame({m: rng.random(inputs) for m in ("nss", "kl", "sauc", "sauc_exact")})
                    sd = layout.score_dir("attention", a, g, s)
                    sd.mkdir(parents=True, exist_ok=True)
                    df.to_parquet(sd / "per_input.parquet", index=False)
                    atomic_write_json(sd / "summary.json", {"metrics": metric_summary(df), "synthetic_gaze": True})
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({
        "profile": "bench", "data": {"atari_head_source": "zenodo"},
        "grid": {"archs": archs, "games": games, "seeds": SEEDS, "infinite_archs": archs, "score_archs": attention,
                 "score_games": head_games, "reference_methods": [], "posthoc_methods": [], "posthoc_archs": []},
        "report": {"figures": False},
    }))
    return params


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="512 episodes per eval, 100-row curves")
    ap.add_argument("--episodes", type=int, default=8192)
    ap.add_argument("--curve-rows", type=int, default=1000)
    ap.add_argument("--inputs", type=int, default=2000, help="scored Atari-HEAD inputs per model")
    ap.add_argument("--keep", type=Path, default=None, help="write the grid here and keep it")
    args = ap.parse_args()
    if args.quick:
        args.episodes, args.curve_rows = 512, 100
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_report_"))
    try:
        t0 = time.perf_counter()
        params = make_grid(root, args.episodes, args.curve_rows, args.inputs)
        print(f"synthetic grid: 450 runs, {args.episodes} episodes per eval, {args.curve_rows}-row curves "
              f"({time.perf_counter() - t0:.1f} s to write)")
        layout = Layout(runs=root / "runs", evals=root / "evals", scores=root / "scores")
        t0 = time.perf_counter()
        build_report(params, layout.runs, layout.evals, layout.scores, root / "reports")
        t_tables = time.perf_counter() - t0
        grid = load_context(params).grid
        t0 = time.perf_counter()
        figures.write_curves(grid, layout, root / "f3.png", root / "f3.csv", "Figure 3")
        t_fig3 = time.perf_counter() - t0
        t0 = time.perf_counter()
        seed_stats.write_profiles(grid, layout, root / "pp.png", root / "pp.csv", "profiles")
        t_prof = time.perf_counter() - t0
        t3b = pd.read_csv(root / "reports" / "tables" / "table3b_iqm.csv")
        print(f"fls report (Tables 2-5, 3b, 4b, metrics.json, index.md): {t_tables:.1f} s  "
              f"[Table 3b: {len(t3b)} rows]")
        print(f"Figure 3 (450 curves): {t_fig3:.1f} s; performance profiles (6 games x 15 archs): {t_prof:.1f} s")
        print(f"total: {t_tables + t_fig3 + t_prof:.1f} s")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
