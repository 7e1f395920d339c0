"""Shared pieces of the command line: the error console, common options, output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from arbiter.runtime import LocalRuntime
    from blackboard.adapters.aws import AwsConfig

__all__ = [
    "BACKEND",
    "BACKENDS",
    "EXAMPLES",
    "HOME",
    "JSON",
    "REASON",
    "BackendChoice",
    "err",
    "fail",
    "open_runtime",
    "parse_resources",
    "print_json",
]

err = Console(stderr=True, soft_wrap=True)
HOME = typer.Option(None, "--home", help="State directory (default: $ARBITER_HOME or ./.arbiter).")
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
REASON = typer.Option("", "--reason", help="Why (recorded with who and when in the agent's decision log).")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error and exit with ``code`` (2: a usage or configuration error)."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """Print one JSON document on standard output."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# ---------------------------------------------------------------- backend (`arbiter --backend aws ...`)

BACKENDS = ("local", "aws")


@dataclass
class BackendChoice:
    """Where the commands' state lives: the embedded home (``local``) or the deployed AWS resources (``aws``)."""

    name: str = "local"
    stack: str | None = None
    resources: dict[str, str] = field(default_factory=dict)

    def aws_config(self) -> AwsConfig:
        """The AWS resource names: ``--resource`` flags, else ``ARBITER_*`` variables, else the stack's outputs."""
        from blackboard.adapters.aws import AwsConfig

        config = AwsConfig(**self.resources).merged(AwsConfig.from_env())
        if self.stack:
            config = config.merged(AwsConfig.from_stack(self.stack))
        return config


#: Set by the root command's options.
BACKEND = BackendChoice()


def parse_resources(pairs: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs of ``--resource`` into a dict, refusing unknown names."""
    from blackboard.adapters.aws.config import ENV_VARS

    resources = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in ENV_VARS or not value:
            fail(f"--resource {pair!r}: expected NAME=VALUE with NAME one of {', '.join(ENV_VARS)}")
        resources[name] = value
    return resources


@contextmanager
def open_runtime(home: Path | None, **kwargs: Any) -> Iterator[LocalRuntime]:
    """A runtime on the chosen backend (``kwargs`` go to :class:`LocalRuntime`), closed on leaving.

    A store or configuration error (a missing table, throttling that outlasted the retries, a corrupt file) ends
    the command with exit code 2 and the error's message instead of a traceback.
    """
    from arbiter.config import Deployment
    from arbiter.runtime import LocalRuntime
    from blackboard import BlackboardError

    try:
        if BACKEND.name == "local":
            runtime = LocalRuntime(home, **kwargs)
        else:
            from blackboard.adapters.aws import aws_backends, fabrication_queue

            config = BACKEND.aws_config()
            runtime = LocalRuntime(
                home,
                **kwargs,
                deployment=Deployment(
                    backends=aws_backends(config),
                    fabrication_queue=fabrication_queue(config) if config.fabrication_queue_url else None,
                ),
            )
    except BlackboardError as exc:
        fail(str(exc))
    with runtime:
        try:
            yield runtime
        except BlackboardError as exc:
            fail(str(exc))
