"""The peers' side of ``bench/peers.py``: the same workload on Strands' ``Graph`` and on LangGraph.

Imported by ``bench/peers.py`` in a process of the peers' own environment (``make bench-peers``), so it imports
nothing of this project. Each function runs ``waves`` waves of ``width`` no-op tasks: a zero-latency planner step asks
for the wave, every task of it runs, their results are gathered, and the planner runs again.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable
from typing import Annotated, Any, TypedDict


def strands_graph(waves: int, width: int, workers: int) -> int:
    """Strands' multi-agent ``Graph``: a graph per wave, its tasks the entry points, run by a planner loop.

    The graph's edges are static, so a planner that decides each wave from the last one builds that wave's graph
    (built inside the timing: that is the cost of planning with it). ``workers`` does not apply: the graph runs its
    ready nodes as concurrent asyncio tasks. A graph of all the waves at once with "all tasks done" conditions was
    tried first: the graph scans every edge per batch, so it grew with the square of the run.
    """
    from strands.multiagent.base import MultiAgentBase, MultiAgentResult, NodeResult, Status
    from strands.multiagent.graph import GraphBuilder

    class Function(MultiAgentBase):
        def __init__(self, name: str, value: int) -> None:
            super().__init__()
            self.name = name
            self.value = value

        async def invoke_async(self, task: Any, invocation_state: Any = None, **kwargs: Any) -> MultiAgentResult:
            inner = MultiAgentResult(status=Status.COMPLETED)
            return MultiAgentResult(
                status=Status.COMPLETED, results={self.name: NodeResult(result=inner, status=Status.COMPLETED)}
            )

    async def run() -> int:
        gathered = 0
        for wave in range(waves):  # the planner: one zero-latency step per wave
            builder = GraphBuilder()
            builder.set_max_node_executions(width)
            for i in range(width):
                name = f"t{wave}_{i}"
                builder.add_node(Function(name, i), name)
                builder.set_entry_point(name)
            result = await builder.build().invoke_async("go")
            assert result.status == Status.COMPLETED, result.status
            gathered += len(result.results)
        return gathered

    return asyncio.run(run())


class _State(TypedDict):
    wave: int
    results: Annotated[list[int], operator.add]


def _langgraph(waves: int, width: int, workers: int, *, checkpointer: bool) -> int:
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    def planner(state: _State) -> dict[str, Any]:
        return {"wave": state["wave"] + 1}

    def route(state: _State) -> Any:
        if state["wave"] > waves:
            return END
        return [Send("task", {"i": i}) for i in range(width)]

    def task(arguments: dict[str, int]) -> dict[str, Any]:
        return {"results": [arguments["i"]]}

    graph = StateGraph(_State)
    graph.add_node("planner", planner)
    graph.add_node("task", task)
    graph.add_edge(START, "planner")
    graph.add_conditional_edges("planner", route, ["task", END])
    graph.add_edge("task", "planner")
    config: dict[str, Any] = {"recursion_limit": 2 * waves + 10, "max_concurrency": workers}
    if checkpointer:
        from langgraph.checkpoint.memory import InMemorySaver

        app = graph.compile(checkpointer=InMemorySaver())
        config["configurable"] = {"thread_id": "bench"}
    else:
        app = graph.compile()
    final = app.invoke({"wave": 0, "results": []}, config)
    return len(final["results"])


def langgraph_send(waves: int, width: int, workers: int) -> int:
    """LangGraph: a planner node fans out with ``Send``; the tasks' results are reduced into the state."""
    return _langgraph(waves, width, workers, checkpointer=False)


def langgraph_saver(waves: int, width: int, workers: int) -> int:
    """The same with LangGraph's ``InMemorySaver`` checkpointer (its state saved after every step)."""
    return _langgraph(waves, width, workers, checkpointer=True)


PEERS: dict[str, Callable[[int, int, int], int]] = {
    "strands-graph": strands_graph,
    "langgraph-send": langgraph_send,
    "langgraph-saver": langgraph_saver,
}
