"""Landlock for sandbox children that have no dedicated user id: what an unprivileged process can still use.

Without root the child runs under the application's own uid, and the kernel's usual rule ("a process may read the
environment and memory of any dumpable process of its uid") would hand it the secrets of every such process: an
ancestor that exported credentials, a Lambda runtime, PID 1 in a container. A Landlock domain changes that rule:

- **Processes.** A confined process may not ptrace, read ``/proc/PID/environ`` or ``/proc/PID/mem`` of, or (ABI 6)
  signal any process outside its domain: every ancestor, PID 1 and the zygote are out of reach whatever their uid.
- **Files.** Reading is allowed beneath the interpreter (its prefixes and the ``sys.path`` directories inside
  them), the importable packages of other ``sys.path`` entries (not the rest of a source checkout, where a store may
  live), the system directories, a few files of ``/etc`` and the child's own ``/proc/self``; writing only in its
  working directory and to ``/dev/null``. ``~/.aws``, the application's store and every other file are refused.
- **Network** (ABI 4): no TCP connect or bind unless the request allows the network (ABI 10 adds UDP).
- **Abstract UNIX sockets** (ABI 6): none outside the domain.

It is applied in the child after everything the sandbox itself needs is in place, just before the worker's code is
loaded. Binding: ``landlockpy`` (typed, no dependencies, degrades to the running kernel's ABI). Where the kernel has
no Landlock (older kernels; AWS Lambda, which also has no root) this layer is absent and the README says what is left.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping

__all__ = ["abi", "confine", "readable_paths"]

#: Directories every confined child may read and execute from.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/sys/devices/system/cpu")
#: Files of ``/etc`` that name resolution, TLS and time zones need; the rest of ``/etc`` stays closed.
SYSTEM_FILES = (
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/etc/localtime",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/ld.so.cache",
    "/etc/mime.types",
)
#: Devices a child may open for reading and writing.
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pth")


def abi() -> int:
    """The Landlock ABI version of this kernel, 0 where there is none (or no binding)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        import landlockpy
    except ImportError:
        return 0
    try:
        return landlockpy.abi_version()
    except OSError:  # a seccomp filter (a container's, say) may refuse the call itself
        return 0


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _importable(entry: str) -> list[str]:
    """The packages and modules directly inside a ``sys.path`` directory (not its other files)."""
    found = []
    try:
        names = sorted(os.listdir(entry))
    except OSError:
        return []
    for name in names:
        path = os.path.join(entry, name)
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, "__init__.py")):
            found.append(path)
        elif name.endswith(_MODULE_SUFFIXES) and os.path.isfile(path):
            found.append(path)
    return found


def readable_paths(search_path: Iterable[str] | None = None) -> tuple[str, ...]:
    """What a confined child may read (and execute): the interpreter, importable code and the system directories.

    A ``sys.path`` entry inside one of the interpreter's prefixes is allowed whole; any other (a source checkout,
    the current directory, ``/``) only for the packages and modules directly inside it.
    """
    prefixes = sorted(
        {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)} - {"/"}
    )
    found: list[str] = [*prefixes]
    for entry in sys.path if search_path is None else search_path:
        if not entry:
            continue
        real = os.path.realpath(entry)
        if _inside(real, prefixes):
            continue
        if os.path.isfile(real):  # a zip of modules
            found.append(real)
        elif os.path.isdir(real):
            found.extend(_importable(real))
    found += [p for p in (*SYSTEM_DIRS, *SYSTEM_FILES) if os.path.exists(p)]
    return tuple(dict.fromkeys(found))


def _model_files(context: Mapping[str, object], env: Mapping[str, str]) -> list[str]:
    """Files the worker's model needs: a ``local:`` or ``scripted:`` spec's file, the models directory."""
    spec = context.get("model_spec")
    found = []
    if isinstance(spec, str):
        target = spec.partition(":")[2].strip()
        if os.path.isabs(target) and os.path.exists(target):
            found.append(target)
    models = env.get("ARBITER_MODELS_DIR", "")
    if os.path.isabs(models) and os.path.isdir(models):
        found.append(models)
    return found


def confine(
    *,
    workdir: str,
    readable: Iterable[str],
    network: bool,
    context: Mapping[str, object],
    env: Mapping[str, str],
) -> int:
    """Put the calling process in a new Landlock domain; returns the ABI used.

    Raises:
        OSError: the domain could not be created (the child must then not run the worker).
    """
    from landlockpy import AccessFS, AccessNet, LandlockError, Ruleset, Scope

    read = AccessFS.READ_FILE | AccessFS.READ_DIR
    try:
        with Ruleset(
            handled_net=AccessNet.NONE if network else AccessNet.BIND_TCP | AccessNet.CONNECT_TCP,
            scoped=Scope.ABSTRACT_UNIX_SOCKET | Scope.SIGNAL,
        ) as ruleset:
            for path in readable:
                if os.path.exists(path):
                    ruleset.allow_path(path, read | AccessFS.EXECUTE if os.path.isdir(path) else AccessFS.READ_FILE)
            for path in _model_files(context, env):
                ruleset.allow_path(path, read if os.path.isdir(path) else AccessFS.READ_FILE)
            for device in DEVICES:
                if os.path.exists(device):
                    ruleset.allow_path(device, AccessFS.READ_FILE | AccessFS.WRITE_FILE)
            # Its own /proc/PID only (resolved now): not its parent's, not its children's.
            ruleset.allow_path(f"/proc/{os.getpid()}", read)
            ruleset.allow_path(workdir, ruleset.handled_fs)
            ruleset.restrict()
            return ruleset.abi_version
    except LandlockError as exc:
        raise OSError(exc.errno, f"Landlock: {exc}") from None
