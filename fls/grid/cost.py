"""Node-hours of a grid profile from measured throughputs (``fls grid cost``).

The paper grid is priced from a benchmark JSON (``benchmarks/gpu_check.py`` writes one; schema below), not
from hand arithmetic: a "node" is the machine that benchmark ran on. Each figure is work / measured rate:

* train: runs x planned agent steps / the best measured node rate for the run's arch class (a single run,
  or R runs in one process times their per-run rate), classes by representative arch: ``nature_cnn``
  (sparse trunks without attention), ``sparse_fls`` (sparse trunks with attention), ``dense_fls_pool``
  (dense trunks);
* evaluate: models x episodes x an assumed mean episode length / the measured evaluation rate (agent
  steps/s of all models evaluated together on the node);
* score: models x an assumed number of Atari-HEAD inputs per game / the measured saliency inputs/s.

What is assumed rather than measured is printed with the result and is a keyword of :func:`grid_cost`.

Bench JSON (schema ``fls-gpu-check/1``; only these keys are read)::

    {"schema": "fls-gpu-check/1", "device": str, "cpus": int, "quick": bool,
     "train": {"single": {arch or arch+"+bf16": agent steps/s}, "multi": {R: {arch: agent steps/s per run}}},
     "evaluate": {"models": int, "agent_steps_per_s": float},
     "score": {"inputs_per_s": float},
     "skipped": [section, ...]}

gpu_check's training rates are steady-state (start-up excluded: a 5e7-step run pays it once). A figure may be
null or absent when gpu_check's time budget left its section out ("skipped"); pricing that needs it then
fails with a line naming the field. With ``train.precision: bf16`` in the profile, a dense-trunk run is priced
at the ``dense_fls_pool+bf16`` figure when the bench has one.
"""

from __future__ import annotations

import importlib.util
import io
import json
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fls.config import ConfigError
from fls.models import get_arch

SCHEMA = "fls-gpu-check/1"
TARGET_NODE_HOURS = 300.0  # issue 14's goal for the paper grid on 1-GPU / 16-core nodes
CLASSES = ("nature_cnn", "sparse_fls", "dense_fls_pool")


class CostError(ConfigError):
    """A bench JSON or profile that cannot be priced (message names the file and key)."""


@dataclass
class CostLine:
    group: str
    what: str
    count: int
    rate: float  # agent steps/s (train, evaluate) or inputs/s (score) on one node
    rate_source: str
    node_hours: float


