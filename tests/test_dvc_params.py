"""dvc.yaml lists exactly the params keys each stage's command reads, and every profile can fill them.

Each stage's command, as dvc.yaml spells it (every value of every matrix axis of any profile, both
Atari-HEAD sources), runs through the real ``fls`` CLI with params.yaml read through a recorder and the
stage's work stubbed out. What is compared with dvc.yaml is therefore the set of keys the code asks the
params file for, not a second list kept by hand.
"""

from __future__ import annotations

import copy
import re
import shlex
import sys
from pathlib import Path

import pytest
import typer
import yaml
from click.testing import CliRunner

import fls.config
from fls.atari_head.acquire import SOURCES, UNTRACKED
from fls.profiles import load_profile

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
# each profile as DVC sees it: rendered into params.yaml (fls.profiles: the overrides over the defaults)
PROFILES = {p.name: load_profile(p) for p in [REPO / "params.yaml", *sorted((REPO / "profiles").glob("*.yaml"))]}
UNTRACKED_KEYS = {f"atari_head.{f}" for f in UNTRACKED}


class _Stop(Exception):
    """Raised by the stubbed stage work: the command has read its params by then."""


class _Recorder(dict):
    """A params mapping that notes every top-level key and section key asked for (``[]`` or ``get``).

    Iterating a section (the whole-section check of ``fls.config.load_config``) is not noted: what counts
    is what the command takes.
    """

    def __init__(self, data: dict, path: str, seen: set[str]) -> None:
        super().__init__(data)
        self._path, self._seen = path, seen

    def _note(self, key: str, value):
        name = f"{self._path}.{key}" if self._path else key
        self._seen.add(name)
        return _Recorder(value, name, self._seen) if isinstance(value, dict) and not self._path else value

    def __getitem__(self, key):
        return self._note(key, super().__getitem__(key))

    def get(self, key, default=None):
        return self._note(key, super().get(key, default))


def _stub_work():
    """(original, replacement) for the call after which each stage command has read everything."""
    import importlib

    def stop(*args, **kwargs):
        raise _Stop

    work = [("fls.atari_head.sample", "make_sample"), ("fls.atari_head.download", "download"),
            ("fls.atari_head.preprocess", "preprocess"), ("fls.ppo.trainer", "train"), ("fls.authors.importer", "import_one"),
            ("fls.evaluation.stage", "evaluate_to_dir"), ("fls.scoring.score", "score_to_dir"),
            ("fls.layout", "Layout")]
    return [(getattr(importlib.import_module(m), f), stop) for m, f in work]


def _patch_everywhere(monkeypatch, original, replacement) -> None:
    for name, mod in list(sys.modules.items()):
        if name.split(".")[0] in ("fls", "pipeline"):
            for attr, value in list(vars(mod).items()):
                if value is original:
                    monkeypatch.setattr(mod, attr, replacement)


def _cells(stage: dict) -> list[dict]:
    """Matrix cells covering every value any profile gives each axis (the other axes at their first value)."""
    axes: dict[str, list] = {}
    for axis, ref in (stage.get("matrix") or {}).items():
        key = re.fullmatch(r"\$\{grid\.(\w+)\}", ref).group(1)
        axes[axis] = list(dict.fromkeys(v for p in PROFILES.values() for v in p["grid"][key]))
    base = {a: v[0] for a, v in axes.items()}
    cells = [base] + [{**base, a: v} for a, vs in axes.items() for v in vs[1:]]
    return cells


def _interpolate(text: str, params: dict, cell: dict) -> str:
    def value(m: re.Match) -> str:
        ref = m.group(1)
        if ref.startswith("item."):
            return str(cell[ref[5:]])
        node = params
        for k in ref.split("."):
            node = node[k]
        return str(node)

    return re.sub(r"\$\{([^}]+)\}", value, text)


def _reads_by_stage(tmp_path: Path, monkeypatch) -> dict[str, set[str]]:
    """Stage -> the params keys its commands asked for (a section whose keys were asked for is dropped)."""
    from pipeline.app import app

    monkeypatch.chdir(tmp_path)
    seen: set[str] = set()
    parsed: dict[str, dict] = {}  # parse each params file once: the recorder copies it per read
    original = fls.config.read_params

    def recorded(path):
        text = Path(path).read_text()
        if text not in parsed:
            parsed[text] = original(path)
        return _Recorder(copy.deepcopy(parsed[text]), "", seen)

    _patch_everywhere(monkeypatch, original, recorded)
    for f, stub in _stub_work():
        _patch_everywhere(monkeypatch, f, stub)
    command = typer.main.get_command(app)  # built once: building it per invocation is most of the cost
    runner = CliRunner()
    reads: dict[str, set[str]] = {}
    for source in SOURCES:
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["data"]["atari_head_source"] = source
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        for name, stage in STAGES.items():
            for cell in _cells(stage):
                seen.clear()
                args = shlex.split(_interpolate(" ".join(stage["cmd"].split()), params, cell))
                assert args[0] == "fls", name
                res = runner.invoke(command, args[1:])
                assert isinstance(res.exception, _Stop), f"{name} {cell}: {res.output}\n{res.exception!r}"
                leaves = {k for k in seen if not any(o.startswith(k + ".") for o in seen)}
                reads.setdefault(name, set()).update(leaves)
    return reads


