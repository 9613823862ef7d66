"""``fls import-authors``: the authors' released models as fls run directories, plus their own results.

Input (their README): ``DIR/<game>.<network>/<train_seed>/`` holding ``model.pkl`` (Baselines format),
``config.json`` (``env_name``, ``network``), ``eval.pkl``, ``saliency.pkl`` (six networks only) and a
TensorBoard ``events.out.tfevents.*`` file. Output per model, ``OUT/<arch>/<game>/<seed>/``:

* ``model.pt``      an fls checkpoint (weights only), so ``fls evaluate`` / ``fls score`` run on it unchanged;
* ``metrics.csv``   ``global_step,eprewmean`` from the event file (the training curve Figure 3 reads; only
  the header when the folder has no event file, so the file a DVC stage declares always exists);
* ``summary.json``  marks the import complete (``source: authors``), names every source file with its sha256
  and records model.pt's sha256 (the report matches it against the checkpoint an evaluation recorded);
* ``run_info.json`` provenance, as every fls stage writes;
* ``authors/eval.json``, ``authors/saliency.parquet``  the authors' evaluation episodes and per-input saliency.

Two modes: the whole download (``import_authors``: ``OUT/<arch>/<game>/<seed>/`` per model plus
``OUT/authors_index.json``; a model whose ``summary.json`` already names the same ``model.pkl`` sha256 is
skipped, so an interrupted import resumes), and one model into one run directory (``import_one``: what the
DVC ``import_authors`` stage runs, no index; its eval.pkl is required, the comparison is the point).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from fls.atomic import atomic_path, atomic_write_json, atomic_write_text
from fls import tb_events as events
from fls.authors import results
from fls.authors.convert import ARCH_TO_NETWORK, ConversionError, convert_variables, network_to_arch
from fls.authors.safe_pickle import safe_load
from fls.checkpoint import Checkpoint, file_sha256, save_checkpoint
from fls.games import UnknownGameError, get_game
from fls.json_fields import read_object
from fls.models import ARCHS
from fls.runinfo import write_run_info
from fls.stage_files import MODEL, RUN_INFO, TRAIN_METRICS, TRAIN_SUMMARY

SCHEMA_VERSION = 1
TRAIN_NUM_ENVS = 8  # train_baselines.py: --num_env 8 (env i seeded train_seed + i by Baselines' make_vec_env)
INDEX = "authors_index.json"
_FOLDER = re.compile(r"^(?P<game>[A-Za-z]+)\.(?P<network>cnn[A-Za-z0-9_]*)$")


class AuthorsImportError(ValueError):
    """An authors' folder that does not have the documented layout (message names the path)."""


@dataclass
class AuthorsConfig:
    """The ``authors`` section of params.yaml, read only by the ``import_authors`` stage."""

    dir: str = "data/authors"  # the by-hand download: <game>.<network>/<seed>/ folders (docs/authors_models.md)

    def validate(self) -> None:
        if not str(self.dir).strip():
            raise AuthorsImportError("authors: field 'dir' must name the folder of the authors' download")


@dataclass(frozen=True)
class AuthorsModel:
    folder: Path
    game: str  # fls/paper game name
    network: str  # the authors' network id
    arch: str  # fls architecture id
    seed: int

    @property
    def model_pkl(self) -> Path:
        return self.folder / "model.pkl"

    def event_file(self) -> Path | None:
        found = sorted(self.folder.glob("events.out.tfevents.*")) + sorted(self.folder.glob("tb/events.out.tfevents.*"))
        return found[0] if found else None


def _model_folders(root: str | Path) -> Iterator[tuple[Path, re.Match[str]]]:
    """(folder, name match) of every ``<game>.<network>`` folder directly under ``root``: the download's layout.

    Lazy, so that a caller's own argument checks come before the download is looked at.
    """
    root = Path(root)
    if not root.is_dir():
        raise AuthorsImportError(f"{root}: not a directory (expected the authors' download with <game>.<network>/<seed>/ folders)")
    for sub in sorted(root.iterdir()):
        m = _FOLDER.match(sub.name)
        if sub.is_dir() and m:
            yield sub, m


def _seed_folders(folder: Path) -> Iterator[tuple[Path, int | None]]:
    """(subfolder, seed) of a ``<game>.<network>`` folder; the seed is the integer name (None if it is not one)."""
    for sub in sorted(folder.iterdir()):
        if sub.is_dir():
            yield sub, int(sub.name) if sub.name.isdecimal() else None  # isdecimal: exactly what int() reads


