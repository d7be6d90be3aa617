"""Per-stage figures of the calls in a work dir's cache: how many parse, how many a server cut short.

Why: issue 10 asks that no stage lose more than 20 % of its calls to ``length`` or invalid JSON on a
real small model. The figures are read back from the call cache (every paid reply is there, with its
request spec), so the real-model test and ``benchmarks/bench_real_llm.py`` measure the same thing the
same way, after the fact, without instrumenting the build.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

STAGE_PREFIXES = ("personas", "describe", "questions", "respond", "judge", "prefixes", "entailment")
"""Schema names start with their stage (``questions_personal``, ``respond_categories``...)."""


@dataclass(frozen=True)
class StageCalls:
    calls: int
    parsed: int
    length: int

    @property
    def lost_share(self) -> float:
        """Share of calls whose reply did not parse for the schema (a ``length`` cut never does)."""
        return 1 - self.parsed / self.calls if self.calls else 0.0


def stage_of(schema_name: str) -> str:
    return next((p for p in STAGE_PREFIXES if schema_name.startswith(p)), schema_name)


def chat_calls_by_stage(work: Path) -> dict[str, StageCalls]:
    """Structured chat calls of ``work``'s cache by stage; each call counted once (its last record: a
    content fault re-stores the record with a mark)."""
    records: dict[str, dict[str, Any]] = {}
    for part in sorted((work / "cache" / "calls").glob("*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                records[rec["key"]] = rec
    counts: dict[str, Counter[str]] = {}
    for rec in records.values():
        spec = rec["spec"]
        if spec.get("api") != "chat" or not spec.get("schema"):
            continue
        c = counts.setdefault(stage_of(spec["schema"]["name"]), Counter())
        c["calls"] += 1
        c["length"] += rec.get("finish_reason") == "length"
        content = rec["response"]["choices"][0]["message"].get("content") or ""
        try:
            jsonschema.validate(json.loads(content), spec["schema"]["json"])
        except (ValueError, jsonschema.ValidationError):
            continue
        c["parsed"] += 1
    return {s: StageCalls(c["calls"], c["parsed"], c["length"]) for s, c in sorted(counts.items())}