def _listed(stage: dict) -> list[str]:
    keys: list[str] = []
    for entry in stage.get("params", []):
        if isinstance(entry, str):
            keys.append(entry)
        else:
            for file, names in entry.items():
                assert file == "params.yaml", file
                keys += names
    return keys


def _covers(listed: str, key: str) -> bool:
    return key == listed or key.startswith(listed + ".")


def test_dvc_stages_list_exactly_the_params_keys_their_commands_read(tmp_path, monkeypatch):
    reads = _reads_by_stage(tmp_path, monkeypatch)
    assert UNTRACKED_KEYS <= set().union(*reads.values()), "an UNTRACKED key is no longer read: drop it"
    assert reads["score_reference"] >= {"score.center_sigma"} and "score.center_sigma" not in reads["score"]
    for name, stage in STAGES.items():
        read = reads[name] - UNTRACKED_KEYS
        listed = _listed(stage)
        assert len(listed) == len(set(listed)), f"{name}: a params key listed twice"
        uncovered = sorted(k for k in read if not any(_covers(entry, k) for entry in listed))
        assert not uncovered, f"{name}: reads {uncovered} but dvc.yaml does not list them"
        untracked = [entry for entry in listed if entry in UNTRACKED_KEYS]
        assert not untracked, f"{name}: lists {untracked}, which fls/atari_head/acquire.py UNTRACKED leaves out"
        unread = [entry for entry in listed if not any(_covers(entry, k) for k in read)]
        assert not unread, f"{name}: lists {unread} that its command never reads"
        for entry in listed:
            if entry in read:
                continue  # a key, or a section read whole (the report's grid)
            # a whole section: DVC then tracks every key a profile sets in it, so each must be one the stage reads
            for pname, profile in PROFILES.items():
                dead = [f"{entry}.{k}" for k in (profile.get(entry) or {}) if f"{entry}.{k}" not in read]
                assert not dead, f"{name} tracks {entry} whole, but {pname} sets {dead}, which it never reads"


@pytest.mark.parametrize("pname", sorted(PROFILES))
def test_every_profile_holds_every_params_key_dvc_yaml_lists(pname):
    """DVC refuses to run a stage whose listed key is missing from params.yaml (defaults do not count)."""
    profile = PROFILES[pname]
    for name, stage in STAGES.items():
        for key in _listed(stage):
            node = profile
            for k in key.split("."):
                assert isinstance(node, dict) and k in node, f"{pname}: no '{key}' (listed by dvc.yaml stage {name})"
                node = node[k]


def test_load_config_takes_only_the_fields_a_command_reads_but_checks_the_whole_section(tmp_path):
    """The mechanism behind the exact lists: ``load_config(reads=...)``."""
    from fls.config import ConfigError, load_config
    from fls.evaluation.config import EvalConfig
    from fls.scoring import ScoreConfig

    params = tmp_path / "params.yaml"
    params.write_text("score: {method: uniform, perturb_sigma: 7.0, n_draws: 9}\nevaluate: {frame_every: 3, episodes: 4, num_envs: 2}\n")
    uniform = load_config(ScoreConfig, params, "score", reads=ScoreConfig.fields_read)
    assert (uniform.method, uniform.n_draws, uniform.perturb_sigma) == ("uniform", 9, ScoreConfig.perturb_sigma)
    flagged = load_config(ScoreConfig, params, "score", {"method": "perturbation", "n_draws": 5}, reads=ScoreConfig.fields_read)
    assert (flagged.method, flagged.n_draws, flagged.perturb_sigma) == ("perturbation", 5, 7.0)
    for filming, frame_every in ((False, EvalConfig.frame_every), (True, 3)):
        ev = load_config(EvalConfig, params, "evaluate", reads=EvalConfig.fields_read(filming))
        assert (ev.episodes, ev.frame_every) == (4, frame_every)
    params.write_text("score: {method: uniform, perturb_sigmaa: 7.0}\n")  # an unread field is still checked
    with pytest.raises(ConfigError, match="unknown field 'perturb_sigmaa'"):
        load_config(ScoreConfig, params, "score", reads=ScoreConfig.fields_read)
    params.write_text("score: {method: uniform, perturb_stride: 0}\n")
    with pytest.raises(ConfigError, match="perturb_stride"):
        load_config(ScoreConfig, params, "score", reads=ScoreConfig.fields_read)
