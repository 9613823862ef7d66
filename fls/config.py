"""Typed stage configs: a dataclass per stage, filled from its ``params.yaml`` section, then from flags.

Precedence is dataclass default < params file section < explicit CLI flag. Unknown keys in the params
section are an error (a typo must not silently fall back to a default), and so is a value of the wrong
type. ``resolved(cfg)`` is what gets written beside every output.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import yaml

from fls.settings import ConfigError, check_fields, declaration, field_problem, optional

__all__ = ["ConfigError", "build_config", "check", "get_section", "load_config", "read_params", "resolved"]

T = TypeVar("T")


def read_params(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: params file not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at top level, got {type(data).__name__}")
    return data


def get_section(params: dict[str, Any], dotted: str, *, source: str = "params") -> dict[str, Any]:
    node: Any = params
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(f"{source}: missing section '{dotted}'")
        node = node[key]
    if not isinstance(node, dict):
        raise ConfigError(f"{source}: section '{dotted}' must be a mapping")
    return node


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        last: Exception | None = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                last = exc
        raise last or ConfigError(f"{where}: unexpected value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)  # YAML reads 5e7 as a float
        if isinstance(value, str):
            try:
                f = float(value)
            except ValueError:
                f = None
            if f is not None and f.is_integer():
                return int(f)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if tp is Path:
        return Path(value)
    return value


def _coerced(cls: type, fields: dict[str, Any], src: dict[str, Any] | None, name: str) -> dict[str, Any]:
    """The non-None values of ``src`` converted to their fields' types (unknown keys and bad types raise)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, val in (src or {}).items():
        if val is None:
            continue
        if key not in fields:
            raise ConfigError(f"{name}: unknown field '{key}' (expected one of: {', '.join(sorted(fields))})")
        values[key] = _coerce(val, hints[key], f"{name}: field '{key}'")
    return values


def _init_fields(cls: type) -> dict[str, dataclasses.Field]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def _construct(cls: type[T], values: dict[str, Any]) -> T:
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from exc


def check(cfg: Any) -> None:
    """Validate a config: its ``validate()`` (which starts with ``fls.settings.check_fields``), or only the
    declared bounds and choices of its fields for a config without one.

    The one validation every config goes through once, in ``build_config``; library entry points that take
    a config built in code call ``cfg.validate()``, the same checks.
    """
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    else:
        check_fields(cfg, type(cfg).__name__)


def build_config(cls: type[T], *sources: dict[str, Any] | None, source_names: tuple[str, ...] = ()) -> T:
    """Instantiate dataclass ``cls`` from mappings applied left to right; ``None`` values are skipped.

    ``source_names`` (parallel to ``sources``) only feeds error messages, e.g. ``("params.yaml:train", "flags")``.
    """
    fields = _init_fields(cls)
    values: dict[str, Any] = {}
    for i, src in enumerate(sources):
        name = source_names[i] if i < len(source_names) else f"source {i}"
        values.update(_coerced(cls, fields, src, name))
    cfg = _construct(cls, values)
    check(cfg)
    return cfg


def load_config(
    cls: type[T],
    params_file: str | Path | None,
    section: str | None,
    overrides: dict[str, Any] | None = None,
    *,
    reads: Collection[str] | Callable[[T], Collection[str]] | None = None,
) -> T:
    """Stage config from ``params_file[section]`` (if given and present) overridden by non-None ``overrides``.

    ``reads`` names the fields this command takes from the section (or is a function of the config the
    whole section and the flags give, e.g. of its ``method``, that names them); the default is every field.
    The section is checked whole either way (unknown keys, types, each field's declared bounds), but only
    those fields come from it, the others keep their defaults, and a field a flag sets is never read from
    the file: the config, and every output that records it, then depends on no params key the DVC stage
    does not list (dvc.yaml). The config is validated once, as built.
    """
    if params_file is None or section is None:
        return build_config(cls, None, overrides, source_names=("params", "flags"))
    name = f"{params_file}:{section}"
    file_values = get_section(read_params(params_file), section, source=str(params_file))
    fields = _init_fields(cls)
    from_file = _coerced(cls, fields, file_values, name)  # a section belongs to one config: typos raise
    from_flags = _coerced(cls, fields, overrides, "flags")
    if callable(reads):
        wanted = list(reads(_construct(cls, {**from_file, **from_flags})))  # not validated: only asked what it reads
    else:
        wanted = list(fields if reads is None else reads)
    unknown = sorted(set(wanted) - set(fields))
    if unknown:
        raise TypeError(f"{cls.__name__}: reads names no field {unknown}")
    # asked for by key (not taken from the iteration above): what a command takes is what it asks for
    taken = {k: from_file[k] for k in wanted if k not in from_flags and file_values.get(k) is not None}
    for key in sorted(set(from_file) - set(taken)):  # keys left unread are still held to their declarations
        decl = declaration(fields[key])
        problem = decl and field_problem(key, decl, from_file[key], when_given=optional(typing.get_type_hints(cls)[key]))
        if problem:
            raise ConfigError(f"{name}: {problem}")
    cfg = _construct(cls, {**taken, **from_flags})
    check(cfg)
    return cfg


def resolved(cfg: Any) -> dict[str, Any]:
    """Plain-JSON view of a config dataclass (tuples to lists, Paths to strings)."""
    def conv(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return {k: conv(v) for k, v in dataclasses.asdict(cfg).items()}
