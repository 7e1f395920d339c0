"""Fixtures for the CDK app: one synthesis of the default app per session, its template per module."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))
# jsii prints a banner about Node 20 on every start; the app itself does not care which Node runs it.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@dataclass(frozen=True)
class Assembly:
    """A synthesized app: its cloud assembly directory, its stack and the stack's template."""

    outdir: Path
    stack: Any
    template_path: Path

    def template_json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.template_path.read_text())
        return data

    def validation_report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return data


def synthesize(outdir: Path, overrides: dict[str, Any] | None = None) -> Assembly:
    """Build and synthesize the app as ``app.py`` does (cdk-nag included: findings raise here)."""
    from arbiter_infra import build_app

    app, stack = build_app(overrides, outdir=str(outdir))
    app.synth()
    return Assembly(outdir, stack, outdir / f"{stack.stack_name}.template.json")


@pytest.fixture(scope="session")
def default_assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))
