"""Shared pieces of the command line: the error console, common options, output helpers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

__all__ = ["EXAMPLES", "HOME", "JSON", "err", "fail", "print_json"]

err = Console(stderr=True, soft_wrap=True)
HOME = typer.Option(None, "--home", help="State directory (default: $ARBITER_HOME or ./.arbiter).")
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error and exit with ``code`` (2: a usage or configuration error)."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """Print one JSON document on standard output."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
