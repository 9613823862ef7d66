"""Checkpoint format: one ``torch.save`` of plain data, loadable with ``torch.load(weights_only=True)``.

A checkpoint holds only tensors and Python primitives (no pickled classes), so loading one can never
run code. The same format serves ``checkpoint.pt`` (latest, for resuming) and ``model.pt`` (final,
for evaluation and scoring).

Keys (format version 1):
  format, version         "fls-checkpoint", 1
  arch, game, num_actions what to rebuild with ``fls.models.build_model``
  model                   the policy's state_dict
  optimizer               Adam's state_dict (None in a weights-only export)
  update, global_step     updates done and agent steps taken when saved
  num_updates             updates the run plans in total (the lr schedule runs over this)
  learning_rate           the lr the next update starts from (schedule position, for the record)
  config                  TrainConfig.to_dict() of the run
  rng                     {"torch": uint8 tensor, "numpy": {...}, "python": [...]} global RNG states
  stats                   {"episodes": int, "recent_returns": [float, ...]} eprewmean window (last 100)
num_updates, learning_rate, rng and stats are absent from imported weights (``fls import-authors``).

``Checkpoint`` is the typed view of that dict: ``to_payload`` gives the dict that is saved, key for key and
in the same order, so a checkpoint's bytes (and the sha256 results record) do not depend on the view.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fls.atomic import atomic_path
from fls.models import UnknownArchError, build_model
from fls.stage_files import CHECKPOINT, MODEL

FORMAT = "fls-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "arch", "game", "num_actions", "model", "update", "global_step", "config")


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, corrupt or does not fit the run (message names the file)."""


class PolicySourceError(ValueError):
    """``--run``/``--checkpoint``/``--arch`` given in a combination that names no single policy."""


@dataclass
class Checkpoint:
    """One checkpoint file's content (keys: the module docstring); the weights stay a plain state_dict."""

    arch: str
    game: str
    num_actions: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None  # None in a weights-only export (model.pt)
    update: int
    global_step: int
    config: dict[str, Any]  # TrainConfig.to_dict() of the run (the authors' settings for imported weights)
    num_updates: int | None = None  # None: not recorded (imported weights); likewise the three below
    learning_rate: float | None = None
    rng: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None

    def to_payload(self) -> dict[str, Any]:
        """The dict ``torch.save`` writes (without the format marker), optional keys only when recorded."""
        data: dict[str, Any] = {
            "arch": self.arch, "game": self.game, "num_actions": self.num_actions, "model": self.model,
            "optimizer": self.optimizer, "update": self.update, "global_step": self.global_step,
        }
        for key in ("num_updates", "learning_rate"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        data["config"] = self.config
        for key in ("rng", "stats"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any], where: str | os.PathLike[str]) -> Checkpoint:
        """The view of a loaded dict; a missing or mistyped key is a ``CheckpointError`` naming ``where``."""
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise CheckpointError(f"{where}: checkpoint lacks keys {missing}")
        for key in ("model", "config"):
            if not isinstance(data[key], dict):
                raise CheckpointError(f"{where}: checkpoint field '{key}' must be a mapping, got {type(data[key]).__name__}")
        return cls(
            arch=data["arch"], game=data["game"], num_actions=data["num_actions"], model=data["model"],
            optimizer=data.get("optimizer"), update=data["update"], global_step=data["global_step"],
            config=data["config"], num_updates=data.get("num_updates"), learning_rate=data.get("learning_rate"),
            rng=data.get("rng"), stats=data.get("stats"),
        )


@dataclass(frozen=True)
class WeightsRef:
    """Where a policy's weights came from, as eval.json, score summaries and run_info.json record it."""

    path: str | None  # the checkpoint file; None for a freshly initialised model
    sha256: str | None
    init_seed: int | None  # the fresh model's torch seed; None for a checkpoint
    global_step: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "init_seed": self.init_seed, "global_step": self.global_step}

    @classmethod
    def from_json(cls, data: Any, where: str) -> WeightsRef:
        if not isinstance(data, dict) or any(k not in data for k in ("path", "sha256", "init_seed", "global_step")):
            raise ValueError(f"{where}: expected an object with path, sha256, init_seed and global_step, got {data!r}")
        return cls(data["path"], data["sha256"], data["init_seed"], data["global_step"])


