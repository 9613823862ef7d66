"""Beside Table 4: how much each correction of the authors' scoring moves NSS / KL / sAUC.

The main ``score`` stages compute Table 4 with the profile's ``atari_head.alignment`` and ``score.protocol``
(the paper profile: ``authors``/``authors``, their one-frame-early gaze and their metric edge cases). The
``score_corrected`` stages score the very same models on the very same frames with one or both
corrections (``grid.score_variants``: ``aligned-authors`` = the gaze fix alone, ``authors-fls`` = the metric
fixes alone, ``aligned-fls`` = both). The change is taken per seed (corrected minus main, same checkpoint)
and then summarised over seeds, so model-to-model spread does not hide a small systematic shift.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from fls.report.inputs import METRICS, read_score
from fls.layout import GridConfig, Layout
from fls.report.tables import Table
from fls.stage_files import SCORE_SUMMARY
from fls.variants import parse_variant

NAME = "table4_corrections"


def corrected_dir(layout: Layout, variant: str, arch: str, game: str, seed: int) -> Path:
    return layout.scores / "corrected" / variant / arch / game / str(seed)


def _main_variant(layout: Layout, grid: GridConfig) -> str:
    """``<alignment>-<protocol>`` the main score stages used, from the first summary found ("?" if none)."""
    for a in grid.score_archs:
        for g in grid.score_games:
            for s in grid.seeds:
                p = layout.score_dir("attention", a, g, s) / SCORE_SUMMARY
                if p.exists():
                    d = json.loads(p.read_text())
                    return f"{d.get('alignment', 'aligned')}-{d.get('protocol', 'fls')}"
    return "?"


def _fmt(v: float, sd: float) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    return f"{v:+.3f}" + (f" ± {sd:.3f}" if sd is not None and math.isfinite(sd) else "")


def table(grid: GridConfig, layout: Layout):
    """The change each correction makes, per metric x model x game (mean ± std over seeds of the paired change)."""
    main = _main_variant(layout, grid)
    rows = []
    for variant in grid.score_variants:
        parse_variant(variant)
        for arch in grid.score_archs:
            for game in grid.score_games:
                base, corr, delta = {m: [] for m in METRICS}, {m: [] for m in METRICS}, {m: [] for m in METRICS}
                seeds = 0
                for seed in grid.seeds:
                    b = read_score(layout.score_dir("attention", arch, game, seed))
                    c = read_score(corrected_dir(layout, variant, arch, game, seed))
                    if b is None or c is None:
                        continue
                    seeds += 1
                    for m in METRICS:
                        base[m].append(b[m])
                        corr[m].append(c[m])
                        if math.isfinite(b[m]) and math.isfinite(c[m]):
                            delta[m].append(c[m] - b[m])

                def mean(v):
                    v = [x for x in v if math.isfinite(x)]
                    return float(np.mean(v)) if v else math.nan

                for m in METRICS:
                    d = np.asarray(delta[m], dtype=np.float64)
                    rows.append(
                        dict(
                            metric=m, model=arch, game=game, main=main, variant=variant, main_mean=mean(base[m]),
                            corrected_mean=mean(corr[m]), change_mean=float(d.mean()) if d.size else math.nan,
                            change_std=float(d.std()) if d.size > 1 else math.nan, seeds=seeds,
                            seeds_expected=len(grid.seeds),
                        )
                    )
    cols = ["metric", "model", "game", "main", "variant", "main_mean", "corrected_mean", "change_mean", "change_std",
            "seeds", "seeds_expected"]
    data = pd.DataFrame(rows, columns=cols)
    disp = []
    for (metric, model, variant), sub in data.groupby(["metric", "model", "variant"], sort=False):
        cells = {"metric": metric, "model": model, "correction": f"{main} → {variant}"}
        for r in sub.itertuples(index=False):
            cells[r.game] = _fmt(r.change_mean, r.change_std)
        disp.append(cells)
    display = pd.DataFrame(disp, columns=["metric", "model", "correction", *grid.score_games]).fillna("—")
    notes = [
        f"Cell: corrected minus main Table 4 value ({main}: <alignment>-<protocol> of the `score` stages), per "
        "seed on the same checkpoint and the same Atari-HEAD frames, mean ± std over seeds.",
        "Alignments: authors = gaze one frame earlier than the images (their code), aligned = the gaze of the pooled "
        "files. Protocols: authors = maps / trial max, KL zero test |s| <= 1e-8, sAUC others among all inputs; "
        "fls = per-map relative KL test, others among inputs with fixations (docs/saliency_metrics.md).",
        "Under the authors' alignment input 0 has no gaze, so the two sides average over slightly different inputs.",
    ]
    if not grid.score_variants:
        notes.insert(0, "No corrected variants in this profile (grid.score_variants is empty).")
    return Table(NAME, "Table 4 corrections: the change each correction of the scoring makes", data, display, notes)
