"""The filter report: kept/dropped per stage, filter and reason, plus length-bias and divergence figures.

Stages call the filters hook several times (questions after every top-up batch, describe and judge
once per regeneration), and a resumed build replays finished units from the journal without calling
it again. So the report is not a sum over calls: every call records each row's *latest* verdict, and the
report aggregates the verdicts per row id. A call appends only what it changed, one line of
``<stage dir>/filters.journal.jsonl`` (flushed, so a killed build keeps the verdicts of its journaled
units); the end of the stage (``BuildContext.finish_stage``) folds the log into ``<stage dir>/filters.json``
(written atomically, once) and removes the journal. Rewriting the whole file after every call was quadratic:
judge calls the hook once per judgment. The log survives a resume, so a resumed build reports what a fresh
one does, and equal inputs give an equal report (sorted keys, no timings).

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

from wikipersona_data.fileio import canonical_json, iter_jsonl, write_atomic
from wikipersona_data.stages.divergence import divergence
from wikipersona_data.verify.base import Filter, StepResult

LOG_NAME = "filters.json"
JOURNAL_NAME = "filters.journal.jsonl"
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
        """The folded log (``filters.json``), then the calls journaled beside it since (a stage not finished)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            log = cls(**{k: data.get(k, v) for k, v in cls().__dict__.items()})
        except (OSError, ValueError):
            log = cls()  # none yet, or a torn write of an earlier run: verdicts are recomputed as rows are refiltered
        journal = path.parent / JOURNAL_NAME
        if journal.is_file():
            for delta in iter_jsonl(journal, skip_invalid=True):  # only a kill's torn last line is invalid
                if isinstance(delta, dict):
                    log.apply(delta)
        return log

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(self.__dict__, sort_keys=True, indent=1, ensure_ascii=False))

    def record(
        self,
        filters: list[Filter],
        rows: list[Any],
        result: StepResult,
        id_field: str,
        *,
        attempts: bool = False,
        extras: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Apply one filter call's verdicts; returns them as the delta :meth:`apply` replays from the journal."""
        seen: dict[str, list[int]] = {}
        for row in rows if attempts else ():
            prov = getattr(row, "provenance", None)
            if prov is not None:
                seen.setdefault(str(getattr(row, id_field)), []).append(prov.sample_idx)
        claims: dict[str, dict[str, int]] = {}
        for f in filters:
            claims.update(getattr(f, "claim_counts", {}))
        delta = {
            "config": self.config,
            "filters": [f.name for f in filters],
            "reasons": {r: f.name for f in filters for r in f.reasons},
            "decisions": dict(result.decisions),
            "flags": {k: sorted(v) for k, v in result.flags.items()},
            "attempts": seen,
            "claims": claims,
            "extras": dict(extras or {}),
        }
        self.apply(delta)
        return delta

    def apply(self, delta: dict[str, Any]) -> None:
        """One call's verdicts on top of the earlier ones: each row's latest verdict wins; a call made under
        other filter settings starts the log afresh (as :func:`stage_log` does in memory)."""
        if delta.get("config", self.config) != self.config:
            self.__init__(config=delta["config"])  # type: ignore[misc]
        self.filters = list(delta.get("filters", self.filters))
        self.reasons = dict(delta.get("reasons", self.reasons))
        decisions = delta.get("decisions", {})
        self.decisions.update(decisions)
        for row_id in decisions:
            self.flags.pop(row_id, None)
        self.flags.update(delta.get("flags", {}))
        for row_id, indices in delta.get("attempts", {}).items():
            self.attempts[row_id] = sorted(set(self.attempts.get(row_id, [])) | set(indices))
        self.claims.update(delta.get("claims", {}))
        self.extras.update(delta.get("extras", {}))


def stage_log(stage_dir: Path, config: str | None = None, logs: dict[str, StageLog] | None = None) -> StageLog:
    """The filter log of a stage folder: from ``logs`` (the build's own, ``BuildContext.filter_logs``) or
    else from its files (``filters.json`` and the journal of calls since), so a resumed build sees every verdict.

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


def journal_call(stage_dir: Path, delta: dict[str, Any]) -> None:
    """Append one filter call's verdicts to the stage's log journal and flush it (cost: the call's rows only)."""
    path = Path(stage_dir) / JOURNAL_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        if handle.tell() > 0:
            handle.seek(-1, 2)
            if handle.read(1) != b"\n":
                handle.write(b"\n")  # seal a killed run's torn line so it cannot swallow this one
        handle.write((canonical_json(delta) + "\n").encode("utf-8"))


def save_log(stage_dir: Path, log: StageLog) -> None:
    """Fold the log into ``filters.json`` (atomically) and drop the journal it now contains."""
    log.save(Path(stage_dir) / LOG_NAME)
    (Path(stage_dir) / JOURNAL_NAME).unlink(missing_ok=True)


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
