"""Filter, FilterResult and FilterStep, in the style of datatrove's ``pipeline/filters/base_filter.py``.

A filter is a small class with one method, :meth:`Filter.check`, that says *keep* or *drop (reason,
detail)* for one row. A :class:`FilterStep` runs a list of filters in order over a list of rows,
counts kept/dropped per filter and reason, and turns every drop into a ``RejectRow`` so nothing
disappears silently (the stage writes them to its ``rejects.jsonl``).

Two additions to the datatrove shape, both needed by this pipeline:

- a filter may *rewrite* the row it keeps (``FilterResult.keep(row)``): the grounding filter marks each
  claim supported or not and rebuilds the description from the supported ones, which is a verdict on
  the row's parts rather than on the whole row;
- a filter may look at the whole collection before judging rows (:meth:`Filter.prepare`): near-duplicate
  detection, "all members chose the same answer" and length balancing are decisions about groups.
  ``prepare`` receives only the rows that survived the earlier filters, so the order of the list is
  the order of the checks.

Every filter declares the reasons it can give (``reasons``); a reason is unique across all filters, so
a reject's reason alone names the filter that dropped it (the report relies on this).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from wikipersona_data.stages.rows import RejectRow


@dataclass(frozen=True)
class FilterResult:
    """Keep (optionally with a rewritten row) or drop with a machine-friendly reason and a human detail."""

    kept: bool
    reason: str = ""
    detail: str = ""
    row: Any = None
    flags: tuple[str, ...] = ()

    @classmethod
    def keep(cls, row: Any = None, *, flags: Sequence[str] = ()) -> FilterResult:
        return cls(kept=True, row=row, flags=tuple(flags))

    @classmethod
    def drop(cls, reason: str, detail: str = "") -> FilterResult:
        return cls(kept=False, reason=reason, detail=detail)


class Filter:
    """One check. Subclasses set ``name`` and ``reasons`` and implement :meth:`check`.

    ``check`` may be a coroutine function (the LLM entailment check is). ``flags`` are observations that
    do not drop the row (e.g. "non_divergent" when dropping is off); they are counted in the report.
    """

    name: ClassVar[str] = "filter"
    reasons: ClassVar[tuple[str, ...]] = ()
    flags: ClassVar[tuple[str, ...]] = ()
    params: ClassVar[tuple[str, ...]] = ()
    """The ``[filters]`` settings it reads: what a recipe's ``[stage_filters]`` may set for this filter alone."""
    regenerate_on: ClassVar[frozenset[str]] = frozenset()
    """Drop reasons that ask the stage for a new sample (describe regenerates, judge re-judges) rather than
    a final drop: a property of the filter, so a stage never spells out another module's reason names."""

    async def prepare(self, rows: list[Any], context: dict[str, Any]) -> None:
        """Look at the rows that reached this filter before any ``check`` (group decisions, embeddings)."""

    def check(self, row: Any, context: dict[str, Any]) -> FilterResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def drop(self, reason: str, detail: str = "") -> FilterResult:
        if reason not in self.reasons:
            raise ValueError(f"filter {self.name}: undeclared reason {reason!r}")
        return FilterResult.drop(reason, detail)


@dataclass
class FilterCount:
    """Per filter: rows that passed, rows dropped per reason, rows flagged per flag."""

    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)


@dataclass
class StepResult:
    kept: list[Any]
    rejects: list[RejectRow]
    counts: dict[str, FilterCount]
    decisions: dict[str, str | None]
    """Row id -> reason of the drop, or None if kept (what the report aggregates)."""
    flags: dict[str, list[str]]
    """Row id -> flags raised on it."""


class FilterStep:
    """Run ``filters`` in order over rows of one stage; ``id_field`` names the row id for rejects."""

    def __init__(self, stage: str, filters: Sequence[Filter], id_field: str) -> None:
        seen: dict[str, str] = {}
        for f in filters:
            for reason in f.reasons:
                if reason in seen:
                    raise ValueError(f"reason {reason!r} declared by both {seen[reason]} and {f.name}")
                seen[reason] = f.name
        self.stage = stage
        self.filters = list(filters)
        self.id_field = id_field

    async def run(self, rows: Sequence[Any], context: dict[str, Any]) -> StepResult:
        alive = list(rows)
        counts = {f.name: FilterCount() for f in self.filters}
        decisions: dict[str, str | None] = {}
        flags: dict[str, list[str]] = {}
        rejects: list[RejectRow] = []
        for f in self.filters:
            await f.prepare(alive, context)
            survivors = []
            for row in alive:
                result = f.check(row, context)
                if inspect.isawaitable(result):
                    result = await result
                row_id = str(getattr(row, self.id_field))
                count = counts[f.name]
                if result.kept:
                    count.kept += 1
                    for flag in result.flags:
                        count.flagged[flag] = count.flagged.get(flag, 0) + 1
                        flags.setdefault(row_id, []).append(flag)
                    survivors.append(result.row if result.row is not None else row)
                else:
                    count.dropped[result.reason] = count.dropped.get(result.reason, 0) + 1
                    decisions[row_id] = result.reason
                    detail = f"{f.name}: {result.detail}"
                    rejects.append(RejectRow(stage=self.stage, id=row_id, reason=result.reason, detail=detail))
            alive = survivors
        for row in alive:
            decisions[str(getattr(row, self.id_field))] = None
        return StepResult(kept=alive, rejects=rejects, counts=counts, decisions=decisions, flags=flags)
