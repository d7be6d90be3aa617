"""Why a build has no data to release, in one line: the stage that lost the rows and its top reasons.

A release with an empty split or config cannot be loaded by ``datasets`` and tells the user nothing
(issue 10: a build against a dead endpoint, or with a judge that always picks (a), printed "release
written ... 0 pairs" and exited 0). The build instead stops before writing anything, with a
``NoDataError`` that names the first stage whose output was empty (or the split that came out empty)
and the most common reasons in that stage's ``rejects.jsonl``, with a typical detail each. Everything
paid for stays in the work dir, so a rerun after a fix resumes.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from wikipersona_data.errors import NoDataError
from wikipersona_data.stages import registry
from wikipersona_data.stages.rows import RejectRow
from wikipersona_data.stages.store import read_jsonl

TOP_REASONS = 3
_BIASED = re.compile(r"(\d+) position-biased")
DETAIL_CHARS = 120


def empty_parts(pairs: dict[str, list[dict[str, Any]]], personas: list[dict[str, Any]]) -> list[str]:
    """Configs/splits the release would have with no rows, e.g. ``["pairs/test"]``."""
    empty = [f"pairs/{split}" for split in ("train", "test") if not pairs.get(split)]
    if not personas:
        empty.append("personas/train")
    return empty


def top_reasons(work_dir: Path, stage: str, limit: int = TOP_REASONS) -> str:
    """'reason xN (typical detail); ...' for the stage's rejects, most common first."""
    rejects = read_jsonl(work_dir / stage / "rejects.jsonl", RejectRow)
    counts = Counter(r.reason for r in rejects)
    if not counts:
        return "no rejects recorded (nothing reached this stage)"
    parts = []
    for reason, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]:
        details = Counter(" ".join(r.detail.split())[:DETAIL_CHARS] for r in rejects if r.reason == reason and r.detail)
        typical = f" (e.g. {details.most_common(1)[0][0]})" if details else ""
        parts.append(f"{reason} x{n}{typical}")
    text = "; ".join(parts)
    low = [r for r in rejects if r.reason == "low_judge_agreement"]
    biased = sum(int(m.group(1)) > 0 for r in low if (m := _BIASED.search(r.detail)))
    if biased:
        text += (
            f"; {biased} pair(s) dropped as position-biased ties: the judge preferred the same slot (a or b)"
            " in both orders, so its votes cancel; use a stronger judge model"
        )
    elif low:
        text += f"; {len(low)} pair(s) dropped because the judge's votes were ties or disagreed between orders"
    return text


def losing_stage(stats: dict[str, Any]) -> str | None:
    """The first stage (in pipeline order) that ended with no rows."""
    for stage in registry.ORDER:
        s = stats.get(stage)
        if s is not None and s.rows == 0:
            return stage
    return None


def check_release_rows(
    work_dir: Path, stats: dict[str, Any], pairs: dict[str, list[dict[str, Any]]], personas: list[dict[str, Any]]
) -> None:
    """Raise ``NoDataError`` (one line) when the release would have an empty split or config."""
    empty = empty_parts(pairs, personas)
    if not empty:
        return
    stage = losing_stage(stats)
    counts = f"{len(pairs.get('train', []))} train / {len(pairs.get('test', []))} test pairs, {len(personas)} personas"
    if stage is None:
        where = f"split: {', '.join(empty)} empty ({counts}); raise the question counts or change the test fractions"
    else:
        where = f"stage {stage} kept no rows; top reasons: {top_reasons(work_dir, stage)}"
    raise NoDataError(
        f"no release written: {', '.join(empty)} would be empty; {where}. "
        f"Everything paid for is in {work_dir} (a rerun resumes)"
    )
