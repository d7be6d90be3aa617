"""How much the divergent questions divide their axis: the one computation the build, extend and the filter
report use (the manifest's ``divergence`` and ``filters.divergence``).

A divergent question judged by >= 2 members of its axis *divides* them when they did not all choose the same
candidate. Rows may be pair or judgment rows (objects) or released rows (dicts): only ``question_type``,
``axis``, ``question_id`` and ``chosen_id`` are read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AxisDivergence:
    questions: int  # divergent questions judged by >= 2 members
    divided: int  # of those, questions whose members did not all choose alike

    @property
    def rate(self) -> float:
        return round(self.divided / self.questions, 6)


def _get(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, Mapping) else getattr(row, name)


def divergence(rows: Iterable[Any]) -> dict[str, AxisDivergence]:
    """Per axis (sorted), over the divergent rows given."""
    chosen: dict[tuple[str, str], set[str]] = defaultdict(set)
    members: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        if _get(r, "question_type") != "divergent":
            continue
        key = (_get(r, "axis") or "", _get(r, "question_id"))
        chosen[key].add(_get(r, "chosen_id"))
        members[key] += 1
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, n in members.items():
        if n >= 2:
            totals[key[0]][0] += 1
            totals[key[0]][1] += len(chosen[key]) > 1
    return {axis: AxisDivergence(q, d) for axis, (q, d) in sorted(totals.items()) if q}


def divergence_rates(rows: Iterable[Any]) -> dict[str, float]:
    """Per axis: the share of judged divergent questions that divided the axis (the manifest's figure)."""
    return {axis: d.rate for axis, d in divergence(rows).items()}
