"""The dashboard's ASGI application: pages over the runtime's backends, behind the token gate.

:func:`create_app` builds it over an open :class:`~arbiter.LocalRuntime` (the embedded home or the AWS backends,
as the CLI opens them). Store calls run in worker threads, so a slow store never blocks the event loop; a store
that fails (:class:`~blackboard.BlackboardError`) is answered with a page that says so (503) and the next request
tries again: the server never goes down with it.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, Undefined
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from arbiter.report import neutralise_bidi
from arbiter.ui._security import Gate, GateMiddleware
from arbiter.ui._views import pretty
from blackboard import BlackboardError
from blackboard.exceptions import AgentNotFoundError, OrchestrationNotFoundError

if TYPE_CHECKING:
    from arbiter.runtime import LocalRuntime

__all__ = ["Dashboard", "create_app", "new_gate"]

logger = logging.getLogger(__name__)
_HERE = Path(__file__).parent


@dataclass(frozen=True)
class Dashboard:
    """What the routes need: the runtime, whether it may run events, the gate, and how often live pages poll.

    Attributes:
        runtime: the open runtime whose backends the pages read and change.
        can_run: whether the runtime plans and runs events (it was opened with a model).
        gate: the access and CSRF tokens.
        poll_seconds: how often a live page's stream reads the store for changes.
        stream_seconds: how long one stream lasts before the browser reconnects (it does so by itself).
    """

    runtime: LocalRuntime
    can_run: bool
    gate: Gate
    poll_seconds: float = 0.5
    stream_seconds: float = 300.0


def new_gate(cookie: str = "arbiter_ui") -> Gate:
    """Fresh random access and CSRF tokens."""
    return Gate(token=secrets.token_urlsafe(24), csrf=secrets.token_urlsafe(24), cookie=cookie)


#: Every text in every template is escaped (events, model and worker output are untrusted).
templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=True))


def _json_text(value: Any, compact: bool = False) -> str:
    """A value as JSON text for a template (escaped there like any text); nothing for a missing or ``None`` value."""
    if value is None or isinstance(value, Undefined):
        return ""
    if compact and not isinstance(value, str):
        return neutralise_bidi(json.dumps(value, default=str, ensure_ascii=False))
    return pretty(value)


templates.env.filters["json"] = _json_text


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    response: Response = templates.TemplateResponse(
        request, "error.html", {"title": title, "message": message, "csrf": ""}, status_code=status
    )
    return response


async def _store_failed(request: Request, exc: Exception) -> Response:
    if isinstance(exc, OrchestrationNotFoundError | AgentNotFoundError):
        return _error_page(request, 404, "Not found", str(exc))
    logger.warning("path=<%s> | the store failed: %s", request.url.path, exc)
    return _error_page(
        request, 503, "The store is not answering", f"{exc}. Nothing was changed by this request; reload to try again."
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error_page(request, exc.status_code, "Request refused", exc.detail)


def create_app(dashboard: Dashboard) -> GateMiddleware:
    """The dashboard as an ASGI app: every route behind the token gate, with the security headers."""
    from arbiter.ui import routes

    app = Starlette(
        routes=[
            *routes.ROUTES,
            Route("/code.css", routes.code_css),
            Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
        ],
        exception_handlers={BlackboardError: _store_failed, HTTPException: _http_error},
    )
    app.state.dashboard = dashboard
    return GateMiddleware(app, dashboard.gate)
