"""The authors' own results beside fls's numbers for the same weights (runs made by ``fls import-authors``).

Rows: every cell of the grid (archs x games x seeds) whose run directory is an imported one (its
``summary.json`` says ``source: authors``; the ``import_authors`` stages of ``grid.import_seeds`` make them,
or a by-hand ``fls import-authors --out runs``). Per row: the authors' evaluation (``authors/eval.json``,
from their eval.pkl) and fls's re-evaluation (``evals/<game>/<arch>/<seed>/eval.json``) with Welch's
two-sample test; and the authors' per-input saliency means (``authors/saliency.parquet``) beside fls's
attention scores (``scores/attention/.../per_input.parquet``), both on the trials both sides scored.

fls's side is filled only when the evaluation / scoring recorded the checkpoint sha256 of the imported
model.pt: an evaluation left over from other weights (a by-hand run, a trained run in the same folder)
is never shown as a re-evaluation of the authors' model.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fls.authors.importer import read_eval_reference, read_saliency_reference
from fls.authors.results import saliency_means, welch_test
from fls.report.inputs import read_eval, recorded_checkpoint_sha, run_provenance
from fls.layout import GridConfig, Layout
from fls.report.tables import MISSING, Table
from fls.stage_files import EVAL, SCORE_PER_INPUT, SCORE_SUMMARY

NAME = "authors_comparison"
SAL_METRICS = ("nss", "kl", "sauc")
COLUMNS = ["arch", "game", "seed", "authors_mean", "authors_std", "authors_n", "fls_mean", "fls_std", "fls_n", "welch_p",
           "trials", "authors_nss", "fls_nss", "authors_kl", "fls_kl", "authors_sauc", "fls_sauc"]


def imported_cells(grid: GridConfig, layout: Layout) -> list[tuple[str, str, int, str | None]]:
    """(arch, game, seed, recorded model.pt sha256) of the grid's run directories that hold the authors'
    imported weights; each summary.json is read once."""
    cells = []
    for a in grid.archs:
        for g in grid.games:
            for s in grid.seeds:
                source, sha = run_provenance(layout.run_dir(a, g, s))
                if source == "authors":
                    cells.append((a, g, s, sha))
    return cells


def comparison_table(grid: GridConfig, layout: Layout) -> pd.DataFrame:
    """One row per imported model of the grid; NaN where a side is missing (not run, no saliency.pkl)."""
    rows = []
    for arch, game, seed, sha in imported_cells(grid, layout):
        run = layout.run_dir(arch, game, seed)
        row = {c: np.nan for c in COLUMNS} | {"arch": arch, "game": game, "seed": seed, "trials": 0}
        ref = read_eval_reference(run)
        if ref is not None:
            row.update(authors_mean=ref.mean(), authors_std=ref.std(), authors_n=ref.size)
        ev_dir = layout.eval_dir(game, arch, seed)
        ours = read_eval(ev_dir) if sha and recorded_checkpoint_sha(ev_dir / EVAL, "checkpoint") == sha else None
        if ours is not None:
            row.update(fls_mean=ours.mean, fls_std=ours.std, fls_n=ours.rewards.size)
        if ref is not None and ours is not None:
            p = welch_test(ref, ours.rewards)["p"]
            row["welch_p"] = np.nan if p is None else p
        sal = read_saliency_reference(run)
        sc_dir = layout.score_dir("attention", arch, game, seed)
        scored = sha and recorded_checkpoint_sha(sc_dir / SCORE_SUMMARY, "model", "checkpoint") == sha
        if sal is not None and scored and (sc_dir / SCORE_PER_INPUT).is_file():
            fls_df = pd.read_parquet(sc_dir / SCORE_PER_INPUT)
            common = sorted(set(sal["trial_id"]) & set(fls_df["trial_id"]))
            row["trials"] = len(common)
            a, f = saliency_means(sal, common), saliency_means(fls_df, common)
            for m in SAL_METRICS:
                row[f"authors_{m}"] = np.nan if a[m]["mean"] is None else a[m]["mean"]
                row[f"fls_{m}"] = np.nan if f[m]["mean"] is None else f[m]["mean"]
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _f(v: float) -> str:
    return MISSING if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def _pm(m: float, s: float, n: float) -> str:
    return MISSING if math.isnan(m) else f"{_f(m)} ± {_f(s)} (n = {int(n)})"


def table(grid: GridConfig, layout: Layout) -> Table | None:
    """The comparison as a report table (CSV/MD/TeX, flat metrics); None when the grid imported nothing."""
    data = comparison_table(grid, layout)
    if data.empty:
        return None
    display = pd.DataFrame({
        "model (authors' weights)": [f"{r.arch} {r.game} seed {r.seed}" for r in data.itertuples(index=False)],
        "authors' eval (mean ± std)": [_pm(r.authors_mean, r.authors_std, r.authors_n) for r in data.itertuples(index=False)],
        "fls re-eval (mean ± std)": [_pm(r.fls_mean, r.fls_std, r.fls_n) for r in data.itertuples(index=False)],
        "Welch p": [_f(v) for v in data["welch_p"]],
        "trials": [str(int(v)) if v else MISSING for v in data["trials"]],
        **{f"{m.upper() if m != 'sauc' else 'sAUC'} authors / fls": [f"{_f(a)} / {_f(b)}" for a, b in
                                                                    zip(data[f"authors_{m}"], data[f"fls_{m}"])]
           for m in SAL_METRICS},
    })
    notes = [
        "Every row is one of the authors' RELEASED models (their training, converted by `fls import-authors`), "
        "not a model fls trained. Left: the authors' own numbers (their eval.pkl, saliency.pkl); right: fls's "
        "evaluation and scoring of the same weights with this profile's settings.",
        "Welch's two-sample t-test on the episode scores (unequal variances); the two samples come from "
        "different env seeds and protocols, so p says whether the protocols give the same score distribution.",
        "Saliency: mean over the defined inputs of the Atari-HEAD trials both sides scored (`trials`, matched by "
        "trial number); — where the authors published no saliency.pkl for the network or fls did not score it.",
        "fls's columns are filled only when the evaluation / scoring recorded this run's model.pt sha256.",
    ]
    return Table(NAME, "The authors' released weights: their evaluation and saliency beside fls's", data, display, notes)


def summary_sentence(t: Table) -> str:
    """One sentence for the report's index: how many models, and how far fls's evaluation is from theirs."""
    d = t.data
    both = d.dropna(subset=["authors_mean", "fls_mean"])
    text = f"{len(d)} of the authors' released models imported"
    if not len(both):
        return text + "; none has both evaluations yet."
    diff = (both["fls_mean"] - both["authors_mean"]).mean()
    low = int((both["welch_p"] < 0.05).sum())
    sal = d.dropna(subset=["authors_nss", "fls_nss"])
    text += (f"; {len(both)} evaluated by both: fls - authors mean score difference {diff:+.3g} on average, "
             f"Welch p < 0.05 for {low} of {len(both)}")
    if len(sal):
        text += f"; {len(sal)} scored by both, NSS fls - authors {(sal['fls_nss'] - sal['authors_nss']).mean():+.3g} on average"
    return text + "."
