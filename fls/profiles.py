"""Profiles as overrides of the stage configs' defaults, rendered into a complete ``params.yaml``.

The config dataclasses' defaults are the paper's settings, so a profile (``profiles/<name>.yaml``) states only
what it changes and why. DVC, however, reads only ``params.yaml`` and refuses a stage whose listed params key
is missing from it (a default in code does not count), so ``params.yaml`` must hold every key: it is the
profile *rendered*, each section's defaults (read from the dataclass through ``dataclasses.fields``, so they
are never copied by hand) overlaid with the profile's values.

Rules of the overlay:

- A profile value replaces the default whole: a list or a mapping (``max_episode_steps_by_game``) is never
  merged with the default's entries, so ``{}`` in a profile means "no per-game caps", not "the defaults".
- Each section's rendered keys are its dataclass's fields, in field order, except the ``optional`` ones of
  ``SECTIONS`` (fields a stage takes from a flag or that only tune how a stage runs): those appear only where
  the profile sets them. Keeping them out keeps ``params.yaml`` free of keys a whole-section DVC listing would
  track without the stage reading them (tests/test_dvc_params.py).
- A section without a dataclass (the top-level ``profile`` name) and the ``required`` keys (the grid's axes,
  which have no meaningful default) must be stated by the profile.
- Unknown sections and keys are errors naming the file and the key; the merged sections are then built into
  their configs (types, bounds) so a bad value fails here rather than halfway through ``dvc repro``.

Values are written as the profile spells them (a ``5e7`` stays a float; the stage coerces it), defaults as
the dataclass holds them. The output is plain YAML (no anchors or tags) that ``dvc exp run -S`` can edit.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fls.config import ConfigError, build_config, read_params
from fls.settings import default_of

PROFILE_DIR = "profiles"


class ProfileError(ConfigError):
    """A profile that cannot be rendered (message names the file and the key)."""


@dataclass(frozen=True)
class Section:
    """One params section: the config it builds and which of its fields a rendered file always holds."""

    name: str
    config: str  # "module:Class" of the dataclass; imported only when rendering
    optional: tuple[str, ...] = ()  # rendered only where a profile sets them
    required: tuple[str, ...] = ()  # no usable default: every profile states them


# The top-level scalar `profile` (the report's banner reads it) has no dataclass: every profile states it.
PROFILE_KEY = "profile"

SECTIONS: tuple[Section, ...] = (
    # train_seeds' default None (every seed trained) is for code only: dvc.yaml's train matrix needs a list
    Section("grid", "fls.layout:GridConfig", required=("archs", "games", "seeds", "train_seeds")),
    Section("data", "fls.atari_head.acquire:DataConfig"),
    Section("authors", "fls.authors.importer:AuthorsConfig"),
    # the download's mechanics (fls/atari_head/acquire.py UNTRACKED): set by no profile, tracked by no stage
    Section("atari_head", "fls.atari_head:AtariHeadConfig", optional=("api_url", "retries", "backoff", "timeout")),
    # arch/game/seed: each matrix cell's flags; the rest: run mechanics a profile may switch on
    Section("train", "fls.ppo.config:TrainConfig",
            optional=("arch", "game", "seed", "tensorboard", "precision", "channels_last")),
    # video_max_steps/frame_every are read only by --video/--frames, which no stage passes
    Section("evaluate", "fls.evaluation.evaluate:EvalConfig",
            optional=("episodic_life", "device", "video_max_steps", "frame_every", "env_groups", "env_workers")),
    Section("score", "fls.scoring.score:ScoreConfig", optional=("method",)),  # method: each stage's --method
    Section("report", "fls.report.build:ReportConfig", optional=("panel_seed", "atari_head_raw")),
)
SECTION_NAMES = (PROFILE_KEY, *(s.name for s in SECTIONS))


def config_class(section: Section) -> type:
    module, _, name = section.config.partition(":")
    return getattr(importlib.import_module(module), name)


def _plain(value: Any, where: str) -> Any:
    """A default as YAML writes it plainly (tuples as lists); anything else would need a tag."""
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, where) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where}: default {value!r} has no plain YAML form")


def defaults(section: Section) -> dict[str, Any]:
    """Every init field of the section's dataclass -> its default (``MISSING`` for a field without one)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config_class(section)):
        if not f.init:
            continue
        value = default_of(f)
        out[f.name] = value if value is dataclasses.MISSING else _plain(value, f"{section.config}.{f.name}")
    return out