def discover(root: str | Path) -> list[AuthorsModel]:
    """Every ``<game>.<network>/<seed>/model.pkl`` under ``root``, sorted by (arch, game, seed)."""
    found = []
    for sub, m in _model_folders(root):
        try:
            game = get_game(m["game"]).name
        except UnknownGameError as exc:
            raise AuthorsImportError(f"{sub}: {exc}") from None
        try:
            arch = network_to_arch(m["network"])
        except ConversionError as exc:
            raise AuthorsImportError(f"{sub}: {exc}") from None
        for seed_dir, seed in _seed_folders(sub):
            if not (seed_dir / "model.pkl").is_file():
                continue
            if seed is None:
                raise AuthorsImportError(f"{seed_dir}: seed folder name must be an integer (e.g. 01)")
            found.append(AuthorsModel(seed_dir, game, m["network"], arch, seed))
    return sorted(found, key=lambda a: (a.arch, a.game, a.seed))


def find_model(root: str | Path, arch: str, game: str, seed: int) -> AuthorsModel:
    """The one ``<game>.<network>/<seed>/`` folder of (arch, game, seed) under ``root``; other folders are not read."""
    root = Path(root)
    if arch not in ARCHS:
        raise AuthorsImportError(f"unknown architecture '{arch}' (valid: {', '.join(ARCHS)})")
    game = get_game(game).name
    network = ARCH_TO_NETWORK[arch]
    folders = [d for d, m in _model_folders(root) if m["network"] == network and m["game"].lower() == game.lower()]
    seeds = [d for f in folders for d, s in _seed_folders(f) if s == int(seed)]
    if len(seeds) != 1:
        what = "no" if not seeds else f"{len(seeds)}"
        raise AuthorsImportError(f"{root}: {what} folder {game}.{network}/{int(seed):02d}/ for {arch} {game} seed {seed} "
                                 "(expected exactly one, holding model.pkl)")
    if not (seeds[0] / "model.pkl").is_file():
        raise AuthorsImportError(f"{seeds[0]}: no model.pkl")
    return AuthorsModel(seeds[0], game, network, arch, int(seed))


def _check_config(model: AuthorsModel) -> dict[str, Any]:
    path = model.folder / "config.json"
    if not path.is_file():
        return {}
    cfg = read_object(path, AuthorsImportError)
    if "network" in cfg and cfg["network"] != model.network:
        raise AuthorsImportError(f"{path}: network '{cfg['network']}' does not match the folder name ({model.network})")
    env = cfg.get("env_name")
    if isinstance(env, str) and env != f"{model.game}NoFrameskip-v4":
        raise AuthorsImportError(f"{path}: env_name '{env}' does not match the folder name ({model.game})")
    return cfg


def _curve_csv(curve: list[tuple[int, float]]) -> str:
    lines = ["global_step,eprewmean"]
    for step, value in curve:
        lines.append(f"{step},{'' if not math.isfinite(value) else repr(float(value))}")
    return "\n".join(lines) + "\n"


