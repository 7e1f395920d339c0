"""Content-addressed blobs as files: ``<root>/<sha256>``, written atomically (temporary file, fsync, rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from blackboard.exceptions import ConfigurationError
from blackboard.ports.code_store import CodeStore

__all__ = ["LocalCodeStore"]


class LocalCodeStore(CodeStore):
    """Blobs in a directory (the embedded default puts it at ``ARBITER_HOME/code``).

    Args:
        root: the directory; created if missing.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the code store directory {self.root}: {exc}") from exc
        if not self.root.is_dir():
            raise ConfigurationError(f"the code store path {self.root} is not a directory")

    def path(self, sha256: str) -> Path:
        """Return the file that holds (or would hold) the blob with this SHA-256."""
        self._check(sha256)
        return self.root / sha256

    def _write(self, key: str, data: bytes, sha256: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, self.root / key)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def _exists(self, key: str) -> bool:
        return (self.root / key).is_file()
