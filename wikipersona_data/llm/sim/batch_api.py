"""The simulator's batch API: ``/v1/files`` and ``/v1/batches`` as the OpenAI Batch API speaks them.

Upload a JSONL file (multipart, ``purpose=batch``), create a batch on it, retrieve it until it is done, download
its output and error files; cancel and list as well. A batch is answered by the same code as the online routes
(the same reply bytes for the same request body: the planner's content faults, the stage responders), after
``batch_delay_s``. Faults, drawn per (seed, custom_id, how often that custom_id was submitted before) so a
resubmitted request has a new draw and every run draws the same:

* ``batch_fail_rate``: a request's line in the error file is an HTTP 500 (``response.status_code`` 500);
* ``batch_expire_rate``: a request is left unanswered as ``batch_expired`` and the batch ends ``expired``;
* ``batch_fail``: every batch fails as a whole (status ``failed``, an ``errors`` list, no output file);
* ``batch_enqueued_token_limit``: a batch whose prompt tokens (:func:`line_tokens`), with those of the same
  model's batches in progress, pass the limit fails at once with ``token_limit_exceeded``, as OpenAI's
  "Enqueued token limit reached for <model>" does; nothing of it runs or counts as submitted.

The input is validated as OpenAI does: JSON lines with a unique ``custom_id``, ``method`` POST, the batch's
``url``, one model per file; a file that breaks a rule makes the batch ``failed`` with the line named.
``creates`` and ``submissions`` (custom_id -> batches it was submitted in) let tests check that a resumed build
never submits a request twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from wikipersona_data.llm.sim.chat import completion_body, generate_choice, parse_chat
from wikipersona_data.llm.sim.config import FAULT_KINDS
from wikipersona_data.llm.sim.embeddings import embeddings_body
from wikipersona_data.llm.sim.faults import EMBEDDING_FAULTS
from wikipersona_data.llm.sim.protocol import RequestError, request_hash
from wikipersona_data.llm.sim.textgen import count_tokens

MAX_FILE_BYTES = 200 * 1024 * 1024
"""Largest upload (the OpenAI limit per batch input file)."""
MAX_REQUESTS = 50_000
ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
WINDOWS = ("24h",)
_HTTP_FAULTS = {"401": 401, "429": 429, "500": 500, "503": 503, "drop": 500, "slow": 500}
"""Online faults that have no reply to give: in a batch they become an error line with this status."""
_FINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass
class SimBatch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    created_at: int
    status: str = "validating"
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    times: dict[str, int] = field(default_factory=dict)
    model: str = ""
    tokens: int = 0
    """Prompt tokens of its requests, counted against ``batch_enqueued_token_limit`` while it runs."""
    task: asyncio.Task[None] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.created_at + 24 * 3600,
            **{f"{name}_at": at for name, at in self.times.items()},
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata,
        }


@dataclass
class BatchBook:
    """Files and batches of one running simulator (touched by its event loop only)."""

    files: dict[str, StoredFile] = field(default_factory=dict)
    batches: dict[str, SimBatch] = field(default_factory=dict)
    submissions: Counter[str] = field(default_factory=Counter)
    """custom_id -> how many created batches held it."""
    creates: int = 0
    released: bool = False
    """Set by ``SimServer.release_batches``: every waiting batch completes now, whatever its delay."""

    def add_file(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        stored = StoredFile(f"file-sim{len(self.files) + 1:06d}", filename, purpose, content, int(time.time()))
        self.files[stored.id] = stored
        return stored

    def stats(self) -> dict[str, Any]:
        return {
            "batches_created": self.creates,
            "batch_requests_submitted": sum(self.submissions.values()),
            "batch_requests_distinct": len(self.submissions),
            "batch_status": dict(sorted(Counter(b.status for b in self.batches.values()).items())),
        }


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body, ensure_ascii=False), content_type="application/json")


def _error(status: int, message: str, code: str | None = None, param: str | None = None) -> web.Response:
    return _json(status, RequestError(status, message, code, param).body())


StateOf = Callable[[web.Request], Any]


def add_routes(app: web.Application, state_of: StateOf) -> None:
    """Register the file and batch routes; ``state_of(request)`` gives the server's ``SimState``."""

    async def upload(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError, KeyError):
            return _error(400, "expected a multipart/form-data upload with 'file' and 'purpose'", "invalid_request")
        purpose, filename, content = None, "upload.jsonl", None
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "purpose":
                purpose = (await part.text())[:64]
            elif part.name == "file":
                filename = (part.filename or filename)[:256]
                chunks, size = [], 0
                while chunk := await part.read_chunk():
                    size += len(chunk)
                    if size > MAX_FILE_BYTES:
                        return _error(413, f"file larger than {MAX_FILE_BYTES} bytes", "file_too_large", "file")
                    chunks.append(chunk)
                content = b"".join(chunks)
        if content is None or purpose is None:
            return _error(400, "missing 'file' or 'purpose'", "invalid_request")
        stored = state.batch.add_file(filename, purpose, content)
        return _json(200, stored.as_json())

    def _file(request: web.Request) -> StoredFile | web.Response:
        stored = state_of(request).batch.files.get(request.match_info["file_id"])
        if stored is None:
            return _error(404, f"No such File object: {request.match_info['file_id'][:80]}", "not_found", "id")
        return stored

    async def retrieve_file(request: web.Request) -> web.StreamResponse:
        stored = _file(request)
        return stored if isinstance(stored, web.Response) else _json(200, stored.as_json())

    async def file_content(request: web.Request) -> web.StreamResponse:
        stored = _file(request)
        if isinstance(stored, web.Response):
            return stored
        return web.Response(body=stored.content, content_type="application/octet-stream")

    async def create(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        book: BatchBook = state.batch
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "request body is not valid JSON", "invalid_json")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object", "invalid_json")
        stored = book.files.get(str(body.get("input_file_id")))
        if stored is None:
            return _error(400, "input_file_id does not name an uploaded file", "invalid_value", "input_file_id")
        if body.get("endpoint") not in ENDPOINTS:
            return _error(400, f"endpoint must be one of {', '.join(ENDPOINTS)}", "invalid_value", "endpoint")
        if body.get("completion_window") not in WINDOWS:
            return _error(400, "completion_window must be '24h'", "invalid_value", "completion_window")
        metadata = body.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
        ):
            return _error(400, "metadata must map strings to strings", "invalid_value", "metadata")
        book.creates += 1
        batch = SimBatch(
            id=f"batch_sim{book.creates:06d}",
            input_file_id=stored.id,
            endpoint=body["endpoint"],
            completion_window=body["completion_window"],
            metadata=metadata,
            created_at=int(time.time()),
        )
        book.batches[batch.id] = batch
        lines, problem = _validated(stored.content, batch.endpoint)
        if problem is not None:
            _fail(batch, problem)
            return _json(200, batch.as_json())
        batch.model = str(lines[0]["body"].get("model", "")) if lines else ""
        batch.tokens = sum(line_tokens(line) for line in lines)
        limit = state.cfg.batch_enqueued_token_limit
        enqueued = sum(b.tokens for b in book.batches.values() if b.status == "in_progress" and b.model == batch.model)
        if limit and enqueued + batch.tokens > limit:
            message = (
                f"Enqueued token limit reached for {batch.model} in organization org-sim. Limit: {limit:,} enqueued "
                f"tokens. Please try submitting again once some in_progress batches have been completed."
            )
            _fail(batch, _batch_error("token_limit_exceeded", message))
            return _json(200, batch.as_json())
        occurrence = {}
        for line in lines:
            occurrence[line["custom_id"]] = book.submissions[line["custom_id"]]
            book.submissions[line["custom_id"]] += 1
        batch.status, batch.total = "in_progress", len(lines)
        batch.times["in_progress"] = int(time.time())
        batch.task = asyncio.ensure_future(_run(state, batch, lines, occurrence))
        return _json(200, batch.as_json())

    def _batch(request: web.Request) -> SimBatch | web.Response:
        batch = state_of(request).batch.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, f"No such Batch object: {request.match_info['batch_id'][:80]}", "not_found", "id")
        return batch

    async def retrieve(request: web.Request) -> web.StreamResponse:
        batch = _batch(request)
        return batch if isinstance(batch, web.Response) else _json(200, batch.as_json())

    async def cancel(request: web.Request) -> web.StreamResponse:
        batch = _batch(request)
        if isinstance(batch, web.Response):
            return batch
        if batch.status not in _FINAL:
            if batch.task is not None:
                batch.task.cancel()
            batch.status = "cancelled"
            batch.times["cancelled"] = int(time.time())
        return _json(200, batch.as_json())

    async def list_batches(request: web.Request) -> web.StreamResponse:
        book: BatchBook = state_of(request).batch
        try:
            limit = max(1, min(100, int(request.query.get("limit", "20"))))
        except ValueError:
            return _error(400, "limit must be an integer", "invalid_value", "limit")
        newest_first = list(reversed(book.batches.values()))
        after = request.query.get("after")
        if after is not None:
            ids = [b.id for b in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        page = newest_first[:limit]
        data = [b.as_json() for b in page]
        return _json(
            200,
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": len(newest_first) > limit,
            },
        )

    app.router.add_post("/v1/files", upload)
    app.router.add_get("/v1/files/{file_id}", retrieve_file)
    app.router.add_get("/v1/files/{file_id}/content", file_content)
    app.router.add_post("/v1/batches", create)
    app.router.add_get("/v1/batches", list_batches)
    app.router.add_get("/v1/batches/{batch_id}", retrieve)
    app.router.add_post("/v1/batches/{batch_id}/cancel", cancel)


