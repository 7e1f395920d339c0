"""Prompt states on disk: a fresh process that finds the planner's prompt start on disk against one that does not.

Run: ``.venv/bin/python bench/local_model_states.py`` (the local model must be installed: ``arbiter models pull``;
a minute or two on 2 cores). It runs one completion of a planner prompt (the Arbiter's system prompt, ten tools, an
event: about 1,250 tokens; 24 tokens generated) in a new process twice, over an empty temporary states directory:
the first (cold) process evaluates the whole prompt and saves its state; the second (warm) process, with another
event, loads that state and evaluates only where its prompt differs. A third (fresh) process evaluates the warm
prompt with the store off: its completion must be the warm one's. Printed per process: prompt tokens, tokens
reused from disk, tokens evaluated (llama.cpp's count) and the seconds that took, the whole completion's seconds,
and the state file's size and write or read-and-load time.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arbiter.prompts import FABRICATE_TOOL, SYSTEM_PROMPT

GENERATED = 24
EVENTS = {
    "cold": {"source": "monitoring", "detail": {"alarm": "checkout-api p99 latency", "value_ms": 2300}},
    "warm": {"source": "billing", "detail": {"invoice": "INV-2291", "customer": "acme", "status": "overdue"}},
}
AGENTS = [
    ("recent_deploys", "Lists the deployments of a service in the last hours, newest first.", ["service", "hours"]),
    ("error_logs", "Returns the error log lines of a service in a time window, grouped by message.", ["service"]),
    ("metrics_query", "Reads a metric of a service (latency, error rate, saturation) over a window.", ["metric"]),
    ("pager", "Pages the on-call engineer of a team with a short message and a severity.", ["team", "message"]),
    ("rollback", "Rolls a service back to the deployment before the given one and reports the result.", ["deploy"]),
    ("invoice_lookup", "Finds an invoice by id and returns its amount, due date, customer and status.", ["invoice"]),
    ("customer_profile", "Returns a customer's plan, contacts, open tickets and account manager.", ["customer"]),
    ("send_email", "Sends an email from the billing team to a customer contact with a subject and body.", ["to"]),
    ("ticket_create", "Opens a support ticket with a title, a body and a priority; returns its id.", ["title"]),
]


def _specs() -> list[dict[str, Any]]:
    specs = [
        {
            "name": name,
            "description": description,
            "inputSchema": {
                "json": {
                    "type": "object",
                    "properties": {field: {"type": "string", "description": f"The {field}."} for field in fields},
                    "required": fields,
                }
            },
        }
        for name, description, fields in AGENTS
    ]
    return [*specs, FABRICATE_TOOL]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def child(mode: str, states: str) -> None:
    """One process: load the model, run one completion of a planner prompt, print what it did as JSON."""
    import llama_cpp

    from wrapper._chat_prompt import render_prompt
    from wrapper.local_model import LocalModel

    records = _Records()
    for name in ("wrapper._prompt_states", "wrapper.local_model"):
        logging.getLogger(name).addHandler(records)
        logging.getLogger(name).setLevel(logging.DEBUG)
    store = {"prompt_state_bytes": 0} if mode == "fresh" else {"prompt_state_dir": states}
    model = LocalModel("qwen2.5-coder-1.5b", **store)
    started = time.perf_counter()
    loaded = model._load()
    load_s = time.perf_counter() - started
    event = json.dumps(EVENTS["cold" if mode == "cold" else "warm"], indent=2)
    messages = [{"role": "user", "content": [{"text": "Event:\n" + event}]}]
    prompt = render_prompt(loaded.template, messages, _specs(), SYSTEM_PROMPT)  # type: ignore[arg-type]
    llama_cpp.llama_perf_context_reset(loaded.llama.ctx)
    started = time.perf_counter()
    result = loaded.llama.create_completion(prompt, max_tokens=GENERATED, temperature=0.0, seed=0)
    turn_s = time.perf_counter() - started
    perf = llama_cpp.llama_perf_context(loaded.llama.ctx)
    out: dict[str, Any] = {
        "mode": mode,
        "load_s": load_s,
        "turn_s": turn_s,
        "evaluated": int(perf.n_p_eval),
        "prompt_s": perf.t_p_eval_ms / 1000,
        "generate_s": perf.t_eval_ms / 1000,
        "prompt_tokens": result["usage"]["prompt_tokens"],
        "reused_tokens": 0,
        "text": result["choices"][0]["text"],
    }
    for record in records.records:
        if record.getMessage().endswith("prompt state saved"):
            _, out["saved_tokens"], out["state_bytes"], out["write_ms"] = record.args  # type: ignore[misc]
        if record.getMessage().endswith("prompt state loaded from disk"):
            _, out["loaded_tokens"], out["reused_tokens"], out["read_load_ms"] = record.args  # type: ignore[misc]
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["cold", "warm", "fresh"], help=argparse.SUPPRESS)
    parser.add_argument("--states", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.states)
        return
    with tempfile.TemporaryDirectory(prefix="arbiter-states-") as states:
        texts = {}
        for mode in ("cold", "warm", "fresh"):
            done = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--states", states],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(done.stdout.strip().splitlines()[-1])
            texts[mode] = row["text"]
            line = (
                f"{mode:<5} prompt={row['prompt_tokens']:>5} tok  reused={row['reused_tokens']:>5}  "
                f"evaluated={row['evaluated']:>5} in {row['prompt_s']:5.1f} s  "
                f"completion={row['turn_s']:6.1f} s (generating {GENERATED} tok: {row['generate_s']:.1f} s)  "
                f"model load {row['load_s']:.1f} s"
            )
            if "state_bytes" in row:
                mib = row["state_bytes"] / 2**20
                line += f"  saved {row['saved_tokens']} tok: {mib:.1f} MiB in {row['write_ms']:.0f} ms"
            if "read_load_ms" in row:
                line += f"  read+load {row['loaded_tokens']} tok in {row['read_load_ms']:.0f} ms"
            print(line, flush=True)
        same = "yes" if texts["warm"] == texts["fresh"] else f"NO: {texts['warm']!r} != {texts['fresh']!r}"
        print(f"warm completion equals a fresh evaluation of the same prompt (store off): {same}")


if __name__ == "__main__":
    main()
