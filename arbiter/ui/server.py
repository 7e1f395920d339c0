"""Serve the dashboard with uvicorn on a socket bound here, in the foreground or on a thread (tests, notebooks)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from types import TracebackType

import uvicorn

from arbiter.exceptions import UsageError
from arbiter.ui._security import GateMiddleware

__all__ = ["UiServer", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class UiServer:
    """The dashboard app on ``host:port`` (port 0: any free port; :attr:`port` tells which).

    Args:
        app: the app :func:`arbiter.ui.create_app` built.
        host: the address to bind.
        port: the port (0: a free one).
        allow_remote: bind an address other than loopback (the token is then all that guards the dashboard).

    Raises:
        UsageError: a non-loopback ``host`` without ``allow_remote``, or the address cannot be bound.
    """

    def __init__(self, app: GateMiddleware, host: str = "127.0.0.1", port: int = 8765, *, allow_remote: bool = False):
        if not is_loopback(host) and not allow_remote:
            raise UsageError(
                f"--host {host} is reachable from other machines: pass --allow-remote as well to serve there "
                "(anyone who can reach it and has the token can approve agents)"
            )
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host.strip("[]"), port))
            self.socket.listen(128)  # connections made before uvicorn serves wait in the backlog
        except OSError as exc:
            self.socket.close()
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.host = host
        self.port: int = self.socket.getsockname()[1]
        self.gate = app.gate
        # Live pages hold streams open: on stop, give them a moment, then close them.
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The dashboard's address, without the token."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def login_url(self) -> str:
        """The address to open once: it carries the token, which the dashboard turns into a cookie."""
        return f"{self.url}?token={self.gate.token}"

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C)."""
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def start(self, timeout: float = 10.0) -> UiServer:
        """Serve on a daemon thread; return once it accepts connections.

        Raises:
            TimeoutError: it did not start within ``timeout`` seconds.
        """
        self._thread = threading.Thread(target=self.run, name="arbiter-ui", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise TimeoutError("the dashboard did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving (open streams are closed) and wait for the thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> UiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
