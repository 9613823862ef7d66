"""Synthetic stand-ins for the authors' release (tests and demos): files in their formats, random contents.

``write_joblib_like`` writes a dict of arrays the way joblib 0.13 (the authors' pinned version) lays out
``joblib.dump``: a protocol-4 pickle where each array is a ``joblib.numpy_pickle.NumpyArrayWrapper``
record followed, after the pickle frame is flushed, by the array's raw C-order bytes. It needs no joblib.
"""

from __future__ import annotations

import io
import json
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from fls.atomic import atomic_write_bytes
from fls import tb_events as events
from fls.authors.convert import ARCH_TO_NETWORK, expected_variables, network_to_arch
from fls.frames import OBS_SIZE
from fls.games import get_game
from fls.models import ARCHS
from fls.models.blocks import TRUNK_LAYERS, trunk_output_size


class _JoblibLikePickler(pickle._Pickler):
    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
            self.write(pickle.GLOBAL + b"joblib.numpy_pickle\nNumpyArrayWrapper\n")
            self.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)
            state = {"subclass": np.ndarray, "shape": obj.shape, "order": "C", "dtype": obj.dtype, "allow_mmap": True}
            super().save(state)
            self.write(pickle.BUILD)
            if self.proto >= 4:
                self.framer.commit_frame(force=True)
            self.framer.file_write(np.ascontiguousarray(obj).tobytes("C"))
            return
        super().save(obj, save_persistent_id)


def joblib_like_bytes(obj: Any, protocol: int = 4) -> bytes:
    buf = io.BytesIO()
    _JoblibLikePickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def write_joblib_like(path: str | Path, obj: Any, protocol: int = 4) -> Path:
    return atomic_write_bytes(path, joblib_like_bytes(obj, protocol))


def random_baselines_variables(network: str, num_actions: int, rng: np.random.Generator, optimizer: bool = True) -> dict[str, np.ndarray]:
    """A Baselines ``{name: array}`` dict for ``network`` with random float32 values scaled by 1/sqrt(fan-in).

    With ``optimizer`` it also holds Adam's slots and beta powers, as a real save of all global variables does.
    """
    spec = ARCHS[network_to_arch(network)]
    size = trunk_output_size(TRUNK_LAYERS[spec.trunk], OBS_SIZE + 2 * spec.input_pad)
    # sum-pooling adds up H*W positions: shrink the first fc so logits stay O(1) and 1e-5 stays meaningful
    pool_scale = 1.0 / (size * size) if spec.combine == "pool" else 1.0
    out: dict[str, np.ndarray] = {}
    for name, shape in expected_variables(network, num_actions).items():
        fan_in = int(np.prod(shape[:-1])) if name.endswith("/w:0") else 1
        scale = 1.0 / np.sqrt(max(fan_in, 1)) if name.endswith("/w:0") else 0.1
        if name.endswith("pi/fc1/w:0"):
            scale *= pool_scale
        out[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
        if optimizer:
            out[name[:-2] + "/Adam:0"] = np.zeros(shape, np.float32)
            out[name[:-2] + "/Adam_1:0"] = np.zeros(shape, np.float32)
    if optimizer:
        out["beta1_power:0"] = np.array(0.9, dtype=np.float32)
        out["beta2_power:0"] = np.array(0.999, dtype=np.float32)
    return out


def make_authors_tree(
    root: str | Path,
    models: list[tuple[str, str, int]],
    *,
    seed: int = 0,
    episodes: int = 8,
    saliency_trials: dict[str, list[int]] | None = None,
    inputs_per_trial: int = 16,
    curve_points: int = 5,
) -> list[Path]:
    """Folders ``root/<game>.<network>/<seed:02d>/`` for (arch, game, seed) triples: model.pkl, config.json,
    eval.pkl, an event file, and saliency.pkl where ``saliency_trials`` lists trial numbers for that game."""
    rng = np.random.default_rng(seed)
    folders = []
    for arch, game, train_seed in models:
        network = ARCH_TO_NETWORK[arch]
        folder = Path(root) / f"{game}.{network}" / f"{train_seed:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        write_joblib_like(folder / "model.pkl", random_baselines_variables(network, get_game(game).num_actions, rng))
        (folder / "config.json").write_text(json.dumps({"env_name": f"{game}NoFrameskip-v4", "network": network}))
        rewards = rng.integers(0, 20, size=episodes).astype(np.float32)
        eval_results = {"rewards": rewards.tolist(), "lengths": rng.integers(100, 1000, size=episodes).astype(float).tolist(),
                        "elapsed_time": [1.0] * episodes, "done_per_env": [episodes]}
        atomic_write_bytes(folder / "eval.pkl", pickle.dumps(eval_results, protocol=3))
        rows = []
        for i in range(1, curve_points + 1):
            rows.append({"total_timesteps": float(1024 * i), "eprewmean": float("nan") if i == 1 else float(rng.uniform(0, 10)),
                         "nupdates": float(i), "fps": 500.0})
        events.write_event_file(folder / "events.out.tfevents.1560000000.synthetic", rows)
        trials = (saliency_trials or {}).get(game)
        if trials:
            recs = []
            for t in trials:
                m = {k: rng.uniform(0, 2, size=inputs_per_trial) for k in ("nss", "kldiv", "sauc")}
                m["nss"][0] = np.nan  # an input without fixations
                recs.append(OrderedDict([("trial_number", np.int64(t)), ("metrics", m)]))
            atomic_write_bytes(folder / "saliency.pkl", pickle.dumps(recs, protocol=3))
        folders.append(folder)
    return folders
