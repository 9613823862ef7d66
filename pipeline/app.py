"""The ``fls`` CLI: every pipeline stage is a subcommand, usable inside or outside DVC."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="fls",
    help="Free-Lunch Saliency reproduction: train, evaluate, score and report (every DVC stage is a command).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module, attribute, command name, kind): "command" registers a function, "group" a Typer sub-app.
# Modules are imported here so a missing stage module shows up as an import error at start-up.
_STAGES: list[tuple[str, str, str, str]] = [
    ("pipeline.models", "main", "models", "command"),
    ("pipeline.train", "main", "train", "command"),
    ("pipeline.evaluate", "main", "evaluate", "command"),
    ("pipeline.atari_head", "app", "atari-head", "group"),
    ("pipeline.score", "main", "score", "command"),
    ("pipeline.report", "main", "report", "command"),
    ("pipeline.grid", "app", "grid", "group"),
    ("pipeline.env", "app", "env", "group"),
    ("pipeline.import_authors", "main", "import-authors", "command"),
]



@app.callback()
def _root() -> None:
    """Free-Lunch Saliency reproduction: every pipeline stage is a subcommand."""


for _module, _attr, _name, _kind in _STAGES:
    try:
        _mod = importlib.import_module(_module)
    except ModuleNotFoundError as _exc:  # stage not written yet in this checkout
        if _exc.name != _module:
            raise
        continue
    if _kind == "command":
        app.command(_name)(getattr(_mod, _attr))
    else:
        app.add_typer(getattr(_mod, _attr), name=_name)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
