"""``fls grid run --group``: several stale stages as one Ray task running one multi-run command.

Why: ``fls train --seeds 1,9,17 --out-root runs`` trains the seeds of one (arch, game) in one process
and ``fls evaluate --runs a,b,c --out-root evals`` plays several models of one game in one process
(fls.ppo.multirun, fls.evaluation.multi); on a GPU node that packs R runs into one process and one GPU
share instead of R. Each member's files are those its own stage command writes, so the driver still
commits every member stage on its own and dvc.lock is what single-stage execution gives.

The grouped command is *derived* from the member stages' own command strings, never built from
scratch: the tokens of every member must be identical except the per-run pair (``--seed S --out
ROOT/<arch>/<game>/S`` for train, ``--run R --out ROOT/<game>/<arch>/<seed>`` for evaluate), and that
pair must map exactly onto the multi-run layout (``fls.ppo.multirun.run_dir``,
``fls.evaluation.multi.out_dir_for``). Anything else (another program, shell syntax, ``--x=v`` forms of
the varying flags, single-policy options, a path the layout would not give back) is not grouped: the
stage runs as its own task, as without ``--group``.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from fls.evaluation.multi import out_dir_for
from fls.grid.plan import PlannedStage

_SHELL = set(";&|<>`$()\n\\*?[]{}~#'\"")
# single-policy options of `fls evaluate` that its --runs form refuses
_EVAL_SINGLE_ONLY = {"--checkpoint", "--arch", "--init-seed", "--video", "--frames", "--runs", "--out-root"}


@dataclass(frozen=True)
class Member:
    """What one stage contributes to a group: its command without the per-run pair, and that pair."""

    stage: PlannedStage
    key: tuple[str, ...]  # ([stage group,] kind, wdir, out_root, *tokens without the pair): equal keys batch
    insert_at: int  # where the per-run pair stood in the tokens
    value: str  # the seed (train) or the run directory (evaluate)


def _split(command: str) -> list[str] | None:
    if any(ch in _SHELL for ch in command):
        return None  # quoting, variables or operators: the shell's reading could differ from ours
    tokens = command.split()
    if len(tokens) < 2 or posixpath.basename(tokens[0]) != "fls":
        return None
    return tokens


def _take(tokens: list[str], flag: str) -> tuple[int, str] | None:
    """Index and value of the one ``flag VALUE`` pair, or None (absent, repeated, ``--flag=v`` form)."""
    hits = [i for i, t in enumerate(tokens) if t == flag]
    if len(hits) != 1 or any(t.startswith(flag + "=") for t in tokens):
        return None
    i = hits[0]
    if i + 1 >= len(tokens) or tokens[i + 1].startswith("-"):
        return None
    return i, tokens[i + 1]


def _norm(path: str) -> str | None:
    norm = posixpath.normpath(path)
    return None if norm in (".", "/") or norm.startswith("..") else norm


def _pair(tokens: list[str], first: str) -> tuple[list[str], int, str, str] | None:
    """Remove ``first V`` and ``--out O``; return the rest, where they stood, V and O."""
    a, b = _take(tokens, first), _take(tokens, "--out")
    if a is None or b is None or abs(a[0] - b[0]) < 2:
        return None
    (i, value), (j, out) = a, b
    rest = [t for k, t in enumerate(tokens) if k not in (i, i + 1, j, j + 1)]
    return rest, min(i, j), value, out


def train_member(stage: PlannedStage) -> Member | None:
    """``fls train ... --seed S ... --out ROOT/<arch>/<game>/S ...`` -> a member, else None."""
    tokens = _split(stage.commands[0]) if len(stage.commands) == 1 else None
    if tokens is None or tokens[1] != "train" or "--seeds" in tokens or "--out-root" in tokens:
        return None
    arch, game = _take(tokens, "--arch"), _take(tokens, "--game")
    pair = _pair(tokens, "--seed")
    if arch is None or game is None or pair is None:
        return None
    rest, at, seed, out = pair
    norm = _norm(out)
    if norm is None or not seed.isdigit() or str(int(seed)) != seed:
        return None  # run_dir writes str(int(seed)): "01" would land elsewhere
    parts = norm.split("/")
    if len(parts) < 4 or parts[-3:] != [arch[1], game[1], seed]:
        return None
    out_root = "/".join(parts[:-3]) or "/"
    return Member(stage, ("train", stage.wdir, out_root, *rest), at, seed)


def evaluate_member(stage: PlannedStage) -> Member | None:
    """``fls evaluate ... --run R ... --game G ... --out ROOT/G/<arch>/<seed> ...`` -> a member, else None.

    R's last three parts are ``<arch>/<trained game>/<seed>``; ``--game`` must be on the command (the
    played game decides the output directory, and one process plays one game).
    """
    tokens = _split(stage.commands[0]) if len(stage.commands) == 1 else None
    if tokens is None or tokens[1] != "evaluate" or _EVAL_SINGLE_ONLY & set(tokens):
        return None
    if any(t.startswith(f + "=") for t in tokens for f in _EVAL_SINGLE_ONLY):
        return None
    game = _take(tokens, "--game")
    pair = _pair(tokens, "--run")
    if game is None or pair is None:
        return None
    rest, at, run, out = pair
    run_n, out_n = _norm(run), _norm(out)
    if run_n is None or out_n is None or "," in run or run_n.count("/") < 2 or out_n.count("/") < 3:
        return None
    out_root = out_n.rsplit("/", 3)[0]
    if out_dir_for(out_root, run_n, game[1]).as_posix() != out_n:  # the --runs form writes exactly there
        return None
    return Member(stage, ("evaluate", stage.wdir, out_root, *rest), at, run)


def member_of(stage: PlannedStage) -> Member | None:
    """The stage as a batch member, by its command (``fls train`` / ``fls evaluate``), or None."""
    member = train_member(stage) or evaluate_member(stage)
    if member is None:
        return None
    return Member(stage, (stage.group, *member.key), member.insert_at, member.value)


def group_command(members: Sequence[Member]) -> str:
    """The one command that does what every member's own command does (see the module docstring)."""
    first = members[0]
    _group, kind, _wdir, out_root, *rest = first.key
    if any(m.key != first.key or m.insert_at != first.insert_at for m in members):
        raise ValueError("group_command: members do not share one command pattern")
    values = ",".join(m.value for m in members)
    pair = ["--seeds", values, "--out-root", out_root] if kind == "train" else ["--runs", values, "--out-root", out_root]
    tokens = [*rest[: first.insert_at], *pair, *rest[first.insert_at :]]
    return shlex.join(tokens)


