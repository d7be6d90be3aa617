"""Keep CPython's cyclic garbage collector from stalling the event loop while LLM calls are in flight.

A build imports large libraries (datasets, pyarrow, pydantic, openai) and keeps its inputs for the whole
run. A full (generation 2) collection walks every one of those objects, and while it runs no reply is
read and no request is sent: measured in ``benchmarks/bench_llm.py``, one full collection stalled the
client for 80-260 ms with 64 calls in flight, and throughput fell from 0.91 to 0.87 of the
concurrency / latency bound. :func:`settled_heap` collects once, then moves what survived into the
collector's permanent generation (``gc.freeze``), so collections during the block walk only what the
block allocates.

Frozen objects are still freed by reference counting; only a reference cycle among them would wait. The
block ends with ``gc.unfreeze()``, which hands everything back to the collector, so a long-lived process
that runs many builds (a notebook, a test session) keeps no garbage from one build to the next.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def settled_heap() -> Iterator[None]:
    """Collect, freeze what survived for the block, and unfreeze after it (see the module docstring)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