def merge(profile: dict[str, Any], source: str = "profile") -> dict[str, Any]:
    """The complete params mapping of ``profile`` (parsed YAML): sections in ``SECTIONS`` order.

    A complete params file merges to itself, so this also reads a rendered ``params.yaml``.
    """
    unknown = [k for k in profile if k not in SECTION_NAMES]
    if unknown:
        raise ProfileError(f"{source}: unknown section '{unknown[0]}' (expected: {', '.join(SECTION_NAMES)})")
    name = profile.get(PROFILE_KEY)
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{source}: missing top-level '{PROFILE_KEY}' (the profile's name, e.g. demo)")
    out: dict[str, Any] = {PROFILE_KEY: name}
    for section in SECTIONS:
        given = profile.get(section.name, {})
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise ProfileError(f"{source}: section '{section.name}' must be a mapping, got {type(given).__name__}")
        base = defaults(section)
        bad = [k for k in given if k not in base]
        if bad:
            raise ProfileError(f"{source}: unknown key '{section.name}.{bad[0]}' "
                               f"({config_class(section).__name__} has fields: {', '.join(base)})")
        for key in (*section.required, *(k for k, v in base.items() if v is dataclasses.MISSING)):
            if key not in given:
                raise ProfileError(f"{source}: '{section.name}.{key}' must be set (it has no default)")
        out[section.name] = {k: given[k] if k in given else v for k, v in base.items()
                             if k in given or k not in section.optional}
    return out


def check_configs(params: dict[str, Any], source: str = "profile") -> None:
    """Build every section's config from the merged params: a bad type or bound fails with its message."""
    for section in SECTIONS:
        build_config(config_class(section), params[section.name], source_names=(f"{source}:{section.name}",))


def load_profile(path: str | Path) -> dict[str, Any]:
    """The complete, checked params of a profile file (or of an already rendered params file)."""
    source = str(path)
    params = merge(read_params(path), source)
    check_configs(params, source)
    return params


def label(path: str | Path, root: str | Path | None = None) -> str:
    """How the header names the profile: relative to ``root`` (default: the working directory) if inside it."""
    p = Path(path)
    base = Path(root) if root is not None else Path.cwd()
    try:
        return p.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def render_command(source: str) -> str:
    p = Path(source)
    if p.parent.as_posix() == PROFILE_DIR and p.suffix == ".yaml":
        return f"fls params render --profile {p.stem}"
    return f"fls params render {source}"


class _PlainDumper(yaml.SafeDumper):
    """Never writes anchors/aliases (a list shared by two defaults would otherwise become ``&id001``)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(params: dict[str, Any], source: str) -> str:
    """The params file text: a header saying where it came from, then one block per section.

    Lists and mappings of scalars are written inline (``[a, b]``, ``{Breakout: 30000}``) as the profiles
    spell them; section and key order are those of ``merge``, so the same profile gives the same bytes.
    """
    command = render_command(source)
    lines = [
        f"# GENERATED from {source} by `{command}` (fls/profiles.py): the profile's values",
        "# over the defaults of each section's config. Edit the profile, not this file, and rerun that command;",
        "# `fls params check` tells whether this file is still the profile's render. It holds every key, defaults",
        "# included, because DVC reads only this file (`dvc exp run -S section.key=value` edits it in place).",
    ]
    text = "\n".join(lines) + "\n"
    text += _dump_block({PROFILE_KEY: params[PROFILE_KEY]})
    for section in SECTIONS:
        text += f"\n{section.name}: # {section.config.replace(':', '.')}\n"
        body = _dump_block(params[section.name])
        text += "".join(f"  {line}\n" for line in body.splitlines())
    return text


def _dump_block(mapping: dict[str, Any]) -> str:
    # key by key: PyYAML's "inline the innermost collections" would also inline a mapping of scalars
    return "".join(
        yaml.dump({k: v}, Dumper=_PlainDumper, default_flow_style=None if isinstance(v, (list, dict)) else False,
                  sort_keys=False, width=110, allow_unicode=True)
        for k, v in mapping.items()
    )


def render(path: str | Path, root: str | Path | None = None) -> str:
    """The complete params file text of the profile at ``path`` (checked: unknown keys, types, bounds)."""
    return dump(load_profile(path), label(path, root))


def profile_path(name: str, root: str | Path | None = None) -> Path:
    """``profiles/<name>.yaml`` under ``root`` (default: the working directory)."""
    p = (Path(root) if root is not None else Path()) / PROFILE_DIR / f"{name}.yaml"
    if not p.is_file():
        raise ProfileError(f"{p}: no such profile (expected one of: "
                           f"{', '.join(sorted(q.stem for q in p.parent.glob('*.yaml'))) or 'none'})")
    return p


def stale_diff(params_file: str | Path, profile: str | Path, root: str | Path | None = None) -> list[str]:
    """Unified diff from ``params_file`` to the profile's render: empty when it is up to date."""
    want = render(profile, root)
    have = Path(params_file).read_text() if Path(params_file).exists() else ""
    if have == want:
        return []
    return list(difflib.unified_diff(have.splitlines(), want.splitlines(), str(params_file),
                                     f"render of {label(profile, root)}", lineterm=""))
