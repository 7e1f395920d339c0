"""``arbiter report``: one orchestration as a text summary, JSON, or a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import typer

from arbiter._cli_common import HOME, JSON, fail, print_json
from arbiter.report import build_report, render_html, render_text
from arbiter.runtime import LocalRuntime
from blackboard import BlackboardError

__all__ = ["report"]


def report(
    orchestration_id: str,
    html: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML page (timeline) to this file."),
    home: Path | None = HOME,
    as_json: bool = JSON,
) -> None:
    """Report one orchestration: waves, tasks and their attempts, fabrications, tokens and the answer."""
    with LocalRuntime(home, start=False) as runtime:
        try:
            view = runtime.orchestration(orchestration_id)
        except BlackboardError as exc:
            fail(str(exc))
    document = build_report(view.orchestration, view.tasks)
    if html is not None:
        try:
            html.write_text(render_html(document), encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {html}: {exc}")
    if as_json:
        print_json(document)
    elif html is not None:
        typer.echo(f"wrote {html} ({document['attempts']} task attempts in {document['waves']} waves)")
    else:
        typer.echo(render_text(document))
