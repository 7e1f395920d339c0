"""The public names of each package are pinned: removing or renaming one is a breaking change."""

from __future__ import annotations

import importlib

import pytest

import blackboard
import blackboard.exceptions

BLACKBOARD = {
    "AcceptanceExample", "AgentManifest", "AgentNotFoundError", "AgentOrigin", "AgentRef", "AgentState", "AgentStats",
    "Applied", "Backends", "BatchFailedError", "Blackboard", "BlackboardError", "Budget", "BudgetUsage", "CodeRef",
    "CodeStore", "Completion",
    "CompletionEvent", "ConfigurationError", "DeadLetter", "Event", "EventBus", "FabricationRequest", "IntegrityError",
    "InvalidTransitionError", "MessageTooLargeError", "Note", "NotFoundError", "Orchestration", "OrchestrationFinished",
    "OrchestrationNotFoundError", "OrchestrationStatus", "PatternError", "QueueMessage", "QueueStats", "Reacted",
    "Reaction", "Received",
    "RecordValidationError", "Registry", "ReservedNameError", "ReservedSourceError", "RetryPolicy", "StoreCorruptError",
    "StoreUnavailableError", "StrictJsonError", "ingress_event", "ingress_events",
    "Subscription", "Task", "TaskError", "TaskMessage", "TaskNotFoundError", "TaskQueue", "TaskResult", "TaskState",
    "Transition", "Trigger", "TriggerError", "UnreadableRecordError", "Usage", "VersionConflictError",
    "local_backends", "memory_backends",
}  # fmt: skip


def test_blackboard_exports() -> None:
    assert set(blackboard.__all__) == BLACKBOARD
    for name in blackboard.__all__:
        assert getattr(blackboard, name) is not None


@pytest.mark.parametrize("package", ["arbiter", "blackboard", "fabricator", "wrapper"])
def test_packages_are_typed_with_explicit_exports(package: str) -> None:
    module = importlib.import_module(package)
    assert isinstance(module.__all__, list)
    assert module.__file__ is not None
    assert (importlib.resources.files(package) / "py.typed").is_file()


def test_errors_share_one_root() -> None:
    errors = [getattr(blackboard.exceptions, n) for n in blackboard.exceptions.__all__]
    assert all(issubclass(e, blackboard.BlackboardError) for e in errors)
    assert set(blackboard.exceptions.__all__) <= set(blackboard.__all__)
    assert blackboard.StoreUnavailableError.retryable and not blackboard.IntegrityError.retryable
    assert issubclass(blackboard.StoreCorruptError, blackboard.ConfigurationError)


def test_layering_blackboard_imports_nothing_above_it() -> None:
    import subprocess
    import sys

    code = (
        "import sys, blackboard, blackboard.adapters; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('arbiter', 'wrapper', 'fabricator')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
