"""The settled heap: frozen for the block, handed back to the collector after it."""

from __future__ import annotations

import gc
import weakref

from wikipersona_data.heap import settled_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_objects_are_frozen_for_the_block_and_collectable_after_it() -> None:
    assert gc.get_freeze_count() == 0
    node = _Node()
    alive = weakref.ref(node)
    with settled_heap():
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert alive() is not None  # frozen: the collector does not look at it
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None  # unfrozen: an abandoned cycle from the build is collected again


def test_the_heap_is_unfrozen_when_the_block_raises() -> None:
    try:
        with settled_heap():
            raise RuntimeError("stage failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0
