"""The report's "What this run shows" paragraph, written from the tables of this run (never by hand).

It states what the numbers support and what they cannot: the training budget against the paper's, the
unit of the intervals (seeds or only episodes), whether the gaze is synthetic, and the free-lunch test
(probability that an attention agent beats nature_cnn) in words.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fls.report import seed_stats
from fls.layout import GridConfig
from fls.report.tables import Table

PAPER_STEPS = 50_000_000
# Mean and per-game std of a uniformly random policy's whole-game score on Breakout under the training env
# settings (32 games, benchmarks/learning_check.py, docs/training.md): the floor the agents must clear.
RANDOM_POLICY = {"Breakout": (1.03, 1.07)}
WINDOW = 100  # eprewmean averages the last 100 games, so its random-policy noise is std / sqrt(100)


def random_band(window: int = WINDOW) -> dict[str, tuple[float, float]]:
    """{game: (mean, 95 % half-width)} of a random policy's mean over ``window`` games (Figure 3's band)."""
    return {g: (m, 1.96 * s / window ** 0.5) for g, (m, s) in RANDOM_POLICY.items()}


def _by_name(built: Sequence[Table]) -> dict[str, Table]:
    return {t.name: t for t in built}


def paragraphs(profile: str, atari_head_source: str, built: Sequence[Table], grid: GridConfig,
               train_steps: dict[str, int] | None = None) -> list[str]:
    t = _by_name(built)
    t3, t3b, t4b = t.get("table3_scores"), t.get("table3b_iqm"), t.get("table4b_saliency_ci")
    parts: list[str] = []
    ran = t3.data[t3.data["seeds"] > 0] if t3 is not None else None
    if ran is None or ran.empty:
        return ["No evaluated runs in this grid yet: nothing to summarise."]
    seeds = int(ran["seeds"].max())
    steps = ""
    if train_steps:
        budget = max(train_steps.values())
        steps = (f" after at most {budget:,} agent steps of training ({100 * budget / PAPER_STEPS:.2g} % of the "
                 f"paper's {PAPER_STEPS:,})")
    scores = []
    for r in ran.itertuples(index=False):
        line = f"{r.arch} scores {r.mean:.1f} ± {r.std:.1f} on {r.game} ({r.episodes} episodes, {r.seeds} seed(s))"
        if r.game in RANDOM_POLICY and r.episodes > 1:
            m, s = RANDOM_POLICY[r.game]
            low = r.mean - 1.96 * r.std / np.sqrt(r.episodes)  # normal 95 % bound of the evaluation mean
            above = "above" if low > m else "not clearly above"
            line += f" (95 % lower bound {low:.1f}), {above} a random policy's mean {m:.2f}"
        scores.append(line)
    if grid.import_seeds:
        steps += (f" (seeds {list(grid.import_seeds)}: the authors' released weights, trained by the authors"
                  + (", pooled with fls's own seeds" if grid.trained_seeds else "") + ")")
    parts.append(f"Profile `{profile}`{steps}: " + "; ".join(scores) + ".")
    if t3b is not None:
        sentences = seed_stats.free_lunch_sentences(t3b)
        if sentences:
            parts.append("The free-lunch test (Table 3b, does attention cost score?): " + " ".join(sentences))
    cannot = []
    if profile != "paper" and grid.trained_seeds:
        cannot.append("the budget is a small fraction of the paper's, so these are early-training scores, not "
                      "the paper's final ones, and agents that differ at 5e7 steps can look alike here (or the "
                      "reverse)")
    if seeds < 2:
        cannot.append("with one seed per architecture the intervals use evaluation episodes as units: they show "
                      "how precisely each single agent was measured, not whether another seed would rank the "
                      "architectures the same way")
    if atari_head_source != "zenodo":
        cannot.append("the gaze is SYNTHETIC (the offline Atari-HEAD stand-in), so the saliency numbers and panels "
                      "test the scoring code on a trained model, not agreement with humans")
    if t4b is not None and not t4b.data.empty:
        r = t4b.data[t4b.data["metric"] == "nss"]
        if not r.empty and np.isfinite(r["mean"].iloc[0]):
            parts.append(f"Saliency of the trained {r['arch'].iloc[0]} against that gaze (Table 4b): NSS "
                         f"{r['mean'].iloc[0]:.3f} [{r['low'].iloc[0]:.3f}, {r['high'].iloc[0]:.3f}].")
    if cannot:
        parts.append("What it cannot show: " + "; ".join(cannot) + ".")
    return [" ".join(parts)]
