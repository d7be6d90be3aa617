"""Keep CPython's cyclic garbage collector from stalling the event loop while LLM calls are in flight.

A build imports large libraries (datasets, pyarrow, pydantic, openai) and keeps its inputs for the whole
run. A full (generation 2) collection walks every one of those objects, and while it runs no reply is
read and no request is sent: measured in ``benchmarks/bench_llm.py``, one full collection stalled the
client for 80-260 ms with 64 calls in flight. :func:`settle_heap` moves what exists now into the
collector's permanent generation, so later collections walk only what the stage allocates.

Frozen objects are still freed by reference counting; only a reference cycle among them is kept until the
process ends, which is why this is called once the long-lived objects exist (before the stages), after a
collection that has already freed the cycles of start-up.
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect once, then freeze every object that survived (see the module docstring)."""
    gc.collect()
    gc.freeze()
