"""Build the Lambda code without Docker: the library's sources as the function code, its dependencies as a layer.

Both are plain directories under ``infra/.build/`` (git-ignored), named by a hash of what they are built from, so a
second synth reuses them: the layer's hash covers the pins, the dependency list and the target platform, the code's
hash covers every source file. Dependencies are installed by pip for the Lambda platform (manylinux, CPython 3.12,
x86_64, binary wheels only), never compiled on this machine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LAMBDA_PACKAGES",
    "BuiltAsset",
    "PackagingError",
    "build_code",
    "build_dependencies",
    "dependency_hash",
    "requirements",
]

#: The library's packages, copied into the function code.
LAMBDA_PACKAGES = ("arbiter", "blackboard", "wrapper", "fabricator")
#: The extras the Lambda functions need next to the core dependencies.
LAMBDA_EXTRAS = ("aws",)
#: What pip installs for: the Lambda runtime ``python3.12`` on ``x86_64``.
PIP_PLATFORM_ARGS = (
    "--platform",
    "manylinux2014_x86_64",
    "--implementation",
    "cp",
    "--python-version",
    "3.12",
    "--only-binary=:all:",
)
# Bumped when the layout of a build changes, so an old build is never reused for a new layout.
_BUILD_FORMAT = "1"
_SKIPPED_NAMES = {"__pycache__", ".mypy_cache", ".pytest_cache"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


class PackagingError(RuntimeError):
    """Building the Lambda code failed; the message says which step and how to retry."""


@dataclass(frozen=True)
class BuiltAsset:
    """A built directory and the hash it is named by (used as the CDK asset hash, so CDK does not re-hash it)."""

    path: Path
    hash: str


def requirements(repo: Path) -> list[str]:
    """The requirement strings of the core dependencies plus the ``aws`` extra, read from ``pyproject.toml``."""
    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = list(project["dependencies"])
    for extra in LAMBDA_EXTRAS:
        found.extend(project["optional-dependencies"][extra])
    return found


def build_dependencies(repo: Path, build_dir: Path) -> BuiltAsset:
    """Install the dependencies for the Lambda platform into a layer directory (``<dir>/python/...``), once."""
    constraints = repo / "requirements" / "constraints.txt"
    reqs = requirements(repo)
    asset_hash = dependency_hash(repo)
    target = build_dir / f"deps-{asset_hash[:16]}"
    if (target / ".complete").exists():
        return BuiltAsset(target, asset_hash)
    staging = _staging_dir(build_dir, target)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-compile",
        *PIP_PLATFORM_ARGS,
        "--target",
        str(staging / "python"),
        "-c",
        str(constraints),
        *reqs,
    ]
    # Not --quiet: on a failed resolution, only the full output names the pin that has no wheel.
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise PackagingError(
            "pip could not install the Lambda dependencies for CPython 3.12 on manylinux x86_64 "
            f"(exit {result.returncode}); a pin without a matching binary wheel shows below. "
            f"Command: {' '.join(command)}\n{_tail(result.stdout)}"
        )
    # Console scripts are useless in a layer and pip writes them with this interpreter's path.
    shutil.rmtree(staging / "python" / "bin", ignore_errors=True)
    _prune(staging)
    return _publish(staging, target, asset_hash)


def dependency_hash(repo: Path) -> str:
    """The hash a dependency build is named by: the pins, the requirement list and the target platform."""
    constraints = (repo / "requirements" / "constraints.txt").read_text(encoding="utf-8")
    digest = hashlib.sha256()
    for part in (_BUILD_FORMAT, *PIP_PLATFORM_ARGS, *requirements(repo), constraints):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def build_code(repo: Path, build_dir: Path) -> BuiltAsset:
    """Copy the library's packages (sources only) into a function code directory, once per content."""
    files = sorted(
        path
        for package in LAMBDA_PACKAGES
        for path in (repo / package).rglob("*")
        if path.is_file() and _wanted(path.relative_to(repo))
    )
    if not files:
        raise PackagingError(f"no sources found under {repo} for {LAMBDA_PACKAGES}: run from a checkout of the repo")
    version = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    digest = hashlib.sha256(f"{_BUILD_FORMAT}\0{version}\0".encode())
    for path in files:
        digest.update(path.relative_to(repo).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    asset_hash = digest.hexdigest()
    target = build_dir / f"code-{asset_hash[:16]}"
    if (target / ".complete").exists():
        return BuiltAsset(target, asset_hash)
    staging = _staging_dir(build_dir, target)
    for path in files:
        destination = staging / path.relative_to(repo)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
    # Distribution metadata, so importlib.metadata.version("arbiter-agents") works inside Lambda as it does locally.
    info = staging / f"arbiter_agents-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: arbiter-agents\nVersion: {version}\n")
    return _publish(staging, target, asset_hash)


def _tail(text: str, lines: int = 25) -> str:
    """The end of pip's output, where its error is, without the warnings about each unusable index location."""
    kept = [line for line in text.strip().splitlines() if line.strip() and not line.startswith("WARNING: Location")]
    return "\n".join(kept[-lines:])


def _wanted(relative: Path) -> bool:
    return not any(part in _SKIPPED_NAMES for part in relative.parts) and relative.suffix not in _SKIPPED_SUFFIXES


def _staging_dir(build_dir: Path, target: Path) -> Path:
    build_dir.mkdir(parents=True, exist_ok=True)
    staging = build_dir / f".{target.name}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


def _prune(root: Path) -> None:
    for cache in [p for p in root.rglob("__pycache__") if p.is_dir()]:
        shutil.rmtree(cache, ignore_errors=True)


def _publish(staging: Path, target: Path, asset_hash: str) -> BuiltAsset:
    """Move a finished build into place atomically; a concurrent build of the same hash wins harmlessly."""
    (staging / ".complete").write_text(asset_hash)
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / ".complete").exists():
            raise PackagingError(f"could not move the build into {target}: remove it and synthesize again") from None
    _remove_stale(target)
    return BuiltAsset(target, asset_hash)


def _remove_stale(current: Path) -> None:
    """Keep only the newest build of each kind, so the build directory does not grow with every change."""
    kind = current.name.split("-", 1)[0]
    for other in current.parent.glob(f"{kind}-*"):
        if other != current and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
