"""The dashboard's gate: an access token on every request, CSRF on every state change, strict response headers.

The token (random, printed at start like Jupyter's) is accepted once as ``?token=...``: the answer is a redirect to
the same address without it that sets an ``HttpOnly``, ``SameSite=Strict`` cookie, so the token does not stay in the
address bar or the history. Every later request must carry the cookie (or ``Authorization: Bearer <token>``); any
other request, the static files included, gets 401. A POST must also carry the page's CSRF token (a second random
value, only in the pages' forms) and, when the browser sends an ``Origin``, come from the dashboard's own origin.
Every answer gets a Content-Security-Policy that allows scripts, styles and connections from the dashboard only:
no inline script runs, so text from events, models and workers that got past the escaping still could not.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "Gate", "GateMiddleware"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
_REFUSED = (
    b"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Arbiter: token required</title></head>"
    b"<body><h1>Access token required</h1><p>Open the address <code>arbiter ui</code> printed when it started "
    b"(it ends in <code>?token=...</code>).</p></body></html>"
)


@dataclass(frozen=True)
class Gate:
    """The secrets of one dashboard.

    Attributes:
        token: the access token every request must carry.
        csrf: the token every POST form must carry.
        cookie: the name of the cookie that keeps the access token (one per port: cookies ignore ports).
    """

    token: str
    csrf: str
    cookie: str = "arbiter_ui"

    def admits(self, given: str | None) -> bool:
        """Whether ``given`` is the access token (compared in constant time)."""
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def csrf_ok(self, given: str | None) -> bool:
        """Whether ``given`` is the CSRF token (compared in constant time)."""
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class GateMiddleware:
    """ASGI middleware that refuses requests without the token and adds the security headers to every answer."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        offered = [value for key, value in query if key == "token"]
        if offered and self.gate.admits(offered[0]):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
            cookie = f"{self.gate.cookie}={self.gate.token}; HttpOnly; SameSite=Strict; Path=/"
            await self._answer(send, 303, b"", [(b"location", location.encode()), (b"set-cookie", cookie.encode())])
            return
        if not self._authorised(scope):
            await self._answer(send, 401, _REFUSED, [(b"content-type", b"text/html; charset=utf-8")])
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_HEADERS]}
            await send(message)

        await self.app(scope, receive, secured)

    def _authorised(self, scope: Scope) -> bool:
        bearer = _header(scope, b"authorization")
        if bearer is not None and bearer.startswith("Bearer ") and self.gate.admits(bearer[7:]):
            return True
        raw = _header(scope, b"cookie")
        if raw is None:
            return False
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:  # a malformed Cookie header is a refused request, never a server error
            return False
        morsel = jar.get(self.gate.cookie)
        return morsel is not None and self.gate.admits(morsel.value)

    async def _answer(self, send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode()), *_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": body})
