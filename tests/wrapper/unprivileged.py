"""Run a Python command as an unprivileged user, the way Lambda runs everything: ``unprivileged.py HOME ARGS...``.

Started as root, it becomes ``nobody`` (no supplementary groups, no capabilities, ``no_new_privs``) with HOME (a
directory it hands over to ``nobody``) as its home, then execs this interpreter with ARGS. The sandbox started by
that command therefore has no root: no dedicated uid and no namespaces, only what an unprivileged process can use.

Where the interpreter lives in a directory ``nobody`` cannot enter (``/root/.pyenv``), the command gets a private
mount namespace that binds just the interpreter's directories back, read-only, over a tmpfs (the sandbox does the
same for its own uid). That namespace changes what the command can see of the file system, nothing else; the
sandbox it starts sees the same view and creates none of its own.
"""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

from wrapper.sandbox import _isolation

ROOT = str(Path(__file__).resolve().parents[2])


def _reach(paths: list[str]) -> None:
    closed = _isolation.unreachable(paths)
    if not closed:
        return
    _isolation.unshare(_isolation.CLONE_NEWNS)
    _isolation.mount(None, "/", None, _isolation.MS_REC | _isolation.MS_PRIVATE, None)
    _isolation._expose(closed)


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("unprivileged.py must start as root", file=sys.stderr)
        return 2
    user = pwd.getpwnam("nobody")
    home, *args = argv
    _reach([ROOT, sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path])
    os.chown(home, user.pw_uid, user.pw_gid)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": home,
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONPATH": ROOT,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    os.setgroups([])
    os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
    os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
    _isolation.prctl(_isolation.PR_SET_NO_NEW_PRIVS, 1)
    os.chdir(ROOT)
    os.execve(sys.executable, [sys.executable, *args], env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
