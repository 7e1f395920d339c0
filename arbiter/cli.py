"""The ``arbiter`` command line."""

from __future__ import annotations

import typer

from arbiter import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="arbiter",
    help="Event-driven multi-agent systems on the Arbiter pattern.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"arbiter {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Event-driven multi-agent systems on the Arbiter pattern."""


@app.command("version")
def version_command() -> None:
    """Print the version."""
    typer.echo(f"arbiter {__version__}")


def main() -> None:
    """Run the command line (the ``arbiter`` console script)."""
    app()
