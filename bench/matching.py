"""Capability matching: selection latency, prompt size and recall of :class:`wrapper.matching.Matcher`.

Run: ``.venv/bin/python bench/matching.py`` (``--queries`` to change the latency sample, ``--misses`` to list the
labelled queries whose agent is not in the top 8). Prints three tables, for each provider available (BM25 always;
the local all-MiniLM-L6-v2 embeddings when :func:`wrapper.embeddings.local_embedder` finds them):

1. Selection latency for registries of 100, 1,000 and 10,000 agents: the labelled agents of
   ``bench/data/matching.json`` plus generated ones (descriptions combined from templates with a seeded
   ``random.Random``). ``refresh()`` is timed once on a fresh registry (it embeds every description) and once more
   (vectors already stored), then ``search(query, k=8)`` over 200 queries drawn from the labelled set (p50/p95).
2. Tool-spec tokens per planning call: the top 8 agents plus ``fabricate`` (ours, mean over the queries) against
   every agent offered as a tool, estimated as ``len(json.dumps(specs)) / 4``.
3. Recall@1/@5/@8 on the labelled queries, with only the labelled agents registered and with 10,000 agents.

Targets: p95 < 20 ms at 10,000 agents; recall@8 >= 0.95 with the local embeddings. The first refreshes embed
~11,000 descriptions with the local model (~10 ms each on two cores): the whole script takes about five minutes
(a few seconds with BM25 only). With the embeddings, the matcher fuses their ranking with BM25's ("+bm25").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arbiter.prompts import FABRICATE_TOOL, agent_tool_spec
from blackboard import AgentManifest
from blackboard.adapters import MemoryRegistry
from blackboard.records import CodeRef
from wrapper.embeddings import Embedder, local_embedder
from wrapper.matching import Matcher

DATA = Path(__file__).resolve().parent / "data" / "matching.json"
SIZES = (100, 1_000, 10_000)
K = 8
P95_TARGET_MS = 20.0
RECALL8_TARGET = 0.95
SEED = 20240611

# ---------------------------------------------------------------- generated agents

# (base, third person) verbs; some share words with labelled agents on purpose (they are realistic distractors).
_VERBS = [
    ("validate", "validates"),
    ("archive", "archives"),
    ("enrich", "enriches"),
    ("audit", "audits"),
    ("normalise", "normalises"),
    ("deduplicate", "deduplicates"),
    ("tag", "tags"),
    ("score", "scores"),
    ("index", "indexes"),
    ("snapshot", "snapshots"),
    ("backfill", "backfills"),
    ("monitor", "monitors"),
    ("compare", "compares"),
    ("merge", "merges"),
    ("sync", "syncs"),
    ("summarise", "summarises"),
    ("export", "exports"),
    ("import", "imports"),
    ("approve", "approves"),
    ("reject", "rejects"),
    ("list", "lists"),
    ("fetch", "fetches"),
    ("update", "updates"),
    ("delete", "deletes"),
    ("publish", "publishes"),
    ("schedule", "schedules"),
    ("forecast", "forecasts"),
    ("reconcile", "reconciles"),
    ("classify", "classifies"),
    ("notify about", "notifies about"),
]
# (object, slug, its id field, what a result holds)
_OBJECTS = [
    ("supplier contracts", "contracts", "contract_id", "the contract terms"),
    ("warehouse bin locations", "bins", "bin_code", "the bin occupancy"),
    ("loyalty points balances", "loyalty", "member_id", "the points ledger"),
    ("payroll batches", "payroll", "batch_id", "the batch totals"),
    ("IoT sensor readings", "sensors", "sensor_id", "the readings"),
    ("marketing campaigns", "campaigns", "campaign_id", "the campaign metrics"),
    ("podcast transcripts", "podcasts", "episode_id", "the transcript segments"),
    ("lab test results", "labs", "sample_id", "the result values"),
    ("fleet telematics records", "fleet", "vehicle_id", "the trip records"),
    ("purchase orders", "pos", "po_number", "the order lines"),
    ("vendor invoices", "vendor_invoices", "vendor_id", "the invoice lines"),
    ("alarm thresholds", "thresholds", "metric_name", "the threshold settings"),
    ("feature flags", "flags", "flag_key", "the flag state"),
    ("DNS records", "dns", "zone", "the record set"),
    ("container images", "images", "image_ref", "the image digests"),
    ("customer surveys", "surveys", "survey_id", "the survey answers"),
    ("product reviews", "reviews", "product_id", "the review texts"),
    ("insurance claims", "claims", "claim_id", "the claim status"),
    ("patient appointments", "appointments", "patient_id", "the appointment slots"),
    ("training courses", "courses", "course_id", "the enrolment list"),
    ("shipping manifests", "manifests", "manifest_id", "the manifest entries"),
    ("tax filings", "filings", "filing_id", "the filing summary"),
    ("subscription plans", "plans", "plan_id", "the plan details"),
    ("energy meter readings", "meters", "meter_id", "the consumption figures"),
    ("legal documents", "legal", "document_id", "the clause list"),
    ("job postings", "postings", "posting_id", "the posting details"),
    ("crop yield estimates", "crops", "field_id", "the yield figures"),
    ("hotel bookings", "hotels", "booking_ref", "the booking details"),
    ("support macros", "macros", "macro_id", "the macro text"),
    ("data pipeline runs", "pipelines", "pipeline_id", "the run history"),
    ("API usage quotas", "quotas", "api_key_id", "the quota counters"),
    ("retail store footfall", "footfall", "store_id", "the visitor counts"),
    ("asset depreciation schedules", "depreciation", "asset_id", "the schedule rows"),
    ("firmware versions", "firmware", "device_id", "the version inventory"),
    ("translation memories", "tm", "project_id", "the segment pairs"),
    ("satellite images", "satellite", "tile_id", "the image metadata"),
    ("volunteer shifts", "shifts", "volunteer_id", "the shift roster"),
    ("wine cellar stock", "cellar", "bottle_sku", "the bottle counts"),
    ("ML training jobs", "mljobs", "job_id", "the job metrics"),
    ("parking permits", "permits", "permit_number", "the permit status"),
]
# (qualifier, slug)
_QUALIFIERS = [
    ("in the EMEA region", "emea"),
    ("in the APAC region", "apac"),
    ("for North America", "na"),
    ("in the legacy ERP", "erp"),
    ("in the data lake", "lake"),
    ("for the mobile app", "mobile"),
    ("across all tenants", "tenants"),
    ("for a single business unit", "bu"),
    ("in the staging environment", "staging"),
    ("from the partner portal", "partner"),
    ("in the CRM", "crm"),
    ("for the finance team", "fin"),
    ("for compliance reporting", "compliance"),
    ("in the nightly batch", "nightly"),
    ("on demand", "ondemand"),
    ("for the last quarter", "lastq"),
    ("older than a year", "old"),
    ("flagged by reviewers", "flagged"),
    ("for VIP accounts", "vip"),
    ("in the EU data centre", "eu"),
]
_TEMPLATES = [
    "{Verb3} {obj} {qual}. Needs the {field} and returns {ret}.",
    "Takes a {field} and {verb3} the matching {obj} {qual}; returns {ret} as JSON.",
    "Use this to {verb} {obj} {qual}. Input: {field}. Output: {ret} and a status.",
    "{Verb3} {obj} {qual} and reports {ret}. Idempotent; safe to retry.",
    "Batch job that {verb3} {obj} {qual}, optionally limited to one {field}. Returns {ret}.",
]
_EXTRA_FIELDS = [
    ("since", {"type": "string", "description": "ISO 8601 start of the period."}),
    ("dry_run", {"type": "boolean", "description": "Report without changing anything."}),
    ("limit", {"type": "integer", "description": "Maximum number of items."}),
    ("region", {"type": "string", "description": "Region code."}),
    ("format", {"type": "string", "enum": ["json", "csv"], "description": "Output format."}),
]


def _manifest(name: str, description: str, input_schema: dict[str, Any]) -> AgentManifest:
    h = hashlib.sha256(name.encode()).hexdigest()
    return AgentManifest(
        name=name, version=1, description=description, input_schema=input_schema, code=CodeRef(sha256=h, key=h)
    )


def generated_agents(count: int, taken: set[str], seed: int = SEED) -> list[AgentManifest]:
    """``count`` distinct synthetic agents (verb x object x qualifier, one template each), reproducible by seed."""
    rng = random.Random(seed)
    combos = [(v, o, q) for v in _VERBS for o in _OBJECTS for q in _QUALIFIERS]
    rng.shuffle(combos)
    out: list[AgentManifest] = []
    for (verb, verb3), (obj, obj_slug, field, ret), (qual, qual_slug) in combos:
        if len(out) == count:
            break
        name = f"{verb.split()[0]}_{obj_slug}_{qual_slug}"
        if name in taken:
            continue
        taken.add(name)
        template = rng.choice(_TEMPLATES)
        description = template.format(
            verb=verb, verb3=verb3, Verb3=verb3[0].upper() + verb3[1:], obj=obj, qual=qual, field=field, ret=ret
        )
        properties: dict[str, Any] = {field: {"type": "string", "description": f"The {field.replace('_', ' ')}."}}
        for extra, schema in rng.sample(_EXTRA_FIELDS, rng.randint(0, 3)):
            properties[extra] = schema
        out.append(_manifest(name, description, {"type": "object", "properties": properties, "required": [field]}))
    if len(out) < count:
        raise SystemExit(f"only {len(out)} distinct generated agents; add templates")
    return out


# ---------------------------------------------------------------- helpers


@dataclass
class Labelled:
    agents: list[AgentManifest]
    queries: list[tuple[str, str]]  # (text, agent name)


def load_labelled(path: Path = DATA) -> Labelled:
    data = json.loads(path.read_text())
    agents = [_manifest(a["name"], a["description"], a["input_schema"]) for a in data["agents"]]
    names = {a.name for a in agents}
    queries = [(q["text"], q["agent"]) for q in data["queries"]]
    unknown = {agent for _, agent in queries} - names
    if unknown:
        raise SystemExit(f"queries name unknown agents: {sorted(unknown)}")
    return Labelled(agents, queries)


def build_registry(manifests: list[AgentManifest]) -> MemoryRegistry:
    registry = MemoryRegistry()
    for manifest in manifests:
        registry.put(manifest)
    return registry


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def spec_tokens(specs: list[dict[str, Any]]) -> float:
    return len(json.dumps(specs)) / 4


@dataclass
class Recall:
    at1: float
    at5: float
    at8: float
    misses: list[tuple[str, str, list[str]]]  # (query, expected, top-8 names)


def recall(matcher: Matcher, queries: list[tuple[str, str]]) -> Recall:
    hits = {1: 0, 5: 0, 8: 0}
    misses = []
    for text, expected in queries:
        names = [m.manifest.name for m in matcher.search(text, k=K)]
        for k in hits:
            hits[k] += expected in names[:k]
        if expected not in names:
            misses.append((text, expected, names))
    n = len(queries)
    return Recall(hits[1] / n, hits[5] / n, hits[8] / n, misses)


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200, help="search calls timed per configuration")
    parser.add_argument("--misses", action="store_true", help="list labelled queries missed at k=8")
    args = parser.parse_args()

    labelled = load_labelled()
    taken = {a.name for a in labelled.agents}
    generated = generated_agents(max(SIZES) - len(labelled.agents), taken)
    rng = random.Random(SEED)
    sample = [rng.choice(labelled.queries)[0] for _ in range(args.queries)]

    providers: list[tuple[str, Embedder | None]] = [("bm25", None)]
    t0 = time.perf_counter()
    embedder = local_embedder()
    if embedder is not None:
        providers.append((f"{embedder.name}+bm25", embedder))
        print(f"local embedder {embedder.name} loaded in {(time.perf_counter() - t0) * 1000:.0f} ms")
    else:
        print("local embedder not installed: BM25 only")
    print(
        f"labelled set: {len(labelled.agents)} agents, {len(labelled.queries)} queries; "
        f"generated agents seeded with {SEED}; k={K}"
    )

    latency_rows = []
    token_rows = []
    recall_rows = []
    all_misses: dict[str, list[tuple[str, str, list[str]]]] = {}
    for size in SIZES:
        manifests = labelled.agents + generated[: size - len(labelled.agents)]
        all_tokens = spec_tokens([agent_tool_spec(m) for m in manifests])
        for provider, emb in providers:
            t = time.perf_counter()
            registry = build_registry(manifests)
            put_s = time.perf_counter() - t
            matcher = Matcher(registry, emb)
            t = time.perf_counter()
            matcher.refresh()
            cold_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            matcher.refresh()
            warm_ms = (time.perf_counter() - t) * 1000
            matcher.search(sample[0], k=K)  # warm-up
            times, ours, short = [], [], 0
            for text in sample:
                t = time.perf_counter()
                found = matcher.search(text, k=K)
                times.append((time.perf_counter() - t) * 1000)
                short += len(found) < K
                ours.append(spec_tokens([*(agent_tool_spec(m.manifest) for m in found), FABRICATE_TOOL]))
            p95 = percentile(times, 95)
            target = ("ok" if p95 < P95_TARGET_MS else "MISSED") if size == max(SIZES) else ""
            latency_rows.append(
                (provider, size, put_s, cold_ms, warm_ms, statistics.median(times), p95, short, target, len(matcher))
            )
            token_rows.append((provider, size, statistics.mean(ours), all_tokens))
            if size == max(SIZES):
                r = recall(matcher, labelled.queries)
                recall_rows.append((provider, f"{size:,}", r))
                all_misses[f"{provider} @ {size:,}"] = r.misses
            print(f"  done: {provider} at {size:,} agents", file=sys.stderr, flush=True)

    for provider, emb in providers:
        matcher = Matcher(build_registry(labelled.agents), emb)
        matcher.refresh()
        r = recall(matcher, labelled.queries)
        recall_rows.insert(0, (provider, f"{len(labelled.agents)} (labelled only)", r))
        all_misses[f"{provider} @ labelled only"] = r.misses

    print()
    print("1. Selection latency (search(query, k=8) over", len(sample), "labelled queries; MemoryRegistry)")
    print(
        f"{'provider':<24}{'agents':>8}{'indexed':>9}{'put all s':>11}{'refresh ms':>12}{'again ms':>10}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'<k hits':>9}  target p95 < {P95_TARGET_MS:.0f} ms at {max(SIZES):,}"
    )
    for provider, size, put_s, cold, warm, p50, p95, short, target, indexed in latency_rows:
        print(
            f"{provider:<24}{size:>8,}{indexed:>9,}{put_s:>11.2f}{cold:>12.1f}{warm:>10.1f}{p50:>9.2f}{p95:>9.2f}"
            f"{short:>9}  {target}"
        )
    print("   refresh ms: first refresh on a fresh registry (embeds every description); again ms: vectors stored")
    print("   <k hits: searches that returned fewer than k agents (BM25 only scores agents sharing a word)")

    print()
    print("2. Prompt tool-spec tokens per planning call (tokens estimated as len(json.dumps(specs)) / 4)")
    print(f"{'provider':<24}{'agents':>8}{'top-8 + fabricate':>19}{'all agents':>12}{'ratio':>8}")
    for provider, size, ours, everything in token_rows:
        print(f"{provider:<24}{size:>8,}{ours:>19,.0f}{everything:>12,.0f}{everything / ours:>7.0f}x")

    print()
    print(f"3. Recall on {len(labelled.queries)} labelled queries (target: recall@8 >= {RECALL8_TARGET}, local model)")
    print(f"{'provider':<24}{'registry':>22}{'@1':>7}{'@5':>7}{'@8':>7}  target")
    for provider, registry_label, r in recall_rows:
        target = ""
        if provider != "bm25":
            target = "ok" if r.at8 >= RECALL8_TARGET else "MISSED"
        print(f"{provider:<24}{registry_label:>22}{r.at1:>7.3f}{r.at5:>7.3f}{r.at8:>7.3f}  {target}")

    if args.misses:
        for label, misses in all_misses.items():
            print()
            print(f"missed at k={K}: {label} ({len(misses)})")
            for text, expected, names in misses:
                print(f"  {text!r}\n    expected {expected}; got {', '.join(names[:4])}, ...")


if __name__ == "__main__":
    main()
