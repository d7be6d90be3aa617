"""The order the pipeline runs its stages in: every per-stage list shown to people follows it.

``build``'s table, ``estimate`` and the card all list stages this way (``embed`` serves ``respond`` and
comes right after it), so one table can be read against another line by line. The order is the
registry's (``stages/registry.py``), read once on first use.
"""

from __future__ import annotations

import functools


@functools.cache
def pipeline_order() -> tuple[str, ...]:
    from wikipersona_data.stages import registry  # late: the card imports this module, the registry is heavy

    return registry.display_order()


def pipeline_rank(stage: str) -> tuple[int, str]:
    """Sort key: pipeline position, unknown stages last (alphabetically)."""
    order = pipeline_order()
    return (order.index(stage) if stage in order else len(order), stage)
