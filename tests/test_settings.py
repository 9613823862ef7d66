"""One declaration per setting: fls.settings (bounds, choices) and the CLI options built from it."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Optional

import pytest
import typer
from typer.testing import CliRunner

from fls.config import ConfigError, build_config, load_config
from fls.ppo.config import PPOConfig, TrainConfig
from fls.settings import check_fields, declaration, field_problem, setting
from pipeline.config_flags import ConfigFlag, config_flags


@dataclass
class Toy:
    steps: int = setting(8, ge=1, help="Steps.")
    rate: float = setting(0.5, gt=0, help="Rate.")
    mix: float = setting(0.25, ge=0, le=1, help="Mix.")
    mode: str = setting("fast", choices=("fast", "slow"), help="Mode.")
    cap: Optional[int] = setting(None, ge=1, help="Cap.")
    loud: bool = setting(True, help="Loud.")
    greedy: bool = setting(False, flag="--greedy/--sampled", help="Greedy.")
    budget: int = setting(1000, cli_type=str, metavar="N", show_default=False, help="Budget, e.g. 1e3.")
    tags: list[str] = setting(default_factory=lambda: ["a", "b"], help="Tags.")


class ToyError(ValueError):
    pass


def test_a_declaration_is_field_metadata_and_leaves_the_dataclass_as_it_was():
    t = Toy()
    assert dataclasses.asdict(t) == {"steps": 8, "rate": 0.5, "mix": 0.25, "mode": "fast", "cap": None, "loud": True,
                                     "greedy": False, "budget": 1000, "tags": ["a", "b"]}
    assert Toy().tags is not t.tags  # a default_factory stays a factory
    assert declaration(dataclasses.fields(Toy)[0]).help == "Steps."


@pytest.mark.parametrize("changes,message", [
    ({"steps": 0}, "toy: field 'steps' must be >= 1, got 0"),
    ({"rate": 0.0}, "toy: field 'rate' must be > 0, got 0.0"),
    ({"mix": 1.5}, "toy: field 'mix' must be in [0, 1], got 1.5"),
    ({"mode": "slowly"}, "toy: field 'mode' must be one of fast, slow, got 'slowly'"),
    ({"cap": 0}, "toy: field 'cap' must be >= 1 when given, got 0"),
])
def test_check_fields_names_the_field_its_bound_and_the_value(changes, message):
    with pytest.raises(ToyError) as exc:
        check_fields(Toy(**changes), "toy", ToyError)
    assert str(exc.value) == message


def test_check_fields_passes_good_values_and_an_unset_optional():
    check_fields(Toy(steps=1, rate=1e-9, mix=1.0, mode="slow", cap=None), "toy")
    check_fields(Toy(cap=3), "toy")
    assert field_problem("x", declaration(dataclasses.fields(Toy)[0]), 1) is None


def test_build_config_checks_the_declarations_of_a_config_without_validate():
    with pytest.raises(ConfigError, match="field 'steps' must be >= 1, got 0"):
        build_config(Toy, {"steps": 0})


def test_train_config_takes_the_ppo_declarations_and_keeps_its_key_order():
    ppo = {f.name: f for f in dataclasses.fields(PPOConfig)}
    train = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name, f in ppo.items():
        assert train[name].default == f.default and train[name].metadata == f.metadata, name
    # the order run_info.json and checkpoints record (their bytes must not change)
    assert list(TrainConfig().to_dict()) == [
        "arch", "game", "seed", "total_steps", "num_envs", "num_steps", "update_epochs", "num_minibatches",
        "learning_rate", "anneal_lr", "adam_eps", "clip_coef", "clip_vloss", "ent_coef", "vf_coef", "max_grad_norm",
        "gamma", "gae_lambda", "norm_adv", "noop_max", "max_episode_steps", "max_episode_steps_by_game",
        "checkpoint_every", "device", "torch_threads", "env_threads", "deterministic", "progress", "tensorboard",
        "precision", "channels_last",
    ]
    assert TrainConfig(num_envs=3).ppo == PPOConfig(num_envs=3)


@pytest.mark.parametrize("changes,message", [
    ({"num_envs": 0}, "train: field 'num_envs' must be >= 1, got 0"),
    ({"gamma": 1.5}, "train: field 'gamma' must be in [0, 1], got 1.5"),
    ({"learning_rate": 0}, "train: field 'learning_rate' must be > 0, got 0.0"),
    ({"torch_threads": -1}, "train: field 'torch_threads' must be >= 0, got -1"),
])
def test_train_bounds_keep_their_one_line_messages(changes, message):
    with pytest.raises(ConfigError) as exc:
        build_config(TrainConfig, changes)
    assert str(exc.value) == message


@dataclass
class Counted:
    """Counts its validations (a class attribute: dataclass fields are compared)."""

    method: str = setting("a", choices=("a", "b"), help="Method.")
    only_b: int = setting(1, ge=1, help="Read by method b only.")
    n: int = setting(2, ge=1, help="N.")

    calls = 0

    def validate(self) -> None:
        type(self).calls += 1
        check_fields(self, "counted")


def test_load_config_validates_once_and_still_checks_keys_it_does_not_read(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("counted:\n  method: a\n  only_b: 5\n  n: 3\n")
    Counted.calls = 0
    cfg = load_config(Counted, p, "counted", {"n": 4}, reads=lambda c: ("method", "n") if c.method == "a" else ("method", "only_b", "n"))
    assert (cfg.method, cfg.only_b, cfg.n) == ("a", 1, 4) and Counted.calls == 1
    p.write_text("counted:\n  method: a\n  only_b: 0\n")
    with pytest.raises(ConfigError, match=re.escape(f"{p}:counted: field 'only_b' must be >= 1, got 0")):
        load_config(Counted, p, "counted", reads=("method", "n"))
    p.write_text("counted:\n  n: 0\n")
    with pytest.raises(ConfigError, match="counted: field 'n' must be >= 1, got 0"):
        load_config(Counted, p, "counted")


def _toy_app(seen: dict) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @config_flags(Toy)
    def main(
        name: str = typer.Option("x", "--name", help="Not a config field."),
        steps: ConfigFlag = None,
        loud: ConfigFlag = None,
        greedy: ConfigFlag = None,
        budget: ConfigFlag = None,
        tags: ConfigFlag = None,
        *,
        overrides: dict,
    ) -> None:
        seen.update(overrides, name=name, steps_param=steps)
        seen["cfg"] = build_config(Toy, overrides)

    @app.command("other")
    def other() -> None:  # a second command, so that `main` is a named subcommand
        pass

    return app


def test_config_flags_builds_each_option_from_its_declaration():
    seen: dict = {}
    res = CliRunner().invoke(_toy_app(seen), ["main", "--steps", "3", "--no-loud", "--greedy", "--budget", "2e3",
                                              "--tags", "c,d", "--name", "y"])
    assert res.exit_code == 0, res.output
    assert seen["cfg"] == Toy(steps=3, loud=False, greedy=True, budget=2000, tags=["c", "d"])
    assert seen["name"] == "y" and seen["steps_param"] == 3  # the command still gets each value by name
    seen.clear()
    assert CliRunner().invoke(_toy_app(seen), ["main"]).exit_code == 0
    assert {k: seen[k] for k in ("steps", "loud", "greedy", "budget", "tags")} == dict.fromkeys(
        ("steps", "loud", "greedy", "budget", "tags"))  # unset flags leave the params file's value
    assert seen["cfg"] == Toy()


def test_config_flags_help_shows_the_declared_help_and_default():
    res = CliRunner().invoke(_toy_app({}), ["main", "--help"], env={"COLUMNS": "200"})
    out = " ".join(res.output.split())
    for text in ("Steps. (default: 8)", "Loud. (default: --loud)", "Greedy. (default: --sampled)",
                 "Tags. (default: a,b)", "--no-loud", "--sampled"):
        assert text in out, text
    assert "Budget, e.g. 1e3. " in out + " " and "(default: 1000)" not in out  # show_default=False


def test_config_flags_needs_an_overrides_parameter():
    with pytest.raises(TypeError, match="overrides"):
        config_flags(Toy)(lambda steps=None: None)


def test_a_library_error_names_the_value_not_a_flag():
    from fls.ppo.multirun import MultiRunError, parse_seeds

    with pytest.raises(MultiRunError) as exc:
        parse_seeds("1,x")
    assert str(exc.value).startswith("seeds: ") and "--" not in str(exc.value)


# every flag each command had before its options came from the declarations (--quiet: now hidden)
FLAGS = {
    "train": "--arch --checkpoint-every --device --game --max-episode-steps --no-progress --no-tensorboard --num-envs "
             "--num-steps --out --out-root --params --progress --restart-on-change --seed --seeds --tensorboard "
             "--torch-threads --total-steps",
    "evaluate": "--arch --checkpoint --deterministic --device --env-groups --episodes --frame-every --frames --game "
                "--init-seed --max-episode-steps --num-envs --out --params --run --seed --stochastic --video "
                "--video-max-steps --progress --no-progress",
    "score": "--alignment --arch --atari-head --batch-size --checkpoint --device --game --init-seed --max-inputs "
             "--max-trials --method --n-draws --out --params --protocol --run --seed --variant --progress --no-progress",
}


@pytest.mark.parametrize("command", sorted(FLAGS))
def test_stage_commands_keep_every_flag_and_hide_quiet(command):
    from pipeline.app import app

    res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    shown = set(re.findall(r"--[a-z][a-z-]*", res.output)) - {"--help"}
    assert set(FLAGS[command].split()) <= shown, sorted(set(FLAGS[command].split()) - shown)
    assert "--quiet" not in shown


def test_quiet_still_means_no_progress_on_score(monkeypatch, tmp_path):
    import pipeline.score

    seen = {}

    def fake_score_to_dir(cfg, out, **kwargs):
        seen["progress"] = cfg.progress
        raise ValueError("stop")

    monkeypatch.setattr(pipeline.score, "score_to_dir", fake_score_to_dir)
    from pipeline.app import app

    base = ["score", "--atari-head", str(tmp_path), "--out", str(tmp_path / "o"), "--method", "uniform"]
    for extra, progress in (([], True), (["--quiet"], False), (["--no-progress"], False)):
        res = CliRunner().invoke(app, base + extra)
        assert res.exit_code == 2 and "stop" in res.output and seen.pop("progress") is progress, (extra, res.output)
