"""The dashboard's pages, its live streams (Server-Sent Events) and its actions.

Every action calls the function the command line calls (:mod:`arbiter.decisions`, :meth:`LocalRuntime.submit`
after :func:`arbiter.inputs.load_event_text`), so the rules, the messages and the records are the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from arbiter import decisions
from arbiter.exceptions import UsageError
from arbiter.inputs import load_event_text
from arbiter.ui._views import CODE_CSS, agent_rows, agent_version, orchestration_rows, orchestration_view
from arbiter.ui.app import Dashboard, templates
from blackboard import AgentState, ArbiterError, Backends, BlackboardError, OrchestrationStatus
from blackboard.exceptions import NotFoundError

__all__ = ["ROUTES", "code_css", "favicon"]

logger = logging.getLogger(__name__)

_DONE = {
    "approve": "Approved: this version is active now.",
    "reject": "Rejected: this version is retired; the reason is kept below.",
    "quarantine": "Quarantined: the planner no longer offers this version.",
    "release": "Released: this version is active again.",
    "retire": "Retired: the planner no longer offers this version.",
    "rollback": "Rolled back: this version is the active one now.",
}
_MAX_UPLOAD = 1024 * 1024


def _dashboard(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


def _backends(request: Request) -> Backends:
    return _dashboard(request).runtime.backends


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    dashboard = _dashboard(request)
    response: Response = templates.TemplateResponse(
        request, name, {"csrf": dashboard.gate.csrf, "can_run": dashboard.can_run, **context}, status_code=status
    )
    return response


def _choice(value: str | None, kind: type[OrchestrationStatus] | type[AgentState]) -> Any:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise HTTPException(400, f"unknown {kind.__name__}: {value!r}") from None


async def _form(request: Request) -> FormData:
    """The POSTed form, refused (403) without this dashboard's CSRF token or from another origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise HTTPException(403, "the request came from another site")
    form = await request.form(max_files=1, max_fields=20)
    token = form.get("csrf")
    if not _dashboard(request).gate.csrf_ok(token if isinstance(token, str) else None):
        raise HTTPException(403, "the form's CSRF token is missing or stale: reload the page and try again")
    return form


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- orchestrations


def _list_context(request: Request) -> dict[str, Any]:
    status = request.query_params.get("status") or ""
    search = request.query_params.get("q") or ""
    try:
        limit = max(1, min(int(request.query_params.get("limit") or 50), 500))
    except ValueError:
        raise HTTPException(400, "limit must be a number") from None
    return {"status": status, "q": search, "limit": limit, "chosen": _choice(status, OrchestrationStatus)}


async def orchestrations(request: Request) -> Response:
    context = _list_context(request)
    rows = await run_in_threadpool(
        orchestration_rows, _backends(request), context["chosen"], context["q"], context["limit"]
    )
    query = request.url.query
    return _page(
        request,
        "orchestrations.html",
        {**context, "rows": rows, "statuses": list(OrchestrationStatus), "stream": f"/orchestrations/stream?{query}"},
    )


async def orchestrations_stream(request: Request) -> Response:
    context = _list_context(request)
    backends = _backends(request)

    def read() -> tuple[Any, str]:
        rows = orchestration_rows(backends, context["chosen"], context["q"], context["limit"])
        html = templates.get_template("_orchestrations_table.html").render(rows=rows)
        return rows, html

    return _stream(request, read, finished=lambda rows: False)


async def orchestration(request: Request) -> Response:
    orchestration_id = request.path_params["orchestration_id"]
    view = await run_in_threadpool(orchestration_view, _backends(request), orchestration_id)
    stream = None if view["finished"] else f"/orchestrations/{orchestration_id}/stream"
    return _page(request, "orchestration.html", {"view": view, "stream": stream})


async def orchestration_stream(request: Request) -> Response:
    orchestration_id = request.path_params["orchestration_id"]
    backends = _backends(request)

    def read() -> tuple[Any, str]:
        view = orchestration_view(backends, orchestration_id)
        return view, templates.get_template("_orchestration_body.html").render(view=view)

    return _stream(request, read, finished=lambda view: bool(view["finished"]))


def _stream(request: Request, read: Callable[[], tuple[Any, str]], finished: Callable[[Any], bool]) -> Response:
    """Push the fragment ``read`` renders whenever it changes; ``end`` once ``finished``; a note while the store fails.

    The browser's ``EventSource`` reconnects by itself after the stream's lifetime or a dropped connection.
    """
    dashboard = _dashboard(request)

    async def events() -> AsyncIterator[ServerSentEvent]:
        last = None
        until = time.monotonic() + dashboard.stream_seconds
        while time.monotonic() < until and not await request.is_disconnected():
            try:
                data, html = await run_in_threadpool(read)
            except NotFoundError as exc:
                yield ServerSentEvent(str(exc), event="gone")
                return
            except BlackboardError as exc:
                logger.warning("path=<%s> | the store failed during a stream: %s", request.url.path, exc)
                yield ServerSentEvent(f"The store is not answering ({exc}); retrying.", event="unavailable")
                last = None
            else:
                if html != last:
                    yield ServerSentEvent(html, event="fragment")
                    last = html
                if finished(data):
                    yield ServerSentEvent("finished", event="end")
                    return
            await asyncio.sleep(dashboard.poll_seconds)

    return EventSourceResponse(events(), ping=15, send_timeout=30)


