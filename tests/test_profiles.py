"""profiles/*.yaml hold only what differs from the configs' defaults; params.yaml is a profile's render.

The render is what DVC and every stage read, so these tests pin its rules: the defaults come from the
dataclasses, a profile value replaces the default whole, unknown keys fail with the file and key named, the
committed params.yaml is byte for byte the render of its profile, and the output stays plain YAML that
``dvc exp run -S`` can edit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers import REPO

from fls.config import ConfigError, build_config, read_params, resolved
from fls.profiles import SECTIONS, config_class, defaults, load_profile, merge, render

NAMES = sorted(p.stem for p in (REPO / "profiles").glob("*.yaml"))
# Keys a profile states although they equal the default (each with its reason in the profile's comment)
STATED_DEFAULTS = {("demo", "train", "tensorboard")}  # shows the switch; train.tensorboard is optional (not rendered otherwise)

MINIMAL = "profile: t\ngrid: {archs: [nature_cnn], games: [Breakout], seeds: [1], train_seeds: [1]}\n"


def _profile(tmp_path: Path, text: str) -> Path:
    (tmp_path / "profiles").mkdir(exist_ok=True)
    p = tmp_path / "profiles" / "t.yaml"
    p.write_text(text)
    return p


def test_params_yaml_is_the_render_of_its_profile_byte_for_byte():
    """The committed params.yaml is the demo render; after `make repro PROFILE=x` it is x's render."""
    name = read_params(REPO / "params.yaml")["profile"]
    assert name in NAMES, f"params.yaml names profile {name!r}, which profiles/ does not hold"
    want = render(REPO / "profiles" / f"{name}.yaml", REPO)
    assert (REPO / "params.yaml").read_text() == want, f"params.yaml is stale: fls params render --profile {name}"


def test_the_demo_render_is_the_embedded_params_yaml_when_it_holds_demo():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if params["profile"] != "demo":
        pytest.skip(f"params.yaml holds the {params['profile']!r} profile")
    assert yaml.safe_load(render(REPO / "profiles" / "demo.yaml", REPO)) == params
    assert render(REPO / "profiles" / "demo.yaml", REPO).startswith("# GENERATED from profiles/demo.yaml by "
                                                                   "`fls params render --profile demo`")


@pytest.mark.parametrize("name", NAMES)
def test_a_profile_states_only_what_differs_from_the_defaults(name):
    raw = yaml.safe_load((REPO / "profiles" / f"{name}.yaml").read_text())
    for section in SECTIONS:
        base = defaults(section)
        same = [k for k, v in (raw.get(section.name) or {}).items()
                if v == base[k] and type(v) is type(base[k]) and (name, section.name, k) not in STATED_DEFAULTS
                and k not in section.required]
        assert not same, f"profiles/{name}.yaml: {section.name}.{same} restate the default; drop them"


@pytest.mark.parametrize("name", NAMES)
def test_every_render_builds_every_config_and_is_complete(name):
    params = load_profile(REPO / "profiles" / f"{name}.yaml")
    assert list(params) == ["profile", *(s.name for s in SECTIONS)]
    for section in SECTIONS:
        fields = [f.name for f in dataclasses.fields(config_class(section)) if f.init]
        keys = list(params[section.name])
        assert keys == [f for f in fields if f in keys], f"{name}: {section.name} keys not in field order"
        assert set(fields) - set(section.optional) <= set(keys)
        build_config(config_class(section), params[section.name])
    assert yaml.safe_load(render(REPO / "profiles" / f"{name}.yaml", REPO)) == params


def test_unset_keys_get_the_dataclass_defaults(tmp_path):
    params = load_profile(_profile(tmp_path, MINIMAL))
    for section in SECTIONS:
        cls = config_class(section)
        built = resolved(build_config(cls, params[section.name]))
        expected = resolved(cls(**{k: params[section.name][k] for k in section.required}))
        assert built == expected, section.name
        assert not set(section.optional) & set(params[section.name])  # optional: only where a profile sets them
    assert params["train"]["max_episode_steps_by_game"] == {"SpaceInvaders": 75000}  # TrainConfig's default


