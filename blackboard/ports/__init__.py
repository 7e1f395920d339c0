"""The ports: abstract stores whose base classes hold the shared logic; adapters implement a few primitives."""

from blackboard.ports.blackboard import Applied, Blackboard, Completion, Reacted, TaskChange, Transition, WaveView
from blackboard.ports.code_store import CodeStore
from blackboard.ports.event_bus import EventBus, Subscription
from blackboard.ports.observers import BlackboardObserver
from blackboard.ports.registry import Registry
from blackboard.ports.task_queue import DeadLetter, QueueMessage, QueueStats, Received, TaskQueue

__all__ = [
    "Applied",
    "Blackboard",
    "BlackboardObserver",
    "CodeStore",
    "Completion",
    "DeadLetter",
    "EventBus",
    "QueueMessage",
    "QueueStats",
    "Reacted",
    "Received",
    "Registry",
    "Subscription",
    "TaskChange",
    "TaskQueue",
    "Transition",
    "WaveView",
]
