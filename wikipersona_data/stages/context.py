"""What every stage shares during one build: recipe, LLM door, dump reader, upstream rows, progress.

The stages are functions of (context, upstream rows) -> rows; the context carries no hidden state
beyond caches of things that are pure functions of the inputs (parsed biographies), so a resumed
build and a fresh one see the same values.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from tqdm import tqdm

from wikipersona_data.llm.deferral import Deferred
from wikipersona_data.stages.calls import StageLLM
from wikipersona_data.stages.recipe import Recipe
from wikipersona_data.stages.rows import RejectRow
from wikipersona_data.stages.store import StageStore

RowT = TypeVar("RowT", bound=BaseModel)
FilterHook = Callable[[str, list[Any], dict[str, Any]], Any]
Unit = tuple[str, Callable[[], Awaitable[tuple[list[Any], list[RejectRow]]]]]


STAGE_REASONS = frozenset(
    {
        "llm_failure",
        "batch_failed",
        "short",
        "axis_too_small",
        "too_few_candidates",
        "no_train_pairs",
        "incomplete_description",
        "not_in_dump",
        "not_a_person",
        "not_living",
        "below_fame",
        "category_unsupported",
        "regenerated",
        "rejudged",
    }
)
"""Reasons the stages give themselves; any other reject reason is a drop by the filters hook."""

RETRY_LABELS = {"regenerated": "regenerated", "rejudged": "re-judged"}
"""Reject reasons of an earlier attempt that was redone (not a drop) -> the one name shown to people
(build table, card, README): a description regenerated, a judgment re-judged."""


@dataclass
class StageStats:
    """One line of the end-of-build summary table."""

    rows: int = 0
    dropped: int = 0
    rejected: int = 0
    retried: dict[str, int] = field(default_factory=dict)
    """Shown name (RETRY_LABELS) -> rows redone at least once (a row counts once however often)."""
    calls: int = 0
    cache_hits: int = 0
    cost_usd: float | None = 0.0
    seconds: float = 0.0
    drop_reasons: dict[str, int] = field(default_factory=dict)


def ledger_stage_line(client: Any, stage: str) -> dict[str, Any]:
    """Calls / cache hits / cost of one stage from the client's ledger (0 when nothing was called)."""
    summary = client.ledger.summary() if client is not None else {}
    line = {"calls": 0, "cache_hits": 0, "cost_usd": 0.0}
    for row in _ledger_rows(summary):
        if row.get("stage") != stage:
            continue
        line["calls"] += int(row.get("calls") or 0)
        line["cache_hits"] += int(row.get("cache_hits") or 0)
        cost = row.get("cost_usd")
        line["cost_usd"] = None if cost is None or line["cost_usd"] is None else line["cost_usd"] + cost
    return line


def _ledger_rows(summary: Any) -> Iterable[dict[str, Any]]:
    """Rows of the ledger summary, whichever of its documented shapes it has (list, or nested by stage)."""
    if isinstance(summary, dict):
        for key in ("by_stage_model", "rows", "lines"):
            if isinstance(summary.get(key), list):
                return summary[key]
        by_stage = summary.get("by_stage") or summary.get("stages")
        if isinstance(by_stage, dict):
            return [{"stage": s, **v} for s, v in by_stage.items() if isinstance(v, dict)]
    if isinstance(summary, list):
        return summary
    return []


def _call_keys(row: Any) -> list[str]:
    provenance = getattr(row, "provenance", None)
    keys = list(provenance.call_keys) if provenance is not None else []
    return keys + [k for k in getattr(row, "call_keys", None) or [] if k not in keys]