# ---------------------------------------------------------------- agents


async def agents(request: Request) -> Response:
    state = request.query_params.get("state") or ""
    rows = await run_in_threadpool(agent_rows, _backends(request), _choice(state, AgentState))
    return _page(request, "agents.html", {"rows": rows, "state": state, "states": list(AgentState)})


async def approvals(request: Request) -> Response:
    rows = await run_in_threadpool(agent_rows, _backends(request), AgentState.PENDING_APPROVAL)
    return _page(request, "approvals.html", {"rows": rows})


def _version_ref(request: Request) -> tuple[str, int]:
    return request.path_params["name"], int(request.path_params["version"])


async def version_page(request: Request, *, message: str = "", error: str = "", status: int = 200) -> Response:
    name, version = _version_ref(request)
    view = await run_in_threadpool(agent_version, _backends(request), name, version)
    done = _DONE.get(request.query_params.get("done") or "", "")
    return _page(request, "agent.html", {"v": view, "message": message or done, "error": error}, status)


async def act(request: Request) -> Response:
    form = await _form(request)
    name, version = _version_ref(request)
    action = request.path_params["action"]
    backends = _backends(request)
    by = decisions.who("ui", _text(form, "who") or None)
    reason = _text(form, "reason")
    calls: dict[str, Callable[[], Any]] = {
        "approve": lambda: decisions.approve(backends, name, version, by=by, reason=reason),
        "reject": lambda: decisions.reject(backends, name, version, by=by, reason=reason),
        "quarantine": lambda: decisions.quarantine(backends, name, version, by=by, reason=reason),
        "release": lambda: decisions.release(backends, name, version, by=by, reason=reason),
        "retire": lambda: decisions.retire(backends, name, version, by=by, reason=reason),
        "rollback": lambda: decisions.rollback(backends, name, by=by, reason=reason),
    }
    if action not in calls:
        raise HTTPException(404, f"no action {action!r}")
    try:
        result = await run_in_threadpool(calls[action])
    except ArbiterError as exc:
        if isinstance(exc, BlackboardError) and not isinstance(exc, NotFoundError):
            raise  # the store failed: the 503 page, nothing was decided
        return await version_page(request, error=str(exc), status=409)
    target = version
    if action == "rollback":
        target = result.version
    elif action == "retire" and not result:
        return await version_page(request, error=f"{name}@{version} is retired already", status=409)
    return RedirectResponse(f"/agents/{name}/{target}?done={action}", status_code=303)


# ---------------------------------------------------------------- run an event


async def run_form(request: Request) -> Response:
    return _page(request, "run.html", {"text": "", "error": ""})


async def run_event(request: Request) -> Response:
    form = await _form(request)
    dashboard = _dashboard(request)
    text = _text(form, "event")
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        try:
            raw = await upload.read(_MAX_UPLOAD + 1)
        finally:
            await form.close()
        if len(raw) > _MAX_UPLOAD:
            return _page(request, "run.html", {"text": "", "error": "the file is larger than 1 MiB"}, 400)
        text = raw.decode("utf-8", errors="replace")
        what = f"uploaded event file {upload.filename}"
    else:
        await form.close()
        what = "pasted event"
    try:
        event = load_event_text(text.encode(), what=what)
    except UsageError as exc:
        return _page(request, "run.html", {"text": text, "error": str(exc)}, 400)
    if not dashboard.can_run:
        error = "this dashboard only reads: start it with --model SPEC (or set ARBITER_MODEL) to run events"
        return _page(request, "run.html", {"text": text, "error": error}, 409)
    orchestration_id = await run_in_threadpool(dashboard.runtime.submit, event)
    return RedirectResponse(f"/orchestrations/{orchestration_id}", status_code=303)


async def favicon(request: Request) -> Response:
    """No icon (browsers ask for one; a 404 would be logged as an error in their console)."""
    return Response(status_code=204)


async def code_css(request: Request) -> Response:
    """The syntax colours of the code view."""
    return Response(CODE_CSS, media_type="text/css")


ROUTES = [
    Route("/", orchestrations),
    Route("/orchestrations/stream", orchestrations_stream),
    Route("/orchestrations/{orchestration_id}", orchestration),
    Route("/orchestrations/{orchestration_id}/stream", orchestration_stream),
    Route("/agents", agents),
    Route("/approvals", approvals),
    Route("/agents/{name}/{version:int}", version_page),
    Route("/agents/{name}/{version:int}/{action}", act, methods=["POST"]),
    Route("/run", run_form),
    Route("/run", run_event, methods=["POST"]),
    Route("/favicon.ico", favicon),
]
