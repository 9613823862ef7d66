"""One declaration per setting: a config field's default, help, bounds, choices and flag in one call.

A stage config is a dataclass whose fields are declared with ``setting(...)``. The declaration is read in
three places, so none of them repeats it: ``check_fields`` (the bounds and choices, one line per bad
value, the same wording for every stage), the CLI (``pipeline.config_flags`` builds each command's option
from it: flag name, help, "(default: X)") and the docs of the field itself. Checks that involve several
fields stay in each config's ``validate()``, which starts with ``check_fields``.

The metadata lives in ``dataclasses.field(metadata=...)``, so ``dataclasses.fields``/``asdict`` and
every file a config is written to are exactly as with plain fields.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass
from typing import Any

META_KEY = "fls.setting"


class ConfigError(ValueError):
    """A params file or flag value that does not fit the stage's config (message names file and field).

    Defined here, beside the checks that raise it, and re-exported by ``fls.config``.
    """


@dataclass(frozen=True)
class Setting:
    """What a field declares beyond its type and default (see ``setting``)."""

    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    choices: tuple[Any, ...] | None = None
    flag: str | None = None  # e.g. "--deterministic/--stochastic"; None: --field-name (bools: --x/--no-x)
    metavar: str | None = None
    cli_type: type | None = None  # the type the flag parses, when not the field's (e.g. str for "5e7")
    show_default: bool = True  # append "(default: X)" to the flag's help


def setting(
    default: Any = MISSING,
    *,
    help: str,
    default_factory: Callable[[], Any] | Any = MISSING,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    choices: Sequence[Any] | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    cli_type: type | None = None,
    show_default: bool = True,
) -> Any:
    """A dataclass field with its default and its declaration (``Setting``) as metadata.

    ``ge``/``gt``/``le`` bound a number (``None`` passes: an optional field unset), ``choices`` lists the
    allowed values. ``flag``/``metavar``/``cli_type`` only shape the CLI option.
    """
    meta = Setting(
        help=help, ge=ge, gt=gt, le=le, choices=tuple(choices) if choices is not None else None,
        flag=flag, metavar=metavar, cli_type=cli_type, show_default=show_default,
    )
    return dataclasses.field(default=default, default_factory=default_factory, metadata={META_KEY: meta})


def declaration(f: dataclasses.Field) -> Setting | None:
    return f.metadata.get(META_KEY)


def declared_fields(cls: Any) -> dict[str, tuple[dataclasses.Field, Setting]]:
    """The fields of dataclass ``cls`` declared with ``setting``, in declaration order."""
    out = {}
    for f in dataclasses.fields(cls):
        s = declaration(f)
        if s is not None:
            out[f.name] = (f, s)
    return out


def redeclare(source: Any, *names: str) -> dict[str, Any]:
    """Fresh fields declared exactly like ``names`` of dataclass ``source`` (its defaults, help, bounds).

    For a config that holds another's fields flat (``TrainConfig`` holds ``PPOConfig``'s): the class body
    adds each one with its annotation, so the other config stays the only place they are written.
    """
    by_name = {f.name: f for f in dataclasses.fields(source)}
    out = {}
    for name in names:
        f = by_name[name]
        out[name] = dataclasses.field(default=f.default, default_factory=f.default_factory, metadata=f.metadata)
    return out


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def optional(tp: Any) -> bool:
    """Whether type ``tp`` admits ``None`` (``Optional[int]``, ``int | None``)."""
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def field_problem(name: str, s: Setting, value: Any, *, when_given: bool = False) -> str | None:
    """The "field 'x' must be ..., got v" message for a bad ``value`` of a field declared ``s``, else None."""
    if value is None:
        return None
    tail = " when given" if when_given else ""
    if s.choices is not None and value not in s.choices:
        return f"field '{name}' must be one of {', '.join(map(str, s.choices))}{tail}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if s.ge is not None and s.le is not None:
        if not s.ge <= value <= s.le:
            return f"field '{name}' must be in [{_num(s.ge)}, {_num(s.le)}]{tail}, got {value}"
        return None
    if s.ge is not None and not value >= s.ge:
        return f"field '{name}' must be >= {_num(s.ge)}{tail}, got {value}"
    if s.gt is not None and not value > s.gt:
        return f"field '{name}' must be > {_num(s.gt)}{tail}, got {value}"
    if s.le is not None and not value <= s.le:
        return f"field '{name}' must be <= {_num(s.le)}{tail}, got {value}"
    return None


def check_fields(cfg: Any, where: str, error: type[Exception] | None = None) -> None:
    """Raise ``error`` ("<where>: field 'x' must be ..., got v") for the first field outside its declaration.

    ``where`` is the params section the config is (``train``, ``evaluate``, ...); ``error`` defaults to
    ``ConfigError``.
    """
    if error is None:
        error = ConfigError
    hints = typing.get_type_hints(type(cfg))
    for name, (_f, s) in declared_fields(type(cfg)).items():
        problem = field_problem(name, s, getattr(cfg, name), when_given=optional(hints.get(name)))
        if problem:
            raise error(f"{where}: {problem}")