@dataclass
class BuildContext:
    recipe: Recipe
    work_dir: Path
    llm: StageLLM
    client: Any
    reader: Any
    filter_hook: FilterHook
    stats: dict[str, StageStats] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)
    """Upstream rows by name ('personas', 'descriptions', 'questions', ...), for stages and filters."""
    progress: bool = True
    unit_concurrency: int = 32
    filter_logs: dict[str, Any] = field(default_factory=dict)
    """Stage folder -> its filter log (verify/report.py), kept for this build instead of in a module global."""
    rounds: Any = None
    """``llm.batches.BatchRounds`` when an endpoint is in batch or offline mode: answers deferred calls."""
    _regenerate: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def store(self, stage: str, model: type[RowT], id_field: str) -> StageStore[RowT]:
        return StageStore(self.work_dir, stage, model, id_field)

    def filter_context(self, stage: str) -> dict[str, Any]:
        """What a filter may use: the recipe, the stage folder, upstream rows, the LLM door."""
        return {
            "recipe": self.recipe,
            "stage": stage,
            "stage_dir": self.work_dir / stage,
            "work_dir": self.work_dir,
            "llm": self.llm,
            "client": self.client,
            "filter_logs": self.filter_logs,
            **self.shared,
        }

    async def apply_filters(self, stage: str, rows: list[RowT], id_field: str) -> tuple[list[RowT], list[RejectRow]]:
        """Run the filters hook (sync or async) and turn what it dropped into rejects.

        The hook returns the kept rows, or ``(kept_rows, rejects)`` with one reject (RejectRow or dict
        with ``id``, ``reason``, ``detail``) per dropped row. A row dropped without a reason still gets a
        reject ("filtered"), so nothing disappears silently.
        """
        result = self.filter_hook(stage, list(rows), self.filter_context(stage))
        if inspect.isawaitable(result):
            result = await result
        given: list[Any] = []
        if isinstance(result, tuple) and len(result) == 2:
            result, given = result
        kept = list(result)
        rejects = [r if isinstance(r, RejectRow) else RejectRow.model_validate({"stage": stage, **r}) for r in given]
        explained = {r.id for r in rejects}
        kept_ids = {getattr(r, id_field) for r in kept}
        for row in rows:
            row_id = getattr(row, id_field)
            if row_id not in kept_ids and row_id not in explained:
                rejects.append(RejectRow(stage=stage, id=row_id, reason="filtered", detail="dropped by a filter"))
        # a dropped row's calls were paid: its reject cites them, so the data ledger (stages/usage.py) counts them
        paid = {getattr(r, id_field): _call_keys(r) for r in rows}
        rejects = [
            r if r.call_keys or not paid.get(r.id) else r.model_copy(update={"call_keys": paid[r.id]}) for r in rejects
        ]
        return kept, rejects

    async def until_kept(
        self,
        stage: str,
        id_field: str,
        produce: Callable[[int], Awaitable[tuple[list[RowT], list[RejectRow]]]],
        *,
        attempts: int,
        label: str,
    ) -> tuple[list[RowT], list[RejectRow]]:
        """``produce(sample_idx)`` then the filters, asked again with the next ``sample_idx`` while the
        filters drop the result only for reasons their filters mark ``regenerate_on``, at most ``attempts``
        times in all.

        Earlier attempts stay as rejects named ``label`` ('regenerated', 'rejudged') with the filter's
        reason in the detail, so every paid attempt is accounted for.
        """
        retryable = self.regenerate_reasons(stage)
        earlier: list[RejectRow] = []
        for sample_idx in range(attempts):
            rows, rejects = await produce(sample_idx)
            if not rows:
                return [], earlier + rejects
            kept, dropped = await self.apply_filters(stage, rows, id_field)
            if kept:
                return kept, earlier
            if sample_idx + 1 == attempts or not all(r.reason in retryable for r in dropped):
                return [], earlier + dropped
            for r in dropped:
                update = {"id": f"{r.id}#s{sample_idx}", "reason": label, "detail": f"{r.reason}: {r.detail}"}
                earlier.append(r.model_copy(update=update))
        return [], earlier

    def regenerate_reasons(self, stage: str) -> frozenset[str]:
        """Drop reasons of the stage's filters that ask for a new sample (``Filter.regenerate_on``)."""
        from wikipersona_data.stages import registry  # the registry imports the stage modules, which import this
        from wikipersona_data.verify.config import filters_config
        from wikipersona_data.verify.pipeline import recipe_listing

        if stage not in self._regenerate:
            listing = recipe_listing(self.recipe, stage)
            self._regenerate[stage] = registry.get(stage).regenerate_on(filters_config(self.recipe), listing)
        return self._regenerate[stage]

    async def run_units(
        self, stage: str, store: StageStore[Any], units: list[Unit]
    ) -> tuple[list[Any], list[RejectRow]]:
        """Run the units missing from the journal (bounded concurrency), journaling each as it ends.

        Returns all rows and rejects, from earlier runs and this one. A unit's coroutine returns
        (rows, rejects); raising is a bug or a user error and stops the build (the journal keeps
        what finished). A unit that stopped on a call waiting for a batch (:class:`Deferred`) is not
        journaled and the other units go on (so the round collects every request it can); then the stage
        raises :class:`Deferred`, to be run again once the batch is answered.
        """
        done = store.load_units()
        rows: list[Any] = []
        rejects: list[RejectRow] = []
        todo: list[Unit] = []
        for key, make in units:
            if key in done:
                rows += done[key][0]
                rejects += done[key][1]
            else:
                todo.append((key, make))
        bar = tqdm(
            total=len(units),
            initial=len(units) - len(todo),
            desc=f"{stage:>9}",
            unit="unit",
            disable=not self.progress,
            leave=True,
            dynamic_ncols=True,
        )
        last_postfix = 0.0
        pending = iter(todo)
        deferred = 0

        async def worker() -> None:
            """Take the next unit until none is left: at most ``unit_concurrency`` units exist at once."""
            nonlocal last_postfix, deferred
            for key, make in pending:  # next() runs between awaits, so workers never take the same unit
                try:
                    unit_rows, unit_rejects = await make()
                except Deferred:
                    deferred += 1  # waits for a batch reply: neither done nor failed
                    continue
                store.record_unit(key, unit_rows, unit_rejects)
                rows.extend(unit_rows)
                rejects.extend(unit_rejects)
                bar.update(1)
                now = time.monotonic()
                if now - last_postfix > 0.5:
                    last_postfix = now
                    bar.set_postfix(self.postfix(stage), refresh=False)

        workers = [asyncio.ensure_future(worker()) for _ in range(min(self.unit_concurrency, len(todo)))]
        try:
            if workers:
                await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            raise
        finally:
            bar.set_postfix(self.postfix(stage), refresh=False)
            bar.close()
            store.close()
        if deferred:
            raise Deferred(what=f"{deferred} unit(s) of stage {stage}")
        return rows, rejects

    def save_filter_log(self, stage: str) -> None:
        """Fold the stage's filter log into its ``filters.json`` once, at the end of the stage (verify/report.py)."""
        from wikipersona_data.verify.report import save_log

        stage_dir = self.work_dir / stage
        log = self.filter_logs.get(str(stage_dir.resolve()))
        if log is not None:
            save_log(stage_dir, log)

    def postfix(self, stage: str) -> dict[str, str]:
        line = ledger_stage_line(self.client, stage)
        cost = line["cost_usd"]
        return {
            "calls": str(line["calls"]),
            "hits": str(line["cache_hits"]),
            "cost": "n/a" if cost is None else f"${cost:.4f}",
        }

    def finish_stage(self, stage: str, rows: int, rejects: list[RejectRow], started: float) -> None:
        self.save_filter_log(stage)
        stats = self.stats.setdefault(stage, StageStats())
        stats.rows = rows
        retries = [r for r in rejects if r.reason in RETRY_LABELS]
        stats.retried = {
            RETRY_LABELS[label]: len({r.id.split("#s")[0] for r in retries if r.reason == label})
            for label in sorted({r.reason for r in retries})
        }
        stats.rejected = sum(r.reason in STAGE_REASONS and r.reason not in RETRY_LABELS for r in rejects)
        stats.dropped = len(rejects) - stats.rejected - len(retries)
        for r in rejects:
            stats.drop_reasons[r.reason] = stats.drop_reasons.get(r.reason, 0) + 1
        line = ledger_stage_line(self.client, stage)
        stats.calls, stats.cache_hits, stats.cost_usd = line["calls"], line["cache_hits"], line["cost_usd"]
        stats.seconds = time.monotonic() - started