@dataclass
class CostReport:
    lines: list[CostLine]
    assumptions: list[str]
    bench: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(line.node_hours for line in self.lines)

    def by_group(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in self.lines:
            out[line.group] = out.get(line.group, 0.0) + line.node_hours
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "lines": [vars(line) for line in self.lines],
            "by_group": self.by_group(),
            "total_node_hours": self.total,
            "target_node_hours": TARGET_NODE_HOURS,
            "assumptions": self.assumptions,
            "node": {k: self.bench.get(k) for k in ("device", "cpus", "quick")},
        }

    def table(self) -> str:
        rows = [("group", "work", "count", "node rate", "rate from", "node-hours")]
        for ln in self.lines:
            unit = "inputs/s" if ln.group == "score" else "steps/s"
            rows.append((ln.group, ln.what, str(ln.count), f"{ln.rate:,.0f} {unit}", ln.rate_source, f"{ln.node_hours:,.1f}"))
        for g, h in self.by_group().items():
            rows.append((g, "(group total)", "", "", "", f"{h:,.1f}"))
        rows.append(("total", "", "", "", "", f"{self.total:,.1f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        node = f"node = the machine of the bench ({self.bench.get('device')}, {self.bench.get('cpus')} CPUs" + (
            ", --quick: reduced sizes, rough)" if self.bench.get("quick") else ")")
        verdict = "meets" if self.total <= TARGET_NODE_HOURS else "misses"
        tail = [node, f"total {self.total:,.1f} node-hours: {verdict} the {TARGET_NODE_HOURS:.0f} node-hour target",
                "assumptions:", *(f"  - {a}" for a in self.assumptions)]
        return "\n".join(lines + [""] + tail)


def load_bench(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CostError(f"{p}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise CostError(f"{p}: field 'schema' must be {SCHEMA!r} (a benchmarks/gpu_check.py JSON), got {data.get('schema') if isinstance(data, dict) else data!r}")
    for key in ("train", "evaluate", "score"):
        if not isinstance(data.get(key), dict):
            raise CostError(f"{p}: field '{key}' missing or not an object")
    data["_path"] = str(p)
    return data


def _skipped_note(bench: dict[str, Any], section: str) -> str:
    """Why a figure is missing, when gpu_check's budget left out ``section`` (or one of its parts, "train ...")."""
    hit = any(x == section or str(x).startswith(section + " ") for x in bench.get("skipped") or [])
    return f" (gpu_check skipped {section} figures: its --budget-s was spent)" if hit else ""


def arch_class(arch: str) -> str:
    """Which measured representative prices ``arch`` (see the module docstring)."""
    spec = get_arch(arch)
    if spec.trunk == "dense":
        return "dense_fls_pool"
    return "sparse_fls" if spec.has_attention else "nature_cnn"


def node_train_rate(bench: dict[str, Any], cls: str, precision: str = "fp32") -> tuple[float, str]:
    """Best measured agent steps/s per node for runs of ``cls``: max(single, R x per-run of R-run processes).

    ``precision`` other than fp32 picks the single-run figure measured at it (``cls+precision``) when present.
    """
    where = bench.get("_path", "bench")
    train = bench["train"]
    best: tuple[float, str] | None = None
    singles = train.get("single") or {}
    key = f"{cls}+{precision}" if precision != "fp32" and singles.get(f"{cls}+{precision}") else cls
    single = singles.get(key)
    if single:
        best = (float(single), "single run" + (f", {precision}" if key != cls else ""))
    for r, per_arch in (train.get("multi") or {}).items():
        v = (per_arch or {}).get(cls)
        if v and (best is None or int(r) * float(v) > best[0]):
            best = (int(r) * float(v), f"{int(r)} runs/process")
    if best is None:
        raise CostError(f"{where}: field 'train' has no throughput for {cls} (needed to price its runs)"
                        f"{_skipped_note(bench, 'train')}")
    return best


def grid_cost(
    params: dict[str, Any],
    bench: dict[str, Any],
    *,
    mean_episode_steps: float = 3000.0,
    score_inputs_per_game: int = 250_000,
) -> CostReport:
    """Node-hours per stage group of the profile ``params`` (a parsed params.yaml) at ``bench``'s rates."""
    grid = params.get("grid") or {}
    try:
        archs, games, seeds = list(grid["archs"]), list(grid["games"]), list(grid["seeds"])
    except KeyError as exc:
        raise CostError(f"params: field 'grid.{exc.args[0]}' missing") from None
    # only the seeds fls trains cost training; import_seeds (the authors' weights) cost evaluation alone
    train_seeds = list(grid["train_seeds"]) if grid.get("train_seeds") is not None else seeds
    infinite = list(grid.get("infinite_archs") or [])
    score_archs, score_games = list(grid.get("score_archs") or []), list(grid.get("score_games") or [])
    train_cfg, eval_cfg = params.get("train") or {}, params.get("evaluate") or {}
    total_steps = int(float(train_cfg.get("total_steps", 50_000_000)))
    batch = int(train_cfg.get("num_envs", 8)) * int(train_cfg.get("num_steps", 128))
    planned = total_steps // batch * batch
    episodes = int(eval_cfg.get("episodes", 8192))

    lines: list[CostLine] = []
    by_class: dict[str, list[str]] = {}
    for a in archs:
        by_class.setdefault(arch_class(a), []).append(a)
    for cls, members in by_class.items():
        runs = len(members) * len(games) * len(train_seeds)
        if not runs:
            continue
        rate, src = node_train_rate(bench, cls, str(train_cfg.get("precision", "fp32")))
        lines.append(CostLine("train", f"{cls}-like ({len(members)} archs)", runs, rate, src, runs * planned / rate / 3600))

    ev = bench["evaluate"]
    ev_rate = float(ev.get("agent_steps_per_s") or 0)
    if ev_rate <= 0:
        raise CostError(f"{bench.get('_path', 'bench')}: field 'evaluate.agent_steps_per_s' must be > 0"
                        f"{_skipped_note(bench, 'evaluate')}")
    n_models = len(archs) * len(games) * len(seeds) + len(infinite) * len(seeds)
    src = f"{ev.get('models', '?')} models/process"
    lines.append(CostLine("evaluate", "models x episodes (incl. BreakoutInfinite)", n_models, ev_rate, src,
                          n_models * episodes * mean_episode_steps / ev_rate / 3600))

    sc_rate = float(bench["score"].get("inputs_per_s") or 0)
    n_scored = len(score_archs) * len(score_games) * len(seeds)
    if n_scored:
        if sc_rate <= 0:
            raise CostError(f"{bench.get('_path', 'bench')}: field 'score.inputs_per_s' must be > 0"
                            f"{_skipped_note(bench, 'score')}")
        lines.append(CostLine("score", "attention maps of every Atari-HEAD input", n_scored, sc_rate, "one model",
                              n_scored * score_inputs_per_game / sc_rate / 3600))

    assumptions = [
        f"train: {planned:,} agent steps per run (train.total_steps rounded down to whole rollouts); the run rate "
        "of each arch class is that of its representative arch, measured",
        f"evaluate: {episodes} episodes per model x {mean_episode_steps:,.0f} agent steps per episode (ASSUMED mean "
        "game length of trained agents; capped games are shorter)",
        f"score: {score_inputs_per_game:,} Atari-HEAD inputs per game (ASSUMED), attention maps only (post-hoc "
        "methods and metric computation not priced)",
        "the Atari-HEAD download/preprocess (once, CPU), importing the authors' weights (grid.import_seeds) and "
        "the report are not priced",
        "nodes work independently (no shared-storage or scheduling overhead)",
    ]
    return CostReport(lines, assumptions, bench)


def measure_here() -> dict[str, Any]:
    """Run ``benchmarks/gpu_check.py --quick`` on this machine (about a minute on a quiet 2-core CPU)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"
    if not path.exists():
        raise CostError(f"{path}: not found; give a gpu_check JSON (bench) instead")
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    with redirect_stdout(io.StringIO()):
        data = mod.run(True, "auto")
    data["_path"] = "this machine (gpu_check --quick)"
    return data
