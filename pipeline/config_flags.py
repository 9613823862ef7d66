"""A command's config-field options, built from the fields' declarations (``fls.settings.setting``).

A command lists the config fields it offers as flags by parameter name, annotated ``ConfigFlag``, among its
hand-written options (``--out``, ``--params``, ...), so ``--help`` keeps the order the command chose::

    @config_flags(TrainConfig)
    def main(out: OutDir, num_envs: ConfigFlag = None, *, overrides: dict) -> None: ...

``config_flags`` gives each such parameter its option: the flag of the declaration (default
``--field-name``; ``--x/--no-x`` for a bool), its help with "(default: X)" added, the declared metavar and
CLI type, and ``None`` as the CLI default so that an unset flag leaves the params file's value. The command
still receives each value under its own name, and ``overrides`` maps every such field to its value, ready
for ``fls.config.load_config``. The flag, default and help of a field are thus written once, in its config.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Optional, TypeVar

import typer

from fls.settings import Setting, declared_fields, default_of

F = TypeVar("F", bound=Callable[..., Any])


class ConfigFlag:
    """Annotation marker: this parameter is the config field of the same name, as an option."""


def _cli_type(tp: Any) -> type:
    """The type the flag parses: the field's, without ``Optional``; a choice (``Literal``) or list is a string."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else str
    if typing.get_origin(tp) is typing.Literal or typing.get_origin(tp) in (list, tuple):
        return str  # fls.config coerces "a,b" to a list and checks a choice
    if tp in (bool, int, float, str):
        return tp
    return str


def _flag(name: str, s: Setting, tp: type) -> str:
    if s.flag is not None:
        return s.flag
    dashed = "--" + name.replace("_", "-")
    return f"{dashed}/--no-{name.replace('_', '-')}" if tp is bool else dashed


def _shown(value: Any, flag: str, tp: type) -> str | None:
    if value is None or value is dataclasses.MISSING:
        return None
    if tp is bool:  # the flag that is on by default: "--progress", "--stochastic"
        on, _, off = flag.partition("/")
        return on if value else off
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or None
    if isinstance(value, dict):
        return None
    return f"{value:g}" if isinstance(value, float) else str(value)


def option_for(cls: type, name: str) -> Any:
    """``Annotated[Optional[T], typer.Option(...)]`` for field ``name`` of config ``cls``, from its declaration."""
    decls = declared_fields(cls)
    if name not in decls:
        raise TypeError(f"{cls.__name__}.{name} is not declared with fls.settings.setting")
    f, s = decls[name]
    tp = s.cli_type or _cli_type(typing.get_type_hints(cls)[name])
    flag = _flag(name, s, tp)
    help_text = s.help
    shown = _shown(default_of(f), flag, tp) if s.show_default else None
    if shown is not None:
        help_text = f"{help_text} (default: {shown})"
    return Annotated[Optional[tp], typer.Option(*flag.split(), help=help_text, metavar=s.metavar)]


def config_flags(cls: type) -> Callable[[F], F]:
    """Decorator: options for the command's ``ConfigFlag`` parameters from ``cls``'s declarations, and
    ``overrides`` (field -> flag value, ``None`` when not given) passed to the command."""

    def decorate(func: F) -> F:
        sig = inspect.signature(func, eval_str=True)
        if "overrides" not in sig.parameters:
            raise TypeError(f"{func.__name__}: a config_flags command takes an 'overrides' parameter")
        names: list[str] = []
        params = []
        for p in sig.parameters.values():
            if p.name == "overrides":
                continue
            if p.annotation is ConfigFlag:
                names.append(p.name)
                p = p.replace(annotation=option_for(cls, p.name), default=None)
            params.append(p)

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            return func(**kwargs, overrides={name: kwargs[name] for name in names})

        command.__signature__ = sig.replace(parameters=params)  # what Typer reads
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.config_fields = tuple(names)
        return command  # type: ignore[return-value]

    return decorate
