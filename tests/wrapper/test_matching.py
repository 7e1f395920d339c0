"""Capability matching: BM25 and the local embeddings, vectors kept with the manifests, awkward descriptions."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from blackboard import AgentManifest, AgentState, Registry
from blackboard.adapters import MemoryRegistry
from blackboard.records import CodeRef
from wrapper.embeddings import LocalMiniLM, local_embedder
from wrapper.matching import Matcher, default_matcher, index_text, lexical_similarity

AGENTS = {
    "refund_order": "Refunds a paid order to the customer's original payment method. Needs the order id and amount.",
    "cancel_order": "Cancels an order that has not shipped yet. Needs the order id.",
    "order_status": "Tells where an order is: placed, packed, shipped or delivered. Needs the order id.",
    "convert_currency": "Converts an amount of money from one currency to another at today's rate.",
    "weather_forecast": "Gives the weather forecast for a city for the next days.",
    "summarise_alarm": "Summarises a CloudWatch alarm event in one sentence for the on-call engineer.",
}


def register(registry: Registry, name: str, description: str, fields: Sequence[str] = ("order_id",)) -> AgentManifest:
    digest = hashlib.sha256(name.encode()).hexdigest()
    schema = {"type": "object", "properties": {f: {"type": "string"} for f in fields}}
    manifest = AgentManifest(
        name=name, version=registry.next_version(name), description=description, input_schema=schema,
        code=CodeRef(sha256=digest, key=digest),
    )  # fmt: skip
    return registry.put(manifest).record


@pytest.fixture
def registry() -> MemoryRegistry:
    registry = MemoryRegistry()
    for name, description in AGENTS.items():
        register(registry, name, description)
    return registry


@pytest.fixture(scope="module")
def embedder() -> LocalMiniLM:
    found = local_embedder()
    assert found is not None, "the local embedding model is installed by `make install`"
    return found


QUERIES = [
    ("the customer wants their money back for order 1234", "refund_order"),
    ("stop order 88 before it leaves the warehouse", "cancel_order"),
    ("where is my parcel, order 17?", "order_status"),
    ("how many yen is 250 euros", "convert_currency"),
    ("will it rain in Lisbon tomorrow", "weather_forecast"),
]


@pytest.mark.parametrize("provider", ["bm25", "embeddings"])
def test_ranks_the_right_agent_in_the_top_three(registry: MemoryRegistry, embedder: LocalMiniLM, provider: str) -> None:
    matcher = Matcher(registry, embedder if provider == "embeddings" else None)
    matcher.refresh()
    for query, expected in QUERIES:
        names = [m.manifest.name for m in matcher.search(query, k=3)]
        if provider == "embeddings":
            assert names[0] == expected, query
        else:
            assert expected in names or not names, query  # BM25 needs shared words; it must never rank wrongly first
    assert len(matcher.search("anything at all", k=2)) <= 2


def test_vectors_are_stored_with_the_manifest_and_reused(registry: MemoryRegistry, embedder: LocalMiniLM) -> None:
    matcher = Matcher(registry, embedder)
    matcher.refresh()
    assert registry.get("refund_order", 1).embedding is None  # not needed yet: a listing is enough to offer agents
    assert "refund_order" in matcher.indexed()
    matcher.search("refund my order", k=1)
    stored = registry.get("refund_order", 1)
    assert stored.embedding_model == embedder.name and stored.embedding is not None and len(stored.embedding) == 384

    class Counting:
        name, dimension = embedder.name, embedder.dimension
        calls = 0

        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            Counting.calls += len(texts)
            return embedder.embed(texts)

    again = Matcher(registry, Counting())
    again.refresh()
    assert again.best("refund my order", 0.0) is not None
    assert Counting.calls == 1  # the query only: every vector was already there


def test_missing_or_wrong_vectors_are_embedded_again(registry: MemoryRegistry, embedder: LocalMiniLM) -> None:
    registry.set_embedding("cancel_order", 1, [0.5, 0.5], embedder.name)  # wrong dimension
    registry.set_embedding("order_status", 1, [0.1] * 384, "another-model")  # another model's vector
    matcher = Matcher(registry, embedder)
    matcher.refresh()
    assert matcher.search("stop order 88 before it ships", k=1)[0].manifest.name == "cancel_order"
    assert len(registry.get("cancel_order", 1).embedding or []) == 384
    assert registry.get("order_status", 1).embedding_model == embedder.name


def test_only_the_newest_active_version_is_offered(registry: MemoryRegistry) -> None:
    register(registry, "refund_order", "Refunds an order (second version).")
    registry.set_state("cancel_order", 1, AgentState.ACTIVE, AgentState.QUARANTINED)
    matcher = Matcher(registry)
    matcher.refresh()
    found = {m.manifest.name: m.manifest.version for m in matcher.search("refund cancel order", k=10)}
    assert found.get("refund_order") == 2 and "cancel_order" not in found


def test_empty_registry_and_empty_text() -> None:
    for matcher in (Matcher(MemoryRegistry()), default_matcher(MemoryRegistry())):
        matcher.refresh()
        assert matcher.search("anything") == [] and matcher.best("anything", 0.1) is None
    matcher = Matcher(MemoryRegistry())
    matcher.refresh()
    assert matcher.search("", k=3) == []


def test_huge_and_non_english_descriptions(embedder: LocalMiniLM) -> None:
    registry = MemoryRegistry()
    register(registry, "essay", "word " * 1_590 + "counts words")  # near the 8,000-character limit
    register(registry, "wetter", "Liefert die Wettervorhersage für eine Stadt. Braucht den Namen der Stadt.")
    register(registry, "kanji", "注文の配送状況を確認します。注文番号が必要です。")
    for matcher in (Matcher(registry), Matcher(registry, embedder)):
        matcher.refresh()
        assert len(index_text(registry.get("essay", 1))) <= 2000
        assert matcher.search("Wettervorhersage für Berlin", k=1)[0].manifest.name == "wetter"
        assert matcher.search("注文の配送状況", k=1)[0].manifest.name == "kanji"


def test_best_applies_the_threshold(registry: MemoryRegistry, embedder: LocalMiniLM) -> None:
    for matcher in (Matcher(registry), Matcher(registry, embedder)):
        matcher.refresh()
        best = matcher.best("Refunds a paid order to the customer's payment method", 0.7)
        assert best is not None and best.manifest.name == "refund_order" and best.score >= 0.7
        assert matcher.best("Translate a poem into Latin verse", 0.7) is None


def test_lexical_similarity() -> None:
    assert lexical_similarity("Parses the alarm", "parse an alarm") == pytest.approx(1.0)
    assert lexical_similarity("", "anything") == 0.0
    assert lexical_similarity("refund order", "weather forecast") == 0.0


def test_refresh_reads_the_registry_only_after_a_change(registry: MemoryRegistry, embedder: LocalMiniLM) -> None:
    reads: list[int] = []
    original = registry.list_agents

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(1)
        return original(*args, **kwargs)

    registry.list_agents = counting  # type: ignore[method-assign]
    matcher = Matcher(registry, embedder)
    matcher.refresh()
    matcher.refresh()
    assert len(reads) == 1
    matcher.search("refund", k=1)  # embeds every agent (which changes the revision)
    matcher.refresh()  # reads once more to be sure
    matcher.refresh()
    matcher.refresh()
    assert len(reads) == 2
    register(registry, "new_agent", "Does something new.")
    matcher.refresh()
    assert len(reads) == 3 and "new_agent" in {m.manifest.name for m in matcher.search("something new", k=10)}


class FakeBedrockRuntime:
    """Stands in for the bedrock-runtime client: a deterministic 4-dimensional 'embedding' of the text's words."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []

    def invoke_model(self, modelId: str, body: str) -> dict[str, object]:
        import io
        import json
        import math

        request = json.loads(body)
        self.requests.append({"modelId": modelId, **request})
        words = request["inputText"].lower()
        raw = [words.count("order") + 0.1, words.count("weather") + 0.1, words.count("refund") + 0.1, 0.1]
        norm = math.sqrt(sum(x * x for x in raw))
        return {"body": io.BytesIO(json.dumps({"embedding": [x / norm for x in raw]}).encode())}


