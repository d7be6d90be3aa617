"""Answering a round's deferred requests: the OpenAI Batch API (``mode = "batch"``) or files for
``vllm run-batch`` (``mode = "offline"``). See docs/batch.md.

Batch mode, per round (``BatchRounds.answer``):

1. the round's requests (``Collector.take``) are checked against ``--max-usd`` at batch prices; nothing is
   submitted if they could take the spend past it;
2. they are cut into input files (``batch_files.split_files``: one endpoint and model per file, at most
   ``batch_max_requests`` lines and ``batch_max_bytes``), each saved under ``<work>/batch/inputs/`` with the
   facts to file its replies, and journaled (``<work>/batch/journal.json``, atomic) before anything is sent;
3. each file is uploaded (``/v1/files``, purpose ``batch``), the file id journaled, the batch created
   (``/v1/batches``, with the journal entry's id in its ``metadata``) and its id journaled **before anything is
   waited on**;
4. the batches are polled every ``batch_poll_s`` with a progress line (requests done / failed, elapsed, the
   provider's status), while at most ``batch_max_enqueued_tokens`` of a model's prompt tokens are in progress
   at once, and a batch the provider refuses for its enqueued-token limit waits and is created again
   (:meth:`BatchRounds._run`); the output and error files are downloaded (streamed to disk, bounded in size and
   time: they are not trusted) and every reply goes through the client's envelope check into the cache
   (``LLMClient.accept_reply``), priced as ``batch``;
5. a request that failed (an error line, ``batch_expired``, missing from the output) is asked again in the
   next round, at most ``DEFAULT_MAX_ATTEMPTS`` times; then its call fails with the reason and becomes the
   stage's reject. A batch that fails as a whole stops the build with one line (nothing of it is cached);
   the other batches of the round are imported first.

A build killed at any point resumes from the journal (``BatchRounds.resume``, before the stages run): a batch
with an id is polled, never created again; an entry killed between "create" and journaling the id is looked
up by its metadata among the endpoint's batches and adopted; an entry that never reached the provider is
dropped (its requests are not cached, so this run's stages collect them again). So a request is never paid
for twice.

Offline mode: the round's requests are written to ``<work>/batch/pending.jsonl`` and the build stops with
:class:`RepliesPending` (exit 3); ``wikipersona batch export`` / ``import`` (``llm/batch_offline.py``) do the rest.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai

from wikipersona_data.errors import BudgetExceeded, ConfigError, LLMError, WikipersonaError
from wikipersona_data.fileio import write_atomic
from wikipersona_data.llm import batch_files
from wikipersona_data.llm.deferral import PendingCall

Echo = Callable[[str], None]

FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
PROGRESS_EVERY_S = 60.0  # an unchanged batch's progress line is repeated this often
MAX_RESULT_BYTES = 4 * 1024**3
"""Largest output or error file downloaded (streamed to disk): far above 50,000 honest replies."""
DOWNLOAD_TIMEOUT_S = 1800.0
"""Deadline of one file download."""
REQUEST_TIMEOUT_S = 120.0
"""Deadline of one management request (upload, create, retrieve, list)."""
ADOPT_PAGES = 10
"""Pages of ``GET /v1/batches`` searched for a batch created just before a kill."""


QUEUE_FULL = "token_limit_exceeded"
"""The code of a batch the provider refused because its queue for the model is full (OpenAI: "Enqueued token
limit reached for <model> ..."); nothing of it runs or is paid."""
MAX_QUEUE_REFUSALS = 5
"""Refusals in a row, with nothing of the build in that queue, after which the batch fails with one line."""


def _queue(entry: Entry) -> tuple[str, str]:
    """What a provider's enqueued-token limit is per: the endpoint (an organisation's key) and the model."""
    return entry.endpoint, entry.model


def _refused_for_queue(batch: Any) -> bool:
    if batch.status != "failed":
        return False
    data = getattr(getattr(batch, "errors", None), "data", None) or []
    return any(getattr(e, "code", None) == QUEUE_FULL for e in data)


class _Progress:
    """Progress lines of running batches: a line when a batch's state changes, else once every
    ``PROGRESS_EVERY_S``, so a day-long batch polled every few seconds does not print a line per poll."""

    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self.started = time.monotonic()
        self.shown: dict[str, tuple[str, float]] = {}  # entry -> (its last state line, when shown)

    def show(self, entry: Entry, state: str) -> None:
        now = time.monotonic()
        last_state, last_time = self.shown.get(entry.id, ("", -math.inf))
        if state != last_state or now - last_time >= PROGRESS_EVERY_S:
            self.shown[entry.id] = (state, now)
            minutes, seconds = divmod(int(now - self.started), 60)
            self.echo(f"{state}, {minutes}:{seconds:02d} elapsed")


class RepliesPending(WikipersonaError):
    """The build stopped because requests wait for offline replies (``wikipersona batch import``)."""

    exit_code = 3


@dataclass
class Entry:
    """One batch of the journal: its input file, and how far it got."""

    id: str
    endpoint: str
    model: str
    url: str
    requests: int
    created: float
    input_file_id: str | None = None
    batch_id: str | None = None
    tokens: int = 0
    """Prompt tokens of its requests (the client's estimate), for the endpoint's enqueued-token limit."""
    refused: int = 0
    """Times in a row the provider refused it for its enqueued-token limit (nothing paid)."""
    state: str = "prepared"
    """prepared -> creating -> submitted -> imported | failed; prepared -> dropped (a killed run's file that
    never reached the provider, see :meth:`BatchRounds.resume`)"""
    status: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Journal:
    """``<work>/batch/journal.json``: every batch this work dir submitted, rewritten atomically on each change."""

    path: Path
    entries: dict[str, Entry] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Journal:
        if not path.is_file():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = {e["id"]: Entry.from_json(e) for e in data["batches"]}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"{path}: not a batch journal ({err}); it lists batches already paid for") from None
        return cls(path, entries)

    def save(self) -> None:
        data = {"batches": [vars(e) for e in self.entries.values()]}
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")

    def open_entries(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.state not in ("imported", "failed", "dropped")]


