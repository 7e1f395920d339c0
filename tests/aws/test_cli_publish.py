"""``arbiter publish`` with AWS's own shapes (entries, arrays) and the same strict checks as ``arbiter run``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.arbiter.test_cli import invoke
from tests.aws.deployment import MotoDeployment

pytestmark = pytest.mark.aws


def test_publish_takes_an_entries_array_and_prints_every_id(deployment: MotoDeployment, tmp_path: Path) -> None:
    entries = [
        {"Source": "acme.orders", "DetailType": "Order Placed", "Detail": json.dumps({"order": 1})},
        {"source": "acme.orders", "detail-type": "Order Placed", "detail": {"order": 2}},
        {"source": "acme.orders", "detail-type": "Order Placed", "detail": json.dumps({"order": 3})},
    ]
    path = tmp_path / "entries.json"
    path.write_text(json.dumps({"Entries": entries}))
    code, out, err = invoke("publish", str(path), "--bus", deployment.bus, "--json")
    assert code == 0, err
    published = json.loads(out)
    bodies = [json.loads(m["Body"]) for m in deployment.drain("ingress")]
    assert sorted(b["detail"]["order"] for b in bodies) == [1, 2, 3]
    assert sorted(b["id"] for b in bodies) == sorted(published["event_ids"]) and len(set(published["event_ids"])) == 3
    code, out, err = invoke("publish", str(path), "--bus", deployment.bus)
    assert code == 0 and len(out.split()) == 3


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ([{"source": "a", "detail-type": "d", "detail": {}}, {"Source": "arbiter", "DetailType": "x", "Detail": "{}"}],
         "reserved"),
        ('{"source": "a", "detail-type": "d", "detail": {"n": 1e999}}', "would be Infinity"),
        ('{"source": "a", "detail-type": "d", "detail": {}, "source": "arbiter"}', "more than once"),
        ([{"source": "a", "detail-type": "d", "detail": {"pad": "x" * 262_144}}], "limit is 262,144"),
    ],
)  # fmt: skip
def test_publish_refuses_before_sending_anything(
    deployment: MotoDeployment, tmp_path: Path, content: object, words: str
) -> None:
    path = tmp_path / "event.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    code, _, err = invoke("publish", str(path), "--bus", deployment.bus)
    assert code == 2 and words in err and str(path) in err
    assert deployment.drain("ingress") == []
