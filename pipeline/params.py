"""``fls params``: render a profile (overrides of the configs' defaults) into the complete params.yaml DVC reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fls.atomic import atomic_write_text
from fls.config import read_params
from fls.profiles import PROFILE_KEY, ProfileError, profile_path, render, stale_diff
from pipeline.errors import cli_errors

app = typer.Typer(help="Profiles -> params.yaml (profiles/<name>.yaml hold only what differs from the defaults).",
                  no_args_is_help=True)

ProfileName = Annotated[Optional[str], typer.Option("--profile", help="Profile name: profiles/NAME.yaml.")]


def _profile(path: Optional[Path], name: Optional[str]) -> Path:
    if (path is None) == (name is None):
        raise ProfileError("give a profile file or --profile NAME (exactly one)")
    return path if path is not None else profile_path(name)


@app.command("render")
@cli_errors
def render_cmd(
    profile: Annotated[Optional[Path], typer.Argument(help="Profile file, e.g. profiles/quick.yaml.", dir_okay=False)] = None,
    name: ProfileName = None,
    out: Annotated[Path, typer.Option("--out", help="File to write ('-': standard output).", dir_okay=False)] = Path("params.yaml"),
) -> None:
    """Write the profile over the stage configs' defaults as a complete params file (every key DVC lists)."""
    src = _profile(profile, name)
    text = render(src)
    if str(out) == "-":
        typer.echo(text, nl=False)
        return
    atomic_write_text(out, text)
    typer.echo(f"{out} <- {src}", err=True)


@app.command("check")
@cli_errors
def check_cmd(
    params: Annotated[Path, typer.Option("--params", help="Rendered params file to check.", dir_okay=False)] = Path("params.yaml"),
    profile: Annotated[Optional[Path], typer.Argument(help="Profile file (default: profiles/<its `profile`>.yaml).", dir_okay=False)] = None,
    name: ProfileName = None,
) -> None:
    """Exit 1 (with the diff) unless PARAMS is byte for byte the render of its profile."""
    if profile is None and name is None:
        name = read_params(params).get(PROFILE_KEY)
        if not isinstance(name, str) or not name:
            raise ProfileError(f"{params}: no top-level '{PROFILE_KEY}' naming its profile; pass --profile NAME")
    src = _profile(profile, name)
    diff = stale_diff(params, src)
    if not diff:
        typer.echo(f"{params}: up to date with {src}")
        return
    shown = diff[:40] + ([f"... ({len(diff) - 40} more diff lines)"] if len(diff) > 40 else [])
    typer.echo("\n".join(shown), err=True)
    typer.echo(f"error: {params} is not the render of {src} (edited by hand or by `dvc exp run -S`?); "
               f"regenerate it: fls params render {src} --out {params}", err=True)
    raise typer.Exit(code=1)