def import_model(model: AuthorsModel, out_dir: Path, *, require_eval: bool = False) -> dict[str, Any]:
    """Convert one authors' model into ``out_dir`` (see module doc); returns its index entry.

    ``require_eval``: a folder without eval.pkl is an error (every folder of their release has one).
    """
    out_dir = Path(out_dir)
    eval_pkl = model.folder / "eval.pkl"
    if require_eval and not eval_pkl.is_file():
        raise AuthorsImportError(f"{eval_pkl}: missing (every model folder of the authors' release has one; "
                                 "the comparison with fls's evaluation needs it)")
    sha = file_sha256(model.model_pkl)
    done = out_dir / TRAIN_SUMMARY
    if done.is_file():
        try:
            prev = json.loads(done.read_text())
        except json.JSONDecodeError:
            prev = {}
        if prev.get("sources", {}).get("model.pkl", {}).get("sha256") == sha:
            return prev["entry"]
    cfg = _check_config(model)
    variables = safe_load(model.model_pkl)
    arch, num_actions, state = convert_variables(variables, model.network, where=str(model.model_pkl))
    expected = get_game(model.game).num_actions
    if num_actions != expected:
        raise AuthorsImportError(f"{model.model_pkl}: policy has {num_actions} actions but {model.game} has {expected}")
    sources: dict[str, Any] = {"model.pkl": {"path": str(model.model_pkl), "sha256": sha}}
    ev_path = model.event_file()
    curve = events.read_curve(ev_path) if ev_path is not None else []
    if ev_path is not None:
        sources["events"] = {"path": str(ev_path), "sha256": file_sha256(ev_path), "points": len(curve)}
    global_step = int(cfg.get("num_timesteps") or (curve[-1][0] if curve else 0))
    config = {
        "source": "authors",
        "network": model.network,
        "arch": arch,
        "game": model.game,
        "seed": model.seed,
        "num_envs": TRAIN_NUM_ENVS,
        "authors_config": cfg,
    }
    save_checkpoint(
        out_dir / MODEL,
        Checkpoint(arch=arch, game=model.game, num_actions=num_actions, model=state, optimizer=None,
                   update=0, global_step=global_step, config=config),
    )
    atomic_write_text(out_dir / TRAIN_METRICS, _curve_csv(curve))
    ref_dir = out_dir / "authors"
    if eval_pkl.is_file():
        ref = results.read_eval_pkl(eval_pkl)
        sources["eval.pkl"] = {"path": str(eval_pkl), "sha256": file_sha256(eval_pkl)}
        atomic_write_json(ref_dir / "eval.json", {
            "schema_version": SCHEMA_VERSION, "source": sources["eval.pkl"], "summary": ref.summary(),
            "rewards": ref.rewards.tolist(), "lengths": None if ref.lengths is None else ref.lengths.tolist(),
        })
    sal_pkl = model.folder / "saliency.pkl"
    if sal_pkl.is_file():
        df = results.read_saliency_pkl(sal_pkl)
        sources["saliency.pkl"] = {"path": str(sal_pkl), "sha256": file_sha256(sal_pkl)}
        with atomic_path(ref_dir / "saliency.parquet") as tmp:
            df.to_parquet(tmp, index=False)
    entry = {
        "arch": arch, "game": model.game, "seed": model.seed, "network": model.network,
        "num_actions": num_actions, "global_step": global_step,
        "has_eval": eval_pkl.is_file(), "has_saliency": sal_pkl.is_file(), "has_curve": bool(curve),
    }
    write_run_info(out_dir / RUN_INFO, config, stage="import-authors", extra={"sources": sources})
    atomic_write_json(done, {"schema_version": SCHEMA_VERSION, "source": "authors", "global_step": global_step,
                             "model_sha256": file_sha256(out_dir / MODEL), "entry": entry, "sources": sources})
    return entry


def import_one(src: str | Path, arch: str, game: str, seed: int, out_dir: str | Path) -> dict[str, Any]:
    """One model of the download into ``out_dir`` (the DVC stage's run directory); eval.pkl required."""
    return import_model(find_model(src, arch, game, seed), Path(out_dir), require_eval=True)


def import_authors(
    src: str | Path,
    out: str | Path,
    *,
    archs: Iterable[str] | None = None,
    games: Iterable[str] | None = None,
    seeds: Iterable[int] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Import every model under ``src`` (or only the given archs x games x seeds) into ``out``; write the index."""
    out = Path(out)
    models = discover(src)
    want = lambda vals, v: vals is None or v in vals  # noqa: E731
    archs_s, games_s, seeds_s = (None if x is None else set(x) for x in (archs, games, seeds))
    chosen = [m for m in models if want(archs_s, m.arch) and want(games_s, m.game) and want(seeds_s, m.seed)]
    entries = []
    for m in tqdm(chosen, desc="import-authors", unit="model", disable=not progress):
        entries.append(import_model(m, out / m.arch / m.game / str(m.seed)))
    index = {"schema_version": SCHEMA_VERSION, "source_dir": str(src), "n_found": len(models), "models": entries}
    atomic_write_json(out / INDEX, index)
    return index


def read_eval_reference(run_dir: str | Path) -> np.ndarray | None:
    p = Path(run_dir) / "authors" / "eval.json"
    if not p.is_file():
        return None
    data = json.loads(p.read_text())
    return np.asarray(data["rewards"], dtype=np.float64)


def read_saliency_reference(run_dir: str | Path) -> pd.DataFrame | None:
    p = Path(run_dir) / "authors" / "saliency.parquet"
    return pd.read_parquet(p) if p.is_file() else None
