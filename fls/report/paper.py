"""The paper's published numbers (Tables 2-5), shipped as CSV inside the package.

They are transcribed from the paper once (``paper_tables/*.csv``) so the report can put every number
we measure next to the one the paper reports, with no network access and no path outside the repo.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

TABLES_DIR = Path(__file__).resolve().parent / "paper_tables"
FILES = {
    "table2": "table2_params.csv",
    "table3": "table3_scores.csv",
    "table4": "table4_saliency.csv",
    "table5": "table5_breakout_infinite.csv",
}
COLUMNS = {
    "table2": ["arch", "params_breakout"],
    "table3": ["arch", "game", "mean", "std"],
    "table4": ["metric", "arch", "game", "mean", "std"],
    "table5": ["arch", "game", "mean", "std"],
}


@lru_cache(maxsize=None)
def _load(name: str) -> pd.DataFrame:
    path = TABLES_DIR / FILES[name]
    if not path.exists():
        raise FileNotFoundError(f"{path}: paper table missing from the package")
    df = pd.read_csv(path)
    if list(df.columns) != COLUMNS[name]:
        raise ValueError(f"{path}: expected columns {COLUMNS[name]}, got {list(df.columns)}")
    return df


def paper_table(name: str) -> pd.DataFrame:
    """A copy of one paper table (``table2`` .. ``table5``) as a DataFrame."""
    if name not in FILES:
        raise ValueError(f"unknown paper table '{name}' (expected one of {sorted(FILES)})")
    return _load(name).copy()


def paper_params() -> dict[str, int]:
    """Table 2: parameter count with Breakout's 4 actions, for the 8 architectures the paper lists."""
    df = _load("table2")
    return {str(a): int(n) for a, n in zip(df["arch"], df["params_breakout"])}


def paper_scores() -> dict[tuple[str, str], tuple[float, float]]:
    """Table 3: (arch, game) -> (mean, std) of the evaluation score."""
    df = _load("table3")
    return {(a, g): (float(m), float(s)) for a, g, m, s in df.itertuples(index=False)}


def paper_saliency() -> dict[tuple[str, str, str], tuple[float, float]]:
    """Table 4: (metric, arch, game) -> (mean, std over seeds); metrics are nss, kl, sauc."""
    df = _load("table4")
    return {(me, a, g): (float(m), float(s)) for me, a, g, m, s in df.itertuples(index=False)}


def paper_infinite() -> dict[tuple[str, str], tuple[float, float]]:
    """Table 5: (arch, Breakout|BreakoutInfinite) -> (mean, std)."""
    df = _load("table5")
    return {(a, g): (float(m), float(s)) for a, g, m, s in df.itertuples(index=False)}
