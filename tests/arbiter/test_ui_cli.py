"""``arbiter ui`` as a person starts it: the console script prints the address with the token and serves it."""

from __future__ import annotations

import http.cookiejar
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.arbiter.ui_support import seed

ROOT = Path(__file__).resolve().parents[2]


def test_arbiter_ui_prints_a_token_address_and_serves_only_with_it(tmp_path: Path) -> None:
    from blackboard import local_backends

    home = tmp_path / "home"
    backends = local_backends(home)
    seed(backends)
    backends.close()
    command = [sys.executable, "-c", "from arbiter.cli import main; main()", "ui", "--home", str(home), "--port", "0"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            _check(process)
        finally:
            process.terminate()
            process.wait(20)


def _check(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    login = process.stdout.readline().strip()  # blocks until the server prints it
    assert login.startswith("http://127.0.0.1:") and "?token=" in login, process.stderr.read() if not login else ""
    base = login.split("?", 1)[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}agents", timeout=10)
    assert refused.value.code == 401
    refused.value.close()
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(login, timeout=10) as page:
        assert page.status == 200 and page.url == base  # the token became a cookie and left the address
    with opener.open(f"{base}agents/counter/2", timeout=10) as page:
        text = page.read().decode()
    assert 'id="approve-button"' in text
