"""The filter report: kept/dropped per stage, filter and reason, plus length-bias and divergence figures.

Stages call the filters hook several times (questions after every top-up batch, describe and judge
once per regeneration), and a resumed build replays finished units from the journal without calling
it again. So the report is not a sum over calls: every call records each row's *latest* verdict in
``<stage dir>/filters.json`` (written atomically), and the report aggregates the verdicts per row id.
That file survives a resume, so a resumed build reports what a fresh one does, and equal inputs give
an equal report (sorted keys, no timings).

For each filter, in order: ``dropped`` counts the rows it dropped by reason, ``kept`` the rows that
reached it and passed. The describe stage adds ``grounding_claims``: the claims of every description
attempt (regenerations too), kept = supported, dropped = unsupported (removed from the text) by
reason. A ``stage`` entry carries the stage's own rejects (LLM failures, too few questions...), which
are not filter verdicts.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wikipersona_data.fileio import write_atomic
from wikipersona_data.stages.divergence import divergence
from wikipersona_data.verify.base import Filter, StepResult

LOG_NAME = "filters.json"
_NOT_DROPS = ("filtered", "regenerated", "rejudged")


@dataclass
class StageLog:
    """Latest verdict per row id of one stage, and what the report needs besides."""

    filters: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    """Reason -> filter name."""
    decisions: dict[str, str | None] = field(default_factory=dict)
    flags: dict[str, list[str]] = field(default_factory=dict)
    attempts: dict[str, list[int]] = field(default_factory=dict)
    """Row id -> sample indices seen (describe regenerations, judge re-judgments)."""
    claims: dict[str, dict[str, int]] = field(default_factory=dict)
    """'<persona_id>#s<sample_idx>' -> {'supported' | unsupported reason: claims}, every describe attempt."""
    config: str = ""
    """sha256 of the filter settings the verdicts were made with; other settings start a fresh log."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Stage-specific figures, e.g. the length bias of the pairs before the split filters."""

    @classmethod
    def load(cls, path: Path) -> StageLog:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError):
            return cls()  # a torn write of an earlier run: verdicts are recomputed as rows are filtered again
        return cls(**{k: data.get(k, v) for k, v in cls().__dict__.items()})

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(self.__dict__, sort_keys=True, indent=1, ensure_ascii=False))

    def record(
        self, filters: list[Filter], rows: list[Any], result: StepResult, id_field: str, *, attempts: bool = False
    ) -> None:
        self.filters = [f.name for f in filters]
        self.reasons = {r: f.name for f in filters for r in f.reasons}
        self.decisions.update(result.decisions)
        for row_id in result.decisions:
            self.flags.pop(row_id, None)
        self.flags.update({k: sorted(v) for k, v in result.flags.items()})
        for row in rows if attempts else ():
            prov = getattr(row, "provenance", None)
            row_id = str(getattr(row, id_field))
            if prov is not None:
                seen = set(self.attempts.get(row_id, [])) | {prov.sample_idx}
                self.attempts[row_id] = sorted(seen)
        for f in filters:
            self.claims.update(getattr(f, "claim_counts", {}))


def stage_log(stage_dir: Path, config: str | None = None, logs: dict[str, StageLog] | None = None) -> StageLog:
    """The filter log of a stage folder: from ``logs`` (the build's own, ``BuildContext.filter_logs``) or
    else from its file, which ``save_log`` rewrites after every filter pass, so the file is always current.

    With ``config`` (the settings' hash), a log made under other settings is discarded: its verdicts
    would otherwise linger for rows the new settings never see again.
    """
    key = str(Path(stage_dir).resolve())
    log = logs.get(key) if logs is not None else None
    if log is None:
        log = StageLog.load(Path(stage_dir) / LOG_NAME)
    if config is not None and log.config != config:
        log = StageLog(config=config)
    if logs is not None:
        logs[key] = log
    return log


def save_log(stage_dir: Path, log: StageLog) -> None:
    log.save(Path(stage_dir) / LOG_NAME)


