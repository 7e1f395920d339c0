"""The public names of each package are pinned: removing or renaming one is a breaking change."""

from __future__ import annotations

import importlib
import types

import pytest

import blackboard
import blackboard.exceptions

BLACKBOARD = {
    "AcceptanceExample", "AgentManifest", "AgentNotFoundError", "AgentOrigin", "AgentRef", "AgentState", "AgentStats",
    "ArbiterError",
    "Applied", "Backends", "BatchFailedError", "Blackboard", "BlackboardError", "Budget", "BudgetUsage", "CodeRef",
    "CodeStore", "Completion",
    "CompletionEvent", "ConfigurationError", "DeadLetter", "Event", "EventBus", "FabricationRequest", "IntegrityError",
    "InvalidTransitionError", "MessageTooLargeError", "Note", "NotFoundError", "Orchestration", "OrchestrationFinished",
    "OrchestrationNotFoundError", "OrchestrationStatus", "PatternError", "QueueMessage", "QueueStats", "Reacted",
    "Reaction", "Received",
    "RecordValidationError", "Registry", "ReservedNameError", "ReservedSourceError", "RetryPolicy", "StoreCorruptError",
    "StoreUnavailableError", "StrictJsonError", "ingress_event", "ingress_events",
    "Subscription", "Task", "TaskError", "TaskMessage", "TaskNotFoundError", "TaskQueue", "TaskResult", "TaskState",
    "Transition", "Trigger", "TriggerError", "UnreadableRecordError", "Usage", "VersionConflictError", "WaveView",
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
    errors = [getattr(blackboard.exceptions, n) for n in blackboard.exceptions.__all__ if n != "ArbiterError"]
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


def _error_classes(module: types.ModuleType) -> list[type[BaseException]]:
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == module.__name__
    ]


@pytest.mark.parametrize(
    "module",
    [
        "arbiter.exceptions",
        "blackboard.exceptions",
        "blackboard.adapters.aws.exceptions",
        "fabricator.exceptions",
        "fabricator.fabricator",
        "fabricator.generator",
        "wrapper.exceptions",
        "wrapper.model_store",
        "wrapper.testing",
    ],
)
def test_every_public_error_derives_from_the_one_root(module: str) -> None:
    from arbiter.errors import ArbiterError

    public = [e for e in _error_classes(importlib.import_module(module)) if not e.__name__.startswith("_")]
    assert public
    assert [e.__name__ for e in public if not issubclass(e, ArbiterError)] == []


def test_retryable_is_defined_once_on_the_root() -> None:
    import arbiter
    import arbiter.errors
    import fabricator
    import wrapper

    root = arbiter.errors.ArbiterError
    assert root is arbiter.ArbiterError is blackboard.ArbiterError is arbiter.exceptions.ArbiterError
    assert root.retryable is False and "retryable" in vars(root)
    roots = [blackboard.BlackboardError, wrapper.WrapperError, fabricator.FabricatorError]
    assert all(issubclass(r, root) and "retryable" not in vars(r) for r in roots)
    assert issubclass(arbiter.UsageError, root) and issubclass(arbiter.PlannerError, root)
    for name in arbiter.errors.__all__:
        assert issubclass(getattr(arbiter.errors, name), root)