def test_a_profile_value_replaces_the_default_whole(tmp_path):
    text = MINIMAL.replace("train_seeds: [1]}", "train_seeds: [1], reference_methods: [uniform]}") + (
        "train: {max_episode_steps_by_game: {Breakout: 5}, tensorboard: true}\n"
        "evaluate: {max_episode_steps_by_game: {}, frame_every: 3}\n")
    params = load_profile(_profile(tmp_path, text))
    assert params["train"]["max_episode_steps_by_game"] == {"Breakout": 5}  # no SpaceInvaders merged in
    assert params["grid"]["reference_methods"] == ["uniform"]
    assert params["evaluate"]["max_episode_steps_by_game"] == {}
    assert params["train"]["tensorboard"] is True and params["evaluate"]["frame_every"] == 3  # optional, set
    keys = list(params["train"])
    assert keys.index("progress") < keys.index("tensorboard") == len(keys) - 1  # at its field's place


def test_merge_of_a_complete_params_file_is_itself():
    params = read_params(REPO / "params.yaml")
    assert merge(params) == params


@pytest.mark.parametrize("text, message", [
    (MINIMAL + "trian: {total_steps: 5}\n", r"profiles/t\.yaml: unknown section 'trian'"),
    (MINIMAL + "train: {total_step: 5}\n", r"profiles/t\.yaml: unknown key 'train\.total_step' \(TrainConfig has"),
    (MINIMAL + "train: [1]\n", r"profiles/t\.yaml: section 'train' must be a mapping"),
    (MINIMAL.replace(", train_seeds: [1]", ""), r"profiles/t\.yaml: 'grid\.train_seeds' must be set"),
    (MINIMAL.replace("profile: t\n", ""), r"profiles/t\.yaml: missing top-level 'profile'"),
    (MINIMAL + "evaluate: {episodes: many}\n", r"profiles/t\.yaml:evaluate: field 'episodes': expected an integer"),
])
def test_a_bad_profile_is_a_one_line_error_naming_file_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_profile(_profile(tmp_path, text))
    assert "\n" not in str(info.value)


def test_the_render_is_plain_yaml_that_dvc_exp_run_set_param_can_edit(tmp_path):
    from dvc.utils.hydra import apply_overrides

    for name in NAMES:
        text = render(REPO / "profiles" / f"{name}.yaml", REPO)
        events = list(yaml.parse(text))
        assert not [e for e in events if getattr(e, "anchor", None) or getattr(e, "tag", None)], name
    path = tmp_path / "params.yaml"
    path.write_text(render(REPO / "profiles" / "demo.yaml", REPO))
    apply_overrides(str(path), ["train.total_steps=2048", "score.max_inputs=8"])  # what `dvc exp run -S` calls
    edited = load_profile(path)
    assert (edited["train"]["total_steps"], edited["score"]["max_inputs"]) == (2048, 8)
    assert edited["evaluate"] == load_profile(REPO / "profiles" / "demo.yaml")["evaluate"]


def test_fls_params_render_and_check(tmp_path, monkeypatch):
    import typer

    from pipeline.app import app

    command = typer.main.get_command(app)
    runner = CliRunner()
    monkeypatch.chdir(REPO)
    out = tmp_path / "params.yaml"
    res = runner.invoke(command, ["params", "render", "--profile", "quick", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text() == render(REPO / "profiles" / "quick.yaml", REPO)
    res = runner.invoke(command, ["params", "render", "profiles/tiny.yaml", "--out", "-"])
    assert res.exit_code == 0 and res.stdout == render(REPO / "profiles" / "tiny.yaml", REPO)
    res = runner.invoke(command, ["params", "check", "--params", str(out)])
    assert res.exit_code == 0, res.output
    out.write_text(out.read_text().replace("total_steps: 256", "total_steps: 512"))
    res = runner.invoke(command, ["params", "check", "--params", str(out)])
    assert res.exit_code == 1 and "+  total_steps: 256" in res.output and "not the render of profiles/quick.yaml" in res.output
    res = runner.invoke(command, ["params", "render", "profiles/tiny.yaml", "--profile", "tiny", "--out", "-"])
    assert res.exit_code == 2 and "exactly one" in res.output
    res = runner.invoke(command, ["params", "render", "--profile", "nope", "--out", "-"])
    assert res.exit_code == 2 and "profiles/nope.yaml: no such profile" in res.output
