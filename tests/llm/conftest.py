"""The real-model tests run with the product's defaults: the Fabricator cross-checks its drafts."""

from __future__ import annotations

import pytest

from fabricator.constants import ENV_FABRICATOR_CROSS_CHECK


@pytest.fixture(autouse=True)
def default_cross_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_FABRICATOR_CROSS_CHECK, raising=False)
