"""The authors' own results beside fls's numbers for the same weights (imported with ``fls import-authors``).

Per imported model: the authors' evaluation (``authors/eval.json``, from their eval.pkl) and fls's
re-evaluation of the converted weights (``evals/<game>/<arch>/<seed>/eval.json``), with Welch's two-sample
test; and the authors' per-input saliency means (``authors/saliency.parquet``) beside fls's scores
(``scores/attention/.../per_input.parquet``), both restricted to the trials both sides scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fls.authors.importer import read_eval_reference, read_index, read_saliency_reference
from fls.authors.results import saliency_means, welch_test
from fls.report.inputs import read_eval
from fls.report.layout import Layout

COLUMNS = ["arch", "game", "seed", "authors_mean", "authors_std", "authors_n", "fls_mean", "fls_std", "fls_n", "welch_p",
           "trials", "authors_nss", "fls_nss", "authors_kl", "fls_kl", "authors_sauc", "fls_sauc"]


def comparison_table(authors_root: Path, layout: Layout) -> pd.DataFrame:
    """One row per imported model; NaN where a side is missing (not run, or no saliency.pkl)."""
    index = read_index(authors_root)
    rows = []
    for e in (index or {}).get("models", []):
        arch, game, seed = e["arch"], e["game"], int(e["seed"])
        run = Path(authors_root) / arch / game / str(seed)
        row = {c: np.nan for c in COLUMNS} | {"arch": arch, "game": game, "seed": seed, "trials": 0}
        ref = read_eval_reference(run)
        if ref is not None:
            row.update(authors_mean=ref.mean(), authors_std=ref.std(), authors_n=ref.size)
        ours = read_eval(layout.eval_dir(game, arch, seed))
        if ours is not None:
            row.update(fls_mean=ours.mean, fls_std=ours.std, fls_n=ours.rewards.size)
        if ref is not None and ours is not None:
            p = welch_test(ref, ours.rewards)["p"]
            row["welch_p"] = np.nan if p is None else p
        sal = read_saliency_reference(run)
        per_input = layout.score_dir("attention", arch, game, seed) / "per_input.parquet"
        if sal is not None and per_input.is_file():
            fls_df = pd.read_parquet(per_input)
            common = sorted(set(sal["trial_id"]) & set(fls_df["trial_id"]))
            row["trials"] = len(common)
            a, f = saliency_means(sal, common), saliency_means(fls_df, common)
            for m in ("nss", "kl", "sauc"):
                row[f"authors_{m}"] = np.nan if a[m]["mean"] is None else a[m]["mean"]
                row[f"fls_{m}"] = np.nan if f[m]["mean"] is None else f[m]["mean"]
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def to_markdown(df: pd.DataFrame) -> str:
    def f(v: float) -> str:
        return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3g}"

    lines = [
        "| model | authors' eval (mean ± std, n) | fls re-eval (mean ± std, n) | Welch p | trials | NSS authors / fls | KL authors / fls | sAUC authors / fls |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in df.itertuples(index=False):
        lines.append(
            f"| {r.arch} {r.game} seed {r.seed} | {f(r.authors_mean)} ± {f(r.authors_std)} ({f(r.authors_n)}) "
            f"| {f(r.fls_mean)} ± {f(r.fls_std)} ({f(r.fls_n)}) | {f(r.welch_p)} | {r.trials} "
            f"| {f(r.authors_nss)} / {f(r.fls_nss)} | {f(r.authors_kl)} / {f(r.fls_kl)} | {f(r.authors_sauc)} / {f(r.fls_sauc)} |"
        )
    return "\n".join(lines) + "\n"