@dataclass
class PolicySource:
    """The policy evaluate and score run: the model, what it is, what it was trained on, where it came from."""

    model: torch.nn.Module
    arch: str
    game: str | None  # the training game; None for a freshly initialised model
    num_actions: int
    weights: WeightsRef
    config: dict[str, Any] = field(default_factory=dict)  # the run's recorded config ({} for a fresh model)
    update: int = 0
    global_step: int = 0


def rng_state() -> dict[str, Any]:
    """Global torch / numpy / python RNG states as tensors and lists (weights_only-safe)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": [int(py_state[0]), list(py_state[1]), py_state[2]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` atomically (a kill mid-write leaves the previous checkpoint intact)."""
    data = {"format": FORMAT, "version": VERSION, **checkpoint.to_payload()}
    # torch.save names the zip's top folder after the file it writes to, here a random temp name; a buffer
    # gets a fixed name, so the same payload always gives the same bytes (and the same recorded sha256).
    buf = io.BytesIO()
    torch.save(data, buf)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buf.getbuffer())
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read and sanity-check a checkpoint; every failure is a ``CheckpointError`` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint not found")
    try:
        data = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types on damaged files (RuntimeError, UnpicklingError, IndexError...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{p}: not a readable checkpoint ({first})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not an fls checkpoint (no format marker '{FORMAT}')")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{p}: checkpoint format version {data.get('version')} (this code reads {VERSION})")
    return Checkpoint.from_payload(data, p)


def resolve_policy_file(path_or_run_dir: str | os.PathLike[str]) -> Path:
    """A checkpoint file as given, or for a run directory its ``model.pt`` (else ``checkpoint.pt``)."""
    p = Path(path_or_run_dir)
    if p.is_dir():
        for name in (MODEL, CHECKPOINT):
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p}: run directory has neither {MODEL} nor {CHECKPOINT}")
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint file or run directory")
    return p


def load_policy(path_or_run_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> PolicySource:
    """Rebuild the trained policy (eval mode) for evaluation or scoring, with the checkpoint's record of it."""
    path = resolve_policy_file(path_or_run_dir)
    data = load_checkpoint(path, map_location="cpu")
    try:
        model = build_model(data.arch, int(data.num_actions))
    except UnknownArchError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    try:
        model.load_state_dict(data.model)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit architecture '{data.arch}' ({first})") from None
    model.to(device).eval()
    weights = WeightsRef(path=str(path), sha256=file_sha256(path), init_seed=None, global_step=int(data.global_step))
    return PolicySource(model=model, arch=data.arch, game=data.game, num_actions=data.num_actions, weights=weights,
                        config=data.config, update=data.update, global_step=data.global_step)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (recorded beside results so weights can be identified)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_policy_source(
    *,
    run: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    arch: str | None = None,
    init_seed: int | None = None,
    num_actions: int | None = None,
    device: str | torch.device = "cpu",
) -> PolicySource:
    """The policy named by exactly one of ``run``/``checkpoint``/``arch``, as evaluate and score take it.

    ``arch`` builds a freshly initialised model (seeded with ``init_seed``, default 0) for smoke tests and
    needs ``num_actions``; its ``game`` is None and its ``weights`` record the seed instead of a file.
    """
    given = [name for name, v in (("run", run), ("checkpoint", checkpoint), ("arch", arch)) if v is not None]
    if len(given) != 1:
        raise PolicySourceError(
            "give exactly one of run (a run directory), checkpoint (a file) or arch (a fresh model)"
            + (f"; got {', '.join(given)}" if given else "")
        )
    if init_seed is not None and arch is None:
        raise PolicySourceError("init_seed only applies to a freshly initialised model (arch)")
    if arch is not None:
        if num_actions is None:
            raise PolicySourceError("arch (a fresh model) needs num_actions: give the game whose action set it plays")
        seed = 0 if init_seed is None else int(init_seed)
        torch.manual_seed(seed)
        model = build_model(arch, num_actions).to(device).eval()
        weights = WeightsRef(path=None, sha256=None, init_seed=seed, global_step=0)
        return PolicySource(model=model, arch=model.spec.id, game=None, num_actions=num_actions, weights=weights)
    return load_policy(run if run is not None else checkpoint, device)  # type: ignore[arg-type]
