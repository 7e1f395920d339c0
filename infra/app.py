"""Entry point of the Arbiter CDK app.

The CDK CLI runs it through ``cdk.json`` (``npx cdk synth|deploy [-c key=value ...]``). ``make synth`` runs it
directly, with no CLI and no AWS account: ``python app.py [-c key=value ...]`` writes the cloud assembly to
``$CDK_OUTDIR`` or ``infra/cdk.out``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arbiter_infra.application import INFRA_DIR, build_app
from arbiter_infra.config import ConfigError


def _context_arguments(argv: list[str]) -> dict[str, str]:
    """``-c key=value`` / ``--context key=value`` pairs, as the CDK CLI takes them."""
    values: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        if arg not in ("-c", "--context"):
            raise SystemExit(f"app.py: unexpected argument {arg!r}; usage: app.py [-c key=value ...]")
        pair = next(args, "")
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"app.py: {arg} needs key=value, got {pair!r}")
        values[key] = value
    return values


def main() -> None:
    """Synthesize the app."""
    outdir = os.environ.get("CDK_OUTDIR") or str(INFRA_DIR / "cdk.out")
    try:
        app, _ = build_app(_context_arguments(sys.argv[1:]), outdir=outdir)
    except ConfigError as exc:
        raise SystemExit(f"app.py: {exc}") from None
    app.synth()


if __name__ == "__main__":
    main()