@dataclass(frozen=True)
class Group:
    name: str  # the task's and its log's name, e.g. "train@nature_cnn-Breakout-1+2"
    members: tuple[PlannedStage, ...]
    command: str


def form_groups(ready: Sequence[PlannedStage], groups: Sequence[str], max_size: int) -> list[PlannedStage | Group]:
    """Ready stages, in order, with the groupable ones (stage group in ``groups``) batched by command key.

    A batch holds at most ``max_size`` members and sits where its first member stood; a batch of one
    stays a plain stage.
    """
    slots: list[PlannedStage | list[Member]] = []
    open_batches: dict[tuple[object, ...], list[Member]] = {}
    for stage in ready:
        member = member_of(stage) if stage.group in groups else None
        if member is None:
            slots.append(stage)
            continue
        key = (*member.key, member.insert_at)
        batch = open_batches.get(key)
        if batch is None or len(batch) >= max_size:
            batch = open_batches[key] = []
            slots.append(batch)
        batch.append(member)
    out: list[PlannedStage | Group] = []
    for slot in slots:
        if isinstance(slot, PlannedStage):
            out.append(slot)
        elif len(slot) == 1:
            out.append(slot[0].stage)
        else:
            name = f"{slot[0].stage.name}+{len(slot) - 1}"
            out.append(Group(name, tuple(m.stage for m in slot), group_command(slot)))
    return out