def filter_counts(log: StageLog) -> dict[str, dict[str, Any]]:
    """{filter: {'kept': n, 'dropped': {reason: n}}} from the latest verdict of every row."""
    dropped_by: dict[str, dict[str, int]] = {name: {} for name in log.filters}
    for reason in log.decisions.values():
        if reason is None:
            continue
        name = log.reasons.get(reason, "unknown")
        bucket = dropped_by.setdefault(name, {})
        bucket[reason] = bucket.get(reason, 0) + 1
    reached = len(log.decisions)
    out: dict[str, dict[str, Any]] = {}
    for name in log.filters:
        dropped = sum(dropped_by[name].values())
        out[name] = {"kept": reached - dropped, "dropped": dict(sorted(dropped_by[name].items()))}
        reached -= dropped
    if "unknown" in dropped_by:
        out["unknown"] = {"kept": 0, "dropped": dict(sorted(dropped_by["unknown"].items()))}
    if log.claims:
        totals: dict[str, int] = {}
        for counts in log.claims.values():
            for reason, n in counts.items():
                totals[reason] = totals.get(reason, 0) + n
        supported = totals.pop("supported", 0)
        out["grounding_claims"] = {"kept": supported, "dropped": dict(sorted(totals.items()))}
    return out


def stage_report(work_dir: Path, stats: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per stage (in build order): per-filter counts, plus the stage's own non-filter rejects."""
    report: dict[str, dict[str, dict[str, Any]]] = {}
    for stage, s in stats.items():
        log = stage_log(Path(work_dir) / stage)
        entry = filter_counts(log)
        # an earlier attempt that was redone (regenerated, re-judged) is no drop: build_extras reports it
        own = {r: n for r, n in s.drop_reasons.items() if r not in log.reasons and r not in _NOT_DROPS}
        entry["stage"] = {"kept": s.rows, "dropped": dict(sorted(own.items()))}
        report[stage] = entry
    return report


def length_bias(pairs: list[Any]) -> dict[str, float | int]:
    """How answer length relates to being chosen (characters).

    ``point_biserial``: correlation between an answer's length and being the chosen one, over all
    chosen and rejected answers (0 = length says nothing; > 0 = longer answers win).
    """
    if not pairs:
        return {"pairs": 0}
    chosen = [len(p.chosen) for p in pairs]
    rejected = [len(p.rejected) for p in pairs]
    lengths = chosen + rejected
    sd = statistics.pstdev(lengths)
    m1, m0 = statistics.fmean(chosen), statistics.fmean(rejected)
    r = (m1 - m0) / sd * 0.5 if sd else 0.0  # sqrt(p*q) = 0.5: exactly half of the answers are chosen
    longer = sum(c > r_ for c, r_ in zip(chosen, rejected, strict=True))
    return {
        "pairs": len(pairs),
        "chosen_longer_share": round(longer / len(pairs), 6),
        "mean_chars_chosen": round(m1, 3),
        "mean_chars_rejected": round(m0, 3),
        "point_biserial": round(r, 6),
    }


def divergence_stats(pairs: list[Any]) -> dict[str, dict[str, float | int]]:
    """Per axis: divergent questions judged by >= 2 members, how many did not divide them, and the rate."""
    return {
        axis: {"questions": d.questions, "non_divergent": d.questions - d.divided, "divergence_rate": d.rate}
        for axis, d in divergence(pairs).items()
    }


def build_extras(work_dir: Path, stats: dict[str, Any], pairs: list[Any]) -> dict[str, Any]:
    """What the manifest records besides the counts: flags, regenerations, length bias, divergence."""
    flags: dict[str, dict[str, int]] = {}
    retried: dict[str, int] = {}
    for stage in stats:
        log = stage_log(Path(work_dir) / stage)
        for row_flags in log.flags.values():
            for flag in row_flags:
                flags.setdefault(stage, {})[flag] = flags.setdefault(stage, {}).get(flag, 0) + 1
        n = sum(len(v) > 1 or (v and v[0] > 0) for v in log.attempts.values()) if stage in ("describe", "judge") else 0
        if n:
            retried[stage] = int(n)
    split_log = stage_log(Path(work_dir) / "split")
    return {
        "flags": {k: dict(sorted(v.items())) for k, v in sorted(flags.items())},
        "retried_rows": dict(sorted(retried.items())),
        "length_bias": length_bias(pairs),
        "length_bias_before_filters": split_log.extras.get("length_bias_before", {}),
        "divergence": divergence_stats(pairs),
    }
