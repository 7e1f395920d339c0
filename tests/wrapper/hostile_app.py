"""An application for the secrets tests: its credentials are in its exec-time environment, as on Lambda.

Usage: ``python hostile_app.py [--launch] NAME``

It starts a one-zygote pool, runs the hostile handler ``NAME`` of the corpus with ``pids`` = its own pid, its
ancestors' and PID 1's, and prints the outcome as JSON. With ``--launch`` it first starts itself as a child and waits
for it: the launcher is then an ancestor of the application holding the same secrets (a shell that exported them).
It also reports whether the application is still dumpable once its pool has started.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

CORPUS = Path(__file__).parent / "hostile"
PR_GET_DUMPABLE = 3


def ancestors() -> list[int]:
    """This process, its ancestors and PID 1."""
    chain, pid = [], os.getpid()
    while pid > 1 and pid not in chain:
        chain.append(pid)
        with open(f"/proc/{pid}/status") as status:
            pid = next(int(line.split()[1]) for line in status if line.startswith("PPid:"))
    return [*chain, 1]


def main(argv: list[str]) -> int:
    if argv[0] == "--launch":
        return subprocess.run([sys.executable, __file__, *argv[1:]], check=False).returncode
    from wrapper.sandbox import SandboxLimits, SandboxPool, SandboxRequest

    name = argv[0]
    request = SandboxRequest(
        code=(CORPUS / f"{name}.py").read_bytes(),
        module_name=f"hostile_{name}",
        input={"pids": ancestors()},
        context={"orchestration_id": "o-1", "task_id": "t-1", "attempt": 1, "agent": "spy", "notes": {}},
        limits=SandboxLimits(timeout_seconds=20.0),
    )
    with SandboxPool(size=1, preload=()) as pool:
        outcome = pool.run(request)
        dumpable = ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)
    print(json.dumps({"pids": request.input["pids"], "dumpable": dumpable, **dataclasses.asdict(outcome)}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
