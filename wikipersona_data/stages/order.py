"""The order the pipeline runs its stages in: every per-stage list shown to people follows it.

``build``'s table, ``estimate`` and the card all list stages this way (``embed`` serves ``respond`` and
comes right after it), so one table can be read against another line by line.
"""

from __future__ import annotations

PIPELINE_ORDER = ("personas", "describe", "questions", "respond", "embed", "judge", "split", "prefixes")


def pipeline_rank(stage: str) -> tuple[int, str]:
    """Sort key: pipeline position, unknown stages last (alphabetically)."""
    return (PIPELINE_ORDER.index(stage) if stage in PIPELINE_ORDER else len(PIPELINE_ORDER), stage)
