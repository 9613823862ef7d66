"""The ``fls`` CLI: every pipeline stage is a subcommand, usable inside or outside DVC.

Every stage module is imported here at start-up, so a stage that fails to import (a missing module, a
broken dependency) stops ``fls`` with its import error instead of leaving its command silently out.
"""

from __future__ import annotations

import typer

from pipeline import atari_head, env, evaluate, grid, import_authors, models, params, report, score, train

app = typer.Typer(
    name="fls",
    help="Free-Lunch Saliency reproduction: train, evaluate, score and report (every DVC stage is a command).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Free-Lunch Saliency reproduction: every pipeline stage is a subcommand."""


app.command("models")(models.main)
app.command("train")(train.main)
app.command("evaluate")(evaluate.main)
app.add_typer(atari_head.app, name="atari-head")
app.command("score")(score.main)
app.command("report")(report.main)
app.add_typer(grid.app, name="grid")
app.add_typer(env.app, name="env")
app.command("import-authors")(import_authors.main)
app.add_typer(params.app, name="params")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
