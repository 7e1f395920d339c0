"""Runtime configuration objects: a Deployment beside EngineSettings; the former keywords still work, with a warning."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from arbiter import Deployment, EngineSettings, LocalRuntime, ReflectionPolicy, UsageError
from arbiter.testing import ScriptedModel
from wrapper import SandboxPool


def test_the_signature_groups_deployment_and_engine_settings() -> None:
    parameters = inspect.signature(LocalRuntime).parameters
    assert list(parameters) == [
        "home",
        "model",
        "instructions",
        "agents",
        "settings",
        "deployment",
        "worker_model",
        "fabricator_model",
        "approval",
        "matching",
        "start",
        "legacy",
    ]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"queue": "redis"}, "queue must be 'memory' or 'sqlite', not 'redis'"),
        ({"queue_visibility_seconds": 0}, "queue_visibility_seconds must be positive"),
        ({"workers": 0}, "workers must be at least 1"),
        ({"sweep_interval": -1}, "sweep_interval must be positive"),
    ],
)
def test_a_deployment_that_cannot_work_is_refused_before_anything_opens(
    tmp_path: Path, changes: dict[str, object], words: str
) -> None:
    with pytest.raises(UsageError, match=words):
        Deployment(home=tmp_path / "home", **changes)  # type: ignore[arg-type]
    assert not (tmp_path / "home").exists()


def test_a_deployment_and_settings_configure_the_runtime(tmp_path: Path, pool: SandboxPool) -> None:
    deployment = Deployment(home=tmp_path / "home", queue="sqlite", workers=3, sandbox=pool, sweep_interval=0.1)
    settings = EngineSettings(stalled_after_seconds=5)
    with LocalRuntime(model=ScriptedModel([{"text": "hi"}]), deployment=deployment, settings=settings) as rt:
        assert rt.run({"source": "t", "detail-type": "T", "detail": {}}, timeout=30).output == "hi"
        assert rt.deployment is deployment and rt.coordinator.settings.stalled_after_seconds == 5
        assert len([t for t in rt._threads if t.name.startswith("arbiter-planner")]) == 3
    assert (tmp_path / "home").is_dir()


def test_the_former_keywords_still_work_with_a_warning_naming_the_replacement(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning) as caught:
        rt = LocalRuntime(
            tmp_path / "home",
            model=ScriptedModel([]),
            start=False,
            workers=3,
            queue="sqlite",
            stalled_after=5,
            reflection=ReflectionPolicy(min_invocations=9),
        )
    with rt:
        assert (rt.deployment.workers, rt.deployment.queue) == (3, "sqlite")
        assert rt.coordinator.settings.stalled_after_seconds == 5
        assert rt.coordinator.settings.reflection.min_invocations == 9
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        "LocalRuntime(queue=...) is deprecated and goes in the next release: "
        "use LocalRuntime(deployment=Deployment(queue=...))",
        "LocalRuntime(reflection=...) is deprecated and goes in the next release: "
        "use LocalRuntime(settings=EngineSettings(reflection=...))",
        "LocalRuntime(stalled_after=...) is deprecated and goes in the next release: "
        "use LocalRuntime(settings=EngineSettings(stalled_after_seconds=...))",
        "LocalRuntime(workers=...) is deprecated and goes in the next release: "
        "use LocalRuntime(deployment=Deployment(workers=...))",
    ]
    assert {w.filename for w in caught} == {__file__}  # the warning points at the caller's line


def test_keywords_that_cannot_work_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'wrokers'"):
        LocalRuntime(tmp_path / "home", model=ScriptedModel([]), start=False, wrokers=3)
    with pytest.raises(UsageError, match="two homes"):
        LocalRuntime(tmp_path / "a", deployment=Deployment(home=tmp_path / "b"), start=False)
    with pytest.warns(DeprecationWarning), pytest.raises(UsageError, match="stalled_after cannot be negative"):
        LocalRuntime(tmp_path / "home", start=False, stalled_after=-1)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "home").exists()