def test_bedrock_embedder_with_the_matcher(registry: MemoryRegistry) -> None:
    from wrapper.embeddings import BedrockEmbedder

    client = FakeBedrockRuntime()
    embedder = BedrockEmbedder(client=client, dimension=4)
    matcher = Matcher(registry, embedder)
    matcher.refresh()
    assert client.requests == []  # no vector needed yet
    assert matcher.search("weather in Rome", k=1)[0].manifest.name == "weather_forecast"
    assert registry.get("refund_order", 1).embedding_model == "bedrock:amazon.titan-embed-text-v2:0:4"
    assert client.requests[0]["dimensions"] == 4 and client.requests[0]["normalize"] is True
    assert len(client.requests) == len(AGENTS) + 1  # one call per description, one for the query


def test_matching_is_chosen_by_argument_then_environment(
    registry: MemoryRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wrapper.exceptions import ModelConfigurationError
    from wrapper.matching import matcher_for

    monkeypatch.delenv("ARBITER_MATCHING", raising=False)
    assert matcher_for(registry).provider == "all-minilm-l6-v2-int8+bm25"  # type: ignore[union-attr]
    monkeypatch.setenv("ARBITER_MATCHING", "bm25")
    assert matcher_for(registry).provider == "bm25"  # type: ignore[union-attr]
    assert matcher_for(registry, "all") is None
    with pytest.raises(ModelConfigurationError, match="matching must be one of"):
        matcher_for(registry, "telepathy")


def test_the_local_model_loads_at_its_first_text_only() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from wrapper.embeddings import local_embedder\n"
        "embedder = local_embedder()\n"
        "assert embedder is not None and 'onnxruntime' not in sys.modules, 'loaded before any text'\n"
        "(vector,) = embedder.embed(['refund my order'])\n"
        "assert len(vector) == 384 and 'onnxruntime' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_registry_offered_whole_is_never_embedded(registry: MemoryRegistry) -> None:
    class Refusing:
        name, dimension = "refusing", 384

        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            raise AssertionError("nothing to embed: the agents are only listed")

    matcher = Matcher(registry, Refusing())
    matcher.refresh()
    assert set(matcher.indexed()) == set(AGENTS) and len(matcher) == len(AGENTS)