class BatchRounds:
    """The build's batch side. ``modes``/``specs`` come from the recipe's endpoints; ``client`` is the build's
    :class:`~wikipersona_data.llm.client.LLMClient` (its collector, cache, ledger and endpoint configs)."""

    def __init__(self, work: Path, client: Any, specs: dict[str, Any], echo: Echo | None = None) -> None:
        self.dir = work / "batch"
        self.client = client
        self.specs = specs
        self.echo: Echo = echo or (lambda line: print(line, file=sys.stderr))
        self.rounds = 0
        self._sdk: dict[str, openai.AsyncOpenAI] = {}

    # ------------------------------------------------------------------ the round
    async def resume(self) -> None:
        """Finish the batches an earlier (killed) run journaled: poll the same batches, import their replies.

        An entry that never reached a batch (``prepared``: killed before or during the upload; an uploaded
        file alone costs nothing) is dropped, not submitted: its requests are not cached, so the stages collect
        them again in this run's first round, under today's recipe and ``--max-usd``, instead of a file written
        for the earlier run's. A paid batch whose endpoint the recipe no longer has is one line: its replies
        cannot be filed without the endpoint's identity and key."""
        journal = Journal.load(self.dir / "journal.json")
        unsent = [e for e in journal.open_entries() if e.state == "prepared"]
        for entry in unsent:
            entry.state = "dropped"
        if unsent:
            journal.save()
            self.echo(
                f"batch: {len(unsent)} journaled batch file(s) of an earlier run never reached the provider; "
                "dropped (their requests are collected again)"
            )
        entries = journal.open_entries()
        for entry in entries:
            if entry.endpoint not in self.specs or entry.endpoint not in self.client.endpoints:
                raise ConfigError(
                    f"{journal.path}: batch {entry.batch_id or entry.id} ({entry.requests} requests, model "
                    f"{entry.model}) was submitted to endpoint {entry.endpoint!r}, which the recipe no longer has; "
                    "put the endpoint back to import what was paid for, or build in a new work dir"
                )
        if entries:
            self.echo(f"batch: resuming {len(entries)} journaled batch(es) of an earlier run")
            await self._run(journal, entries)

    async def answer(self) -> None:
        """Answer this round's deferred requests (or write them for offline use and stop)."""
        calls = self.client.collector.take()
        if not calls:
            raise LLMError("a stage waited for batch replies but no request was collected (a bug; please report)")
        self.rounds += 1
        offline = [c for c in calls if self._mode(c) == "offline"]
        online_batch = [c for c in calls if self._mode(c) == "batch"]
        if online_batch:
            self._check_budget(online_batch)
            journal = Journal.load(self.dir / "journal.json")
            entries = self._prepare(journal, online_batch)
            await self._run(journal, entries)
        if offline:
            path = self.dir / "pending.jsonl"
            batch_files.write_pending(path, offline)
            stages = ", ".join(sorted({c.stage for c in offline}))
            work = self.dir.parent
            raise RepliesPending(
                f"{len(offline)} requests (stage {stages}) wait for offline replies, listed in {path}: run "
                f"`wikipersona batch export {work} --shards N`, answer the files with `vllm run-batch`, then "
                f"`wikipersona batch import {work} RESULTS.jsonl...` and run this build again (docs/batch.md)"
            )

    def finished(self) -> None:
        """Every stage ran to its end: no request waits for offline replies any more."""
        (self.dir / "pending.jsonl").unlink(missing_ok=True)

    def _mode(self, call: PendingCall) -> str:
        spec = self.specs.get(call.endpoint)
        return getattr(spec, "mode", "online") if spec is not None else "online"

    def _check_budget(self, calls: list[PendingCall]) -> None:
        """``--max-usd`` before anything is submitted: the round's upper-bound cost at batch prices."""
        cap = self.client.max_usd
        if cap is None:
            return
        estimate = 0.0
        for call in calls:
            price = self.client.ledger.prices.get(call.model)
            if price is None:
                raise ConfigError(f"max_usd is set but the price table has no price for model {call.model!r}")
            estimate += price.cost(call.prompt_tokens, call.max_out, mode="batch")
        spent = self.client.ledger.spent_usd
        if spent + estimate > cap:
            stages = ", ".join(sorted({c.stage for c in calls}))
            raise BudgetExceeded(
                f"spending cap ${cap:.4f}: ${spent:.6f} spent, and the next batch round ({len(calls)} requests of "
                f"stage {stages}) could cost up to ${estimate:.6f} at batch prices; nothing submitted (completed "
                "calls are cached; raise --max-usd to continue)"
            )

    def _prepare(self, journal: Journal, calls: list[PendingCall]) -> list[Entry]:
        """Input files and their facts on disk, and journal entries, before anything is sent."""
        inputs = self.dir / "inputs"
        inputs.mkdir(parents=True, exist_ok=True)
        entries = []
        by_endpoint: dict[str, list[PendingCall]] = {}
        for call in calls:
            by_endpoint.setdefault(call.endpoint, []).append(call)
        for endpoint, group in sorted(by_endpoint.items()):
            spec = self.specs[endpoint]
            files = batch_files.split_files(
                group, spec.batch_max_requests, spec.batch_max_bytes, spec.batch_max_enqueued_tokens
            )
            for file in files:
                entry_id = f"{len(journal.entries) + 1:05d}-{os.getpid()}-{int(time.time())}"
                write_atomic(inputs / f"{entry_id}.jsonl", file.content())
                batch_files.write_pending(inputs / f"{entry_id}.calls.jsonl", file.calls)
                entry = Entry(
                    entry_id, endpoint, file.model, file.url, len(file.calls), time.time(), tokens=file.tokens
                )
                journal.entries[entry_id] = entry
                entries.append(entry)
        journal.save()
        return entries

    async def _run(self, journal: Journal, entries: list[Entry]) -> None:
        """Submit, poll and import every entry; a batch failed as a whole is reported after the others were
        imported.

        One scheduling loop, because a provider queues a limited number of tokens per model (OpenAI's
        "enqueued token limit" of a usage tier, which the v1 judge's 68M prompt tokens pass many times): an
        entry is submitted only while it fits the endpoint's ``batch_max_enqueued_tokens`` next to the same
        queue's batches in progress, and a batch the provider refuses for its queue (``token_limit_exceeded``,
        nothing paid) waits until one of them finishes, or a poll interval when none runs, and is created again
        on the same uploaded file. Refused ``MAX_QUEUE_REFUSALS`` times in a row with nothing of its queue in
        progress, it fails with one line."""
        queued = [e for e in entries if e.state in ("prepared", "creating")]
        running = [e for e in entries if e.state == "submitted"]
        held: dict[str, int] = {}  # refused entry -> batches of its queue to finish before it is tried again
        not_before: dict[str, float] = {}  # refused entry, nothing of its queue running -> when to try again
        failures: list[str] = []
        progress = _Progress(self.echo)
        while queued or running:
            now = time.monotonic()
            for entry in list(queued):
                if held.get(entry.id, 0) > 0 or not_before.get(entry.id, now) > now or not self._fits(entry, running):
                    continue
                await self._submit(journal, entry)
                queued.remove(entry)
                running.append(entry)
            if not running:  # every queued entry waits out a refusal
                held.clear()
                await asyncio.sleep(max(0.0, min(not_before.get(e.id, now) for e in queued) - now))
                continue
            for entry, batch in await self._poll(running, progress):
                running.remove(entry)
                for other in queued:
                    if held.get(other.id, 0) > 0 and _queue(other) == _queue(entry):
                        held[other.id] -= 1
                if _refused_for_queue(batch):
                    busy = any(_queue(r) == _queue(entry) for r in running)
                    line = self._requeue(journal, entry, busy)
                    if line:
                        failures.append(line)
                        continue
                    queued.append(entry)
                    held[entry.id] = int(busy)
                    not_before[entry.id] = time.monotonic() + (0.0 if busy else self.specs[entry.endpoint].batch_poll_s)
                    continue
                entry.refused = 0
                entry.status = batch.status
                if batch.status == "failed":
                    entry.state = "failed"
                    journal.save()
                    failures.append(self._failed_line(entry, batch))
                    continue
                await self._import(entry, batch)
                entry.state = "imported"
                journal.save()
            if running:
                await asyncio.sleep(min(self.specs[e.endpoint].batch_poll_s for e in running))
        if failures:
            raise LLMError("; ".join(failures))

    def _fits(self, entry: Entry, running: list[Entry]) -> bool:
        """Whether ``entry`` may be submitted now: its queue (endpoint, model) holds nothing, or its tokens
        and those of the queue's batches in progress are within the endpoint's ``batch_max_enqueued_tokens``."""
        limit = getattr(self.specs.get(entry.endpoint), "batch_max_enqueued_tokens", None)
        same = [r for r in running if _queue(r) == _queue(entry)]
        return limit is None or not same or entry.tokens + sum(r.tokens for r in same) <= limit

    def _requeue(self, journal: Journal, entry: Entry, busy: bool) -> str | None:
        """A batch refused for the provider's enqueued-token limit goes back to the queue (its file stays
        uploaded; a new batch will be created on it). Refusals count only while none of the build's batches of
        that queue runs (``busy``: the queue is ours, and frees when they finish); ``MAX_QUEUE_REFUSALS`` such
        refusals in a row make it fail, and the returned line says why."""
        entry.refused = 0 if busy else entry.refused + 1
        if entry.refused >= MAX_QUEUE_REFUSALS:
            entry.state = "failed"
            journal.save()
            limit = getattr(self.specs.get(entry.endpoint), "batch_max_enqueued_tokens", None)
            return (
                f"batch API of endpoint {entry.endpoint!r} refused a batch of {entry.requests} requests "
                f"(~{entry.tokens} prompt tokens, model {entry.model}) {entry.refused} times in a row for its "
                "enqueued token limit with none of this build's batches in progress: set "
                f"batch_max_enqueued_tokens on the endpoint below your organisation's limit (now "
                f"{limit if limit is not None else 'unset'}); nothing of it was paid, run the build again to continue"
            )
        self.echo(
            f"batch {entry.batch_id}: refused for the enqueued token limit of model {entry.model} (nothing paid); "
            f"created again {'when an earlier batch finishes' if busy else 'after a pause'}"
        )
        entry.batch_id, entry.state = None, "prepared"
        journal.save()
        return None

    async def _poll(self, running: list[Entry], progress: _Progress) -> list[tuple[Entry, Any]]:
        """One look at every running batch (a progress line when its state changes); the finished ones."""
        done = []
        for entry in running:
            sdk, headers = self._sdk_for(entry.endpoint)
            batch = await self._call(
                sdk.batches.retrieve(str(entry.batch_id), extra_headers=headers, timeout=REQUEST_TIMEOUT_S),
                entry,
                "retrieve",
            )
            progress.show(entry, self._progress(entry, batch))
            if batch.status in FINAL:
                done.append((entry, batch))
        return done

    async def _submit(self, journal: Journal, entry: Entry) -> None:
        sdk, headers = self._sdk_for(entry.endpoint)
        if entry.state == "creating":  # killed between create and journaling the id: was it created?
            found = await self._find(sdk, headers, entry)
            if found is not None:
                entry.batch_id, entry.state = found, "submitted"
                journal.save()
                self.echo(f"batch: adopted {found} (created before the last run stopped)")
                return
        if entry.input_file_id is None:
            content = (self.dir / "inputs" / f"{entry.id}.jsonl").read_bytes()
            uploaded = await self._call(
                sdk.files.create(
                    file=(f"wikipersona-{entry.id}.jsonl", content),
                    purpose="batch",
                    extra_headers=headers,
                    timeout=REQUEST_TIMEOUT_S,
                ),
                entry,
                "upload",
            )
            entry.input_file_id = uploaded.id
            journal.save()
        entry.state = "creating"
        journal.save()  # a kill from here on is found again by the metadata, never created twice
        batch = await self._call(
            sdk.with_options(max_retries=0).batches.create(
                input_file_id=entry.input_file_id,
                endpoint=entry.url,  # type: ignore[arg-type]
                completion_window="24h",
                metadata={"wikipersona_entry": entry.id},
                extra_headers=headers,
                timeout=REQUEST_TIMEOUT_S,
            ),
            entry,
            "create",
        )
        entry.batch_id, entry.state, entry.status = batch.id, "submitted", batch.status
        journal.save()
        self.echo(f"batch: submitted {batch.id} ({entry.requests} requests, model {entry.model})")

    async def _find(self, sdk: openai.AsyncOpenAI, headers: dict[str, str], entry: Entry) -> str | None:
        """The batch created for ``entry`` (by its metadata), among the endpoint's newest batches."""
        page = await self._call(sdk.batches.list(limit=100, extra_headers=headers), entry, "list")
        for _ in range(ADOPT_PAGES):
            for batch in page.data:
                if (batch.metadata or {}).get("wikipersona_entry") == entry.id:
                    return str(batch.id)
            if not page.has_next_page():
                return None
            page = await self._call(page.get_next_page(), entry, "list")
        return None

    @staticmethod
    def _progress(entry: Entry, batch: Any) -> str:
        """The batch's state as a progress line (:class:`_Progress` adds the elapsed time and decides when)."""
        counts = batch.request_counts
        done = counts.completed if counts is not None else 0
        failed = counts.failed if counts is not None else 0
        total = counts.total if counts is not None and counts.total else entry.requests
        return f"batch {entry.batch_id} (model {entry.model}): {batch.status}, {done}/{total} done, {failed} failed"

    def _failed_line(self, entry: Entry, batch: Any) -> str:
        errors = getattr(batch, "errors", None)
        data = getattr(errors, "data", None) or []
        why = "; ".join(f"{e.code or 'error'}: {e.message or ''}".strip() for e in data[:3]) or "no reason given"
        return (
            f"batch {entry.batch_id} of endpoint {entry.endpoint!r} ({entry.requests} requests, model {entry.model}) "
            f"failed as a whole: {self.client._scrub(why, self.client.endpoints[entry.endpoint])}; nothing of it was "
            "cached, run the build again to submit its requests anew"
        )

    async def _import(self, entry: Entry, batch: Any) -> None:
        """Download the output and error files, file each reply through the client's checks; failed and
        missing requests count an attempt each (asked again next round, within their attempts)."""
        calls = batch_files.read_pending(self.dir / "inputs" / f"{entry.id}.calls.jsonl")
        answered: set[str] = set()
        failed: dict[str, str] = {}
        unknown = 0
        for kind in ("output", "error"):
            file_id = getattr(batch, f"{kind}_file_id", None)
            if not file_id:
                continue
            path = await self._download(entry, str(file_id), kind)
            for number, raw in batch_files.read_lines(path):
                where = f"{kind} file of batch {entry.batch_id} line {number}"
                try:
                    result = batch_files.parse_result(raw, where)
                except WikipersonaError as err:
                    self.echo(f"batch: {err} (line skipped)")
                    continue
                call = calls.get(result.custom_id)
                if call is None:
                    unknown += 1
                    continue
                if result.custom_id in answered:
                    continue
                reason = result.failure
                if reason is None:
                    assert result.body is not None
                    reason = self.client.accept_reply(call, result.body, mode="batch", request_id=result.request_id)
                if reason is None:
                    answered.add(result.custom_id)
                    failed.pop(result.custom_id, None)
                else:
                    failed.setdefault(result.custom_id, reason)
        for key in calls:
            if key not in answered and key not in failed:
                failed[key] = f"missing from the output of batch {entry.batch_id} ({entry.status})"
        for key, reason in sorted(failed.items()):
            self.client.collector.failed(key, reason)
        notes = [f"{len(answered)} replies cached"]
        if failed:
            notes.append(
                f"{len(failed)} failed (asked again next round, at most {self.client.collector.max_attempts} times)"
            )
        if unknown:
            notes.append(f"{unknown} lines for requests not in this batch ignored")
        self.echo(f"batch {entry.batch_id}: {', '.join(notes)}")

    async def _download(self, entry: Entry, file_id: str, kind: str) -> Path:
        """Stream one result file to ``<work>/batch/results/``, at most ``MAX_RESULT_BYTES`` within
        ``DOWNLOAD_TIMEOUT_S``; renamed into place only when whole."""
        sdk, headers = self._sdk_for(entry.endpoint)
        folder = self.dir / "results"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{entry.batch_id}.{kind}.jsonl"
        part = path.with_name(path.name + ".part")
        size = 0
        try:
            async with asyncio.timeout(DOWNLOAD_TIMEOUT_S):
                async with sdk.with_streaming_response.files.content(file_id, extra_headers=headers) as response:
                    with part.open("wb") as out:
                        async for chunk in response.iter_bytes():
                            size += len(chunk)
                            if size > MAX_RESULT_BYTES:
                                raise LLMError(
                                    f"{kind} file {file_id} of batch {entry.batch_id} is larger than "
                                    f"{MAX_RESULT_BYTES} bytes: not read"
                                )
                            out.write(chunk)
        except TimeoutError:
            part.unlink(missing_ok=True)
            raise LLMError(
                f"{kind} file {file_id} of batch {entry.batch_id} not downloaded within {DOWNLOAD_TIMEOUT_S:g} s; "
                "run the build again to resume"
            ) from None
        except openai.APIError as err:
            part.unlink(missing_ok=True)
            raise self._api_error(err, entry, f"download of {kind} file") from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        part.replace(path)
        return path

    # ------------------------------------------------------------------ plumbing
    async def _call(self, request: Any, entry: Entry, what: str) -> Any:
        try:
            return await request
        except openai.APIError as err:
            raise self._api_error(err, entry, what) from None

    def _api_error(self, err: openai.APIError, entry: Entry, what: str) -> LLMError:
        from wikipersona_data.llm.preflight import safe_url

        ep = self.client.endpoints[entry.endpoint]
        status = getattr(err, "status_code", None)
        detail = self.client._scrub(str(getattr(err, "message", err)), ep)
        where = f"batch API of endpoint {entry.endpoint!r} ({safe_url(ep.base_url)})"
        state = f"journal entry {entry.id}" + (f", batch {entry.batch_id}" if entry.batch_id else "")
        return LLMError(
            f"{where}: {what} failed ({f'HTTP {status}' if status else 'no reply'}: {detail}); {state} kept, "
            "run the build again to resume"
        )

    def _sdk_for(self, endpoint: str) -> tuple[openai.AsyncOpenAI, dict[str, str]]:
        """An SDK client for the endpoint's batch API; the key is read from the environment per use and sent
        only as the Authorization header (the SDK object holds a placeholder, as the LLM client's do)."""
        from wikipersona_data.llm.client import PLACEHOLDER_KEY
        from wikipersona_data.llm.profiles import get_profile

        ep = self.client.endpoints[endpoint]
        sdk = self._sdk.get(endpoint)
        if sdk is None:
            sdk = openai.AsyncOpenAI(api_key=PLACEHOLDER_KEY, base_url=ep.base_url, max_retries=3)
            self._sdk[endpoint] = sdk
        key = self.client._api_key(ep, get_profile(ep.profile))
        return sdk, {"Authorization": f"Bearer {key}"}

    async def aclose(self) -> None:
        for sdk in self._sdk.values():
            await sdk.close()
        self._sdk.clear()