def _validated(content: bytes, endpoint: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The input file's request lines, or the first problem as an OpenAI batch error (``line`` 1-based)."""

    def problem(line: int | None, code: str, message: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return [], _batch_error(code, message, line)

    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()
    for number, raw in enumerate(content.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            return problem(number, "invalid_json_line", "This line is not parseable as valid JSON.")
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str) or not line["custom_id"]:
            return problem(number, "missing_required_parameter", "Each line needs a custom_id string.")
        if line["custom_id"] in seen:
            return problem(number, "duplicate_custom_id", f"The custom_id {line['custom_id'][:64]} is a duplicate.")
        if line.get("method") != "POST" or line.get("url") != endpoint:
            return problem(number, "invalid_url", f"Each line must POST to the batch's endpoint {endpoint}.")
        body = line.get("body")
        if not isinstance(body, dict):
            return problem(number, "missing_required_parameter", "Each line needs a body object.")
        models.add(str(body.get("model")))
        if len(models) > 1:
            return problem(number, "mismatched_model", "All requests of a batch must use the same model.")
        seen.add(line["custom_id"])
        lines.append(line)
    if not lines:
        return problem(None, "empty_file", "The input file has no requests.")
    if len(lines) > MAX_REQUESTS:
        return problem(None, "too_many_requests", f"A batch holds at most {MAX_REQUESTS} requests.")
    return lines, None


async def _run(state: Any, batch: SimBatch, lines: list[dict[str, Any]], occurrence: dict[str, int]) -> None:
    """Wait ``batch_delay_s``, then answer every line and write the output and error files."""
    cfg = state.cfg
    book: BatchBook = state.batch
    due = time.monotonic() + cfg.batch_delay_s
    while not book.released and time.monotonic() < due:
        await asyncio.sleep(min(0.05, max(due - time.monotonic(), 0.0)))
    if cfg.batch_fail:
        _fail(batch, _batch_error("server_error", "The batch failed (simulated)."))
        return
    outputs: list[str] = []
    errors: list[str] = []
    expired = False
    for index, line in enumerate(lines):
        custom_id = line["custom_id"]
        entry: dict[str, Any] = {"id": f"batch_req_{batch.id[-6:]}_{index:06d}", "custom_id": custom_id}
        draw = random.Random(f"batch:{cfg.seed}:{custom_id}:{occurrence[custom_id]}").random()
        if draw < cfg.batch_expire_rate:
            expired = True
            message = "This request could not be executed before the completion window expired."
            errors.append(
                json.dumps({**entry, "response": None, "error": {"code": "batch_expired", "message": message}})
            )
            continue
        if draw < cfg.batch_expire_rate + cfg.batch_fail_rate:
            status, body = 500, RequestError(500, "The server had an error processing this request (simulated).").body()
        else:
            status, body = answer(state, batch.endpoint, line["body"])
        request_id = f"req_{hashlib.sha256(custom_id.encode()).hexdigest()[:16]}"
        response = {"status_code": status, "request_id": request_id, "body": body}
        (outputs if status == 200 else errors).append(
            json.dumps({**entry, "response": response, "error": None}, ensure_ascii=False)
        )
        if index % 64 == 63:
            await asyncio.sleep(0)  # let polls and other requests in while a large batch is answered
    if outputs:
        batch.output_file_id = book.add_file(f"{batch.id}_output.jsonl", "batch_output", _lines(outputs)).id
    if errors:
        batch.error_file_id = book.add_file(f"{batch.id}_error.jsonl", "batch_output", _lines(errors)).id
    batch.completed, batch.failed = len(outputs), len(errors)
    batch.status = "expired" if expired else "completed"
    batch.times["finalizing"] = batch.times[batch.status] = int(time.time())


def _batch_error(code: str, message: str, line: int | None = None) -> dict[str, Any]:
    """One entry of a batch's ``errors.data``, as OpenAI writes it."""
    return {"code": code, "message": message, "param": None, "line": line}


def _fail(batch: SimBatch, error: dict[str, Any]) -> None:
    """The batch fails as a whole, now (nothing of it runs)."""
    batch.status, batch.errors = "failed", [error]
    batch.times["failed"] = int(time.time())


def line_tokens(line: dict[str, Any]) -> int:
    """A request's prompt tokens as the limit counts them: the simulator's tokens of its messages or input."""
    body = line["body"]
    return count_tokens(json.dumps(body.get("messages", body.get("input", "")), ensure_ascii=False))


def _lines(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def answer(state: Any, url: str, body: Any) -> tuple[int, dict[str, Any]]:
    """(status, body) of one request as the online route would answer it: same planner, same replies.

    Online faults without a reply (429, 5xx, a dropped connection) are an error line; ``malformed`` is a
    body without ``choices`` (a batch line must stay JSON, so the envelope is what breaks)."""
    cfg = state.cfg
    key = request_hash(body)
    try:
        if url == "/v1/embeddings":
            reply = embeddings_body(body, cfg)
            outcome, _ = state.planner.decide(key, EMBEDDING_FAULTS)
        else:
            plan = parse_chat(body, cfg)
            outcome, _ = state.planner.decide(key, frozenset(FAULT_KINDS))
            if outcome not in _HTTP_FAULTS:
                choices = [generate_choice(plan, cfg, i, outcome, state.counters) for i in range(plan.n)]
                reply = completion_body(plan, cfg, choices, state.cached_tokens(plan))
                if outcome == "malformed" and not plan.wants_json:
                    reply = {"id": reply["id"], "object": "chat.completion"}
    except RequestError as err:
        return err.status, err.body()
    state.by_outcome[outcome] += 1
    if outcome in _HTTP_FAULTS:
        status = _HTTP_FAULTS[outcome]
        return status, RequestError(status, f"simulated {outcome} fault").body()
    if outcome == "malformed" and url == "/v1/embeddings":
        return 200, {"object": "list", "model": reply["model"]}
    return 200, reply
