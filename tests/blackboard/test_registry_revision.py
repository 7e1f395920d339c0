"""``Registry.one_revision``: within a block a thread reads the registry's revision once; other threads do not."""

from __future__ import annotations

import threading

from blackboard.adapters import MemoryRegistry
from tests.conformance.builders import manifest


class CountingRegistry(MemoryRegistry):
    reads = 0

    def _revision(self) -> int:
        self.reads += 1
        return super()._revision()


def test_a_block_reads_the_revision_once_and_sees_a_later_version_only_after_it() -> None:
    registry = CountingRegistry()
    with registry.one_revision():
        first = registry.revision()
        registry.put(manifest("cook"))
        assert registry.revision() == first and registry.reads == 1
        with registry.one_revision():  # nested: the outermost block decides
            assert registry.revision() == first
        assert registry.revision() == first and registry.reads == 1
    assert registry.revision() != first and registry.reads == 2
    with registry.one_revision():  # a new block reads again
        assert registry.revision() != first and registry.reads == 3


def test_other_threads_read_for_themselves() -> None:
    registry = CountingRegistry()
    seen: list[int] = []
    with registry.one_revision():
        pinned = registry.revision()
        registry.put(manifest("cook"))
        thread = threading.Thread(target=lambda: seen.append(registry.revision()))
        thread.start()
        thread.join()
        assert seen[0] != pinned and registry.revision() == pinned


def test_a_block_left_by_an_error_unpins() -> None:
    registry = CountingRegistry()
    try:
        with registry.one_revision():
            pinned = registry.revision()
            registry.put(manifest("cook"))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert registry.revision() != pinned
