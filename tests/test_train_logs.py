"""dvclive / TensorBoard mirrors of metrics.csv: names, step axis, resume without duplicated or lost steps."""

from __future__ import annotations

import csv
import json
import struct

import pytest
from typer.testing import CliRunner

from fls.ppo.live_log import RENAMED, TIMING
from fls.tb_events import EventFileError, crc32c, encode_event, frame_record, masked_crc, read_records, read_scalars
from fls.ppo.run_dir import METRIC_COLUMNS
from fls.ppo.trainer import train
from helpers import read_csv, tiny_train_config
from pipeline.app import app


def tsv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def metrics_rows(out):
    return read_csv(out / "metrics.csv")[1]


def live_files(out):
    root = out / "dvclive" / "plots" / "metrics"
    return {p.relative_to(root).with_suffix("").as_posix(): tsv(p) for p in sorted(root.rglob("*.tsv"))}


def assert_mirrors_metrics_csv(out):
    rows = metrics_rows(out)
    files = live_files(out)
    logged = {RENAMED.get(c, c) for c in METRIC_COLUMNS} - {"global_step", "update"}
    assert set(files) == logged
    for name, col in [(RENAMED.get(c, c), c) for c in METRIC_COLUMNS if c not in ("global_step", "update")]:
        leaf = name.rsplit("/", 1)[-1]
        assert [int(r["step"]) for r in files[name]] == [int(r["global_step"]) for r in rows], name
        want = [float(r[col]) if r[col] != "" else float("nan") for r in rows]
        got = [float(r[leaf]) for r in files[name]]
        assert got == pytest.approx(want, nan_ok=True), name
    summary = json.loads((out / "dvclive" / "metrics.json").read_text())
    assert summary["step"] == int(rows[-1]["global_step"])
    assert summary["losses"]["value_loss"] == pytest.approx(float(rows[-1]["losses/value_loss"]))
    flat = {f"{k}/{kk}" for k, v in summary.items() if isinstance(v, dict) for kk in v}
    assert not flat & set(TIMING) and "time" not in summary  # timing is plotted, never a metric
    assert "charts/episodic_return" in flat


def test_dvclive_files_mirror_metrics_csv_and_tensorboard_option(tmp_path):
    out = tmp_path / "run"
    train(tiny_train_config(total_steps=64, tensorboard=True), out)
    assert_mirrors_metrics_csv(out)
    assert not (out / "dvclive" / "dvc.yaml").exists()  # dvc.yaml declares these files itself
    path = out / "tensorboard" / "events.out.tfevents.0.fls"
    assert b"brain.Event:2" in read_records(path)[0]
    events = read_scalars(path)
    assert [e.step for e in events] == [32, 64]
    rows = metrics_rows(out)
    assert events[1].values["losses/value_loss"] == pytest.approx(float(rows[1]["losses/value_loss"]), rel=1e-6)
    assert "charts/episodic_return" in events[1].values


def test_no_tensorboard_files_by_default(tmp_path):
    out = tmp_path / "run"
    train(tiny_train_config(total_steps=32), out)
    assert not (out / "tensorboard").exists() and (out / "dvclive" / "metrics.json").is_file()


def test_resume_after_crash_keeps_each_step_once(tmp_path):
    out = tmp_path / "run"
    cfg = tiny_train_config(total_steps=5 * 32, checkpoint_every=2, tensorboard=True)

    def crash_at_3(row):
        if row["update"] == 3:
            raise KeyboardInterrupt  # after update 3 was logged everywhere, before its checkpoint

    with pytest.raises(KeyboardInterrupt):
        train(cfg, out, on_update=crash_at_3)
    assert [int(r["step"]) for r in live_files(out)["losses/value_loss"]] == [32, 64, 96]
    # a kill half-way through a dvclive append leaves a torn line; the resume must not keep it
    with open(out / "dvclive" / "plots" / "metrics" / "losses" / "value_loss.tsv", "a") as fh:
        fh.write("12")
    (out / "dvclive" / "metrics.json").write_text("{torn")
    train(cfg, out)
    assert [int(r["step"]) for r in live_files(out)["losses/value_loss"]] == [32, 64, 96, 128, 160]
    assert_mirrors_metrics_csv(out)
    events = read_scalars(out / "tensorboard" / "events.out.tfevents.0.fls")
    assert [e.step for e in events] == [32, 64, 96, 128, 160]


def test_stopped_and_resumed_run_logs_the_same_history_as_its_csv(tmp_path):
    # A resumed run restarts its games from a derived seed (fls.ppo.trainer.env_seed), so its numbers after
    # the stop differ from an uninterrupted run's; before the stop they are the same, and both mirror their csv.
    cfg = tiny_train_config(total_steps=4 * 32, checkpoint_every=1)
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b", stop_after_updates=2)
    train(cfg, tmp_path / "b")
    a, b = live_files(tmp_path / "a"), live_files(tmp_path / "b")
    assert a["losses/value_loss"][:2] == b["losses/value_loss"][:2]
    assert [int(r["step"]) for r in b["losses/value_loss"]] == [32, 64, 96, 128]
    assert_mirrors_metrics_csv(tmp_path / "b")


def test_cli_tensorboard_flag(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--out", str(out), "--total-steps", "32", "--num-envs", "2", "--num-steps",
                                   "16", "--no-progress", "--torch-threads", "1", "--tensorboard"])
    assert res.exit_code == 0, res.output
    assert [e.step for e in read_scalars(out / "tensorboard" / "events.out.tfevents.0.fls")] == [32]


def test_event_file_framing_against_known_values():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(b"") == 0
    payload = encode_event(300, 1.5, {"a/b": 0.25})
    rec = frame_record(payload)
    assert struct.unpack("<Q", rec[:8])[0] == len(payload)
    assert struct.unpack("<I", rec[8:12])[0] == masked_crc(rec[:8])
    # hand-assembled protobuf: wall_time (fixed64), step (varint 300 = ac 02), summary{value{tag, simple_value}}
    value = b"\x0a\x03a/b" + b"\x15" + struct.pack("<f", 0.25)
    assert payload == b"\x09" + struct.pack("<d", 1.5) + b"\x10\xac\x02" + b"\x2a" + bytes([len(value) + 2]) + b"\x0a" + bytes([len(value)]) + value


def test_corrupt_event_file_is_detected(tmp_path):
    p = tmp_path / "ev"
    p.write_bytes(frame_record(encode_event(1, 0.0, {"x": 1.0}))[:-1] + b"\x00")
    with pytest.raises(EventFileError, match="checksum"):
        read_scalars(p)
