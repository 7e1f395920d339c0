"""The sandbox: runs untrusted (generated) worker code in isolated child processes of warm fork servers.

- :class:`SandboxPool` keeps ``size`` fork servers warm and runs one :class:`SandboxRequest` at a time on each;
  :func:`run_cold` does the same in a fresh interpreter.
- :class:`SandboxOutcome` is what happened; nothing the worker does raises out of the pool.
- :func:`sandbox_capabilities` reports which protections this machine grants (a dedicated user id, network and mount
  namespaces: all three need root on Linux; Landlock, which does not). Without root the child still gets rlimits, a
  scrubbed environment, no inherited descriptor and a temporary working directory, and the application is
  non-dumpable; Landlock, where the kernel has it, then keeps the child off other processes, files and TCP.
"""

from wrapper.sandbox._types import SandboxCapabilities, SandboxLimits, SandboxOutcome, SandboxRequest
from wrapper.sandbox.pool import SandboxPool, run_cold, sandbox_capabilities

__all__ = [
    "SandboxCapabilities",
    "SandboxLimits",
    "SandboxOutcome",
    "SandboxPool",
    "SandboxRequest",
    "run_cold",
    "sandbox_capabilities",
]
