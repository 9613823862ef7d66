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
"""

from __future__ import annotations

import hashlib
import io
import os
import random
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


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically (a kill mid-write leaves the previous checkpoint intact)."""
    missing = [k for k in REQUIRED_KEYS if k not in payload and k not in ("format", "version")]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    data = {"format": FORMAT, "version": VERSION, **payload}
    # torch.save names the zip's top folder after the file it writes to, here a random temp name; a buffer
    # gets a fixed name, so the same payload always gives the same bytes (and the same recorded sha256).
    buf = io.BytesIO()
    torch.save(data, buf)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buf.getbuffer())
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
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
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise CheckpointError(f"{p}: checkpoint lacks keys {missing}")
    return data


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


def load_policy(path_or_run_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the trained policy (eval mode) for evaluation or scoring; ``meta`` is the checkpoint minus weights."""
    path = resolve_policy_file(path_or_run_dir)
    data = load_checkpoint(path, map_location="cpu")
    try:
        model = build_model(data["arch"], int(data["num_actions"]))
    except UnknownArchError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    try:
        model.load_state_dict(data["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit architecture '{data['arch']}' ({first})") from None
    model.to(device).eval()
    meta = {k: v for k, v in data.items() if k not in ("model", "optimizer", "rng")}
    meta["path"] = str(path)
    return model, meta


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
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The policy named by exactly one of ``--run``/``--checkpoint``/``--arch``, as evaluate and score take it.

    ``--arch`` builds a freshly initialised model (seeded with ``init_seed``, default 0) for smoke tests and
    needs ``num_actions``. ``meta`` is the checkpoint's metadata (``{"arch", "game": None, "num_actions"}``
    for a fresh model) plus ``meta["checkpoint"] = {path, sha256, init_seed, global_step}``, the
    provenance that results record about where the weights came from.
    """
    given = [name for name, v in (("--run", run), ("--checkpoint", checkpoint), ("--arch", arch)) if v is not None]
    if len(given) != 1:
        raise PolicySourceError(
            "give exactly one of --run DIR, --checkpoint FILE or --arch ID (fresh model)"
            + (f"; got {', '.join(given)}" if given else "")
        )
    if init_seed is not None and arch is None:
        raise PolicySourceError("--init-seed only applies to a freshly initialised model (--arch)")
    if arch is not None:
        if num_actions is None:
            raise PolicySourceError("--arch (fresh model) needs --game to know the action set")
        seed = 0 if init_seed is None else int(init_seed)
        torch.manual_seed(seed)
        model = build_model(arch, num_actions).to(device).eval()
        return model, {
            "arch": model.spec.id,
            "game": None,
            "num_actions": num_actions,
            "checkpoint": {"path": None, "sha256": None, "init_seed": seed, "global_step": 0},
        }
    path = resolve_policy_file(run if run is not None else checkpoint)  # type: ignore[arg-type]
    model, meta = load_policy(path, device)
    meta = dict(meta)
    meta["checkpoint"] = {
        "path": str(path),
        "sha256": file_sha256(path),
        "init_seed": None,
        "global_step": int(meta.get("global_step", 0)),
    }
    return model, meta
