"""Checkpoint format: weights_only round trip, RNG restore, clear errors, policy loading for evaluation."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from fls.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    load_policy,
    resolve_policy_file,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from fls.models import build_model


def _payload(model: torch.nn.Module, arch: str = "nature_cnn") -> Checkpoint:
    return Checkpoint(
        arch=arch, game="Breakout", num_actions=4, model=model.state_dict(), optimizer=None,
        update=3, global_step=3072, config={"arch": arch, "seed": 1}, rng=rng_state(),
    )


def test_roundtrip_weights_only_and_rng(tmp_path):
    torch.manual_seed(0)
    model = build_model("nature_cnn", 4)
    random.seed(5)
    np.random.seed(6)
    torch.manual_seed(7)
    path = save_checkpoint(tmp_path / "ck.pt", _payload(model))
    expected = (random.random(), float(np.random.rand()), torch.rand(3).tolist())
    # plain torch.load with weights_only=True must accept the file (no pickled classes inside)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "fls-checkpoint" and raw["update"] == 3
    data = load_checkpoint(path)
    set_rng_state(data.rng)
    assert (random.random(), float(np.random.rand()), torch.rand(3).tolist()) == expected
    for k, v in model.state_dict().items():
        assert torch.equal(data.model[k], v)


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="ck.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "ck.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a zip file")
    with pytest.raises(CheckpointError, match=r"bad\.pt: not a readable checkpoint"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.ones(2)}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign\.pt: not an fls checkpoint"):
        load_checkpoint(foreign)


def test_truncated_checkpoint_is_rejected(tmp_path):
    path = save_checkpoint(tmp_path / "ck.pt", _payload(build_model("nature_cnn", 4)))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="ck.pt"):
        load_checkpoint(path)


def test_load_policy_from_run_dir_prefers_model_pt(tmp_path):
    torch.manual_seed(1)
    latest = build_model("sparse_fls", 4)
    torch.manual_seed(2)
    final = build_model("sparse_fls", 4)
    save_checkpoint(tmp_path / "checkpoint.pt", _payload(latest, "sparse_fls"))
    policy = load_policy(tmp_path)
    model = policy.model
    assert policy.weights.path.endswith("checkpoint.pt") and policy.arch == "sparse_fls"
    assert all(torch.equal(model.state_dict()[k], v) for k, v in latest.state_dict().items())
    save_checkpoint(tmp_path / "model.pt", _payload(final, "sparse_fls"))
    model = load_policy(tmp_path).model
    assert resolve_policy_file(tmp_path).name == "model.pt"
    for k, v in final.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    assert not model.training
    obs = torch.zeros((2, 4, 84, 84), dtype=torch.uint8)
    with torch.no_grad():
        out = model(obs)
    assert out.logits.shape == (2, 4) and out.attention.shape == (2, 7, 7)


def test_load_policy_errors(tmp_path):
    with pytest.raises(CheckpointError, match="neither model.pt nor checkpoint.pt"):
        load_policy(tmp_path)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_policy(tmp_path / "nope.pt")
    # weights of one architecture declared as another
    save_checkpoint(tmp_path / "model.pt", _payload(build_model("nature_cnn", 4), "sparse_fls"))
    with pytest.raises(CheckpointError, match="do not fit architecture 'sparse_fls'"):
        load_policy(tmp_path)


def test_the_typed_view_saves_the_documented_dict_and_reads_back_to_the_same_bytes(tmp_path):
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "ck.pt", _payload(build_model("nature_cnn", 4)))
    raw = torch.load(path, weights_only=True)
    # keys not recorded (num_updates, learning_rate, stats: as in imported weights) are absent, not None
    assert list(raw) == ["format", "version", "arch", "game", "num_actions", "model", "optimizer", "update",
                         "global_step", "config", "rng"]
    # a loaded checkpoint saves back unchanged (the first save pickled the model's OrderedDict state_dict with
    # its metadata, a loaded one is plain, so compare a loaded one saved twice)
    once = save_checkpoint(tmp_path / "once.pt", load_checkpoint(path))
    twice = save_checkpoint(tmp_path / "twice.pt", load_checkpoint(once))
    assert twice.read_bytes() == once.read_bytes() and list(torch.load(once, weights_only=True)) == list(raw)
    torch.save({**raw, "config": "seed=1"}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad\.pt: checkpoint field 'config' must be a mapping, got str"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({k: v for k, v in raw.items() if k != "global_step"}, tmp_path / "short.pt")
    with pytest.raises(CheckpointError, match=r"short\.pt: checkpoint lacks keys \['global_step'\]"):
        load_checkpoint(tmp_path / "short.pt")


def test_same_payload_gives_the_same_bytes_whatever_the_file_name(tmp_path):
    """Checkpoints are content-addressed by their sha256 (eval.json, score summaries, the authors' import):
    torch.save would otherwise embed the name of the atomic write's random temp file in the archive."""
    torch.manual_seed(0)
    payload = _payload(build_model("nature_cnn", 4))
    a = save_checkpoint(tmp_path / "a" / "model.pt", payload)
    b = save_checkpoint(tmp_path / "checkpoint.pt", payload)
    assert a.read_bytes() == b.read_bytes()
    assert load_checkpoint(b).global_step == 3072
