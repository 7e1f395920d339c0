"""``arbiter ui``: serve the live dashboard over the backends the other commands use."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from arbiter._cli_common import HOME, err, fail, open_runtime
from arbiter.exceptions import UsageError
from wrapper.constants import ENV_MODEL

__all__ = ["ui_command"]


def ui_command(
    home: Path | None = HOME,
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on (loopback unless --allow-remote)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="The port (0: any free port)."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Allow an address other machines can reach (the token then guards everything)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Model spec to run events from the page with (default: $ARBITER_MODEL; else read-only)."
    ),
    approval: bool = typer.Option(
        False, "--approval", help="Agents the Fabricator writes for events run here wait for approval."
    ),
) -> None:
    """Serve a live dashboard: watch orchestrations, read and approve agent versions, run events.

    It prints the address to open once (it carries a random access token; the browser keeps it in a cookie). Every
    request needs the token; actions are POST forms with a CSRF token; see docs/ui.md.
    """
    try:
        from arbiter.ui import Dashboard, create_app, new_gate
        from arbiter.ui.server import UiServer
    except ImportError as exc:
        fail(f"the dashboard needs the ui extra: pip install 'arbiter-agents[ui]' ({exc})")
    can_run = bool(model or os.environ.get(ENV_MODEL))
    with open_runtime(home, model=model, approval=approval, start=can_run) as runtime:
        gate = new_gate(cookie=f"arbiter_ui_{port}")
        try:
            server = UiServer(
                create_app(Dashboard(runtime=runtime, can_run=can_run, gate=gate)),
                host,
                port,
                allow_remote=allow_remote,
            )
        except UsageError as exc:
            fail(str(exc))
        mode = "runs events with its model" if can_run else "read-only for events (no --model)"
        err.print(f"Arbiter dashboard on {server.url} ({mode}); open this address once:", highlight=False)
        typer.echo(server.login_url)
        server.run()
