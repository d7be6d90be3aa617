"""Batch files: request files written from pending calls, result files read back (OpenAI Batch API and
``vllm run-batch`` share both formats).

Input line: ``{"custom_id", "method": "POST", "url", "body"}`` (:meth:`RequestRecord.batch_line`). Result line:
``{"id", "custom_id", "response": {"status_code", "request_id", "body"} | null, "error": {"code", "message"} | null}``.

Result files come from elsewhere and are not trusted: a line is read with a length cap, decoded by the bounded
parser (no ``RecursionError``), and must have the shape above; a line that does not is one ``InputError``
naming the file and line. A well-formed line that reports a failure (an error object, a non-200 status) is a
failed request, not a bad file. The reply body itself is checked by the client like an online reply
(:meth:`LLMClient.accept_reply`) before anything is cached.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic_core

from wikipersona_data.errors import ConfigError, InputError
from wikipersona_data.llm.deferral import PendingCall

MAX_FILE_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
"""The OpenAI Batch API's limits per input file (requests, bytes)."""
MAX_LINE_BYTES = 64 * 1024 * 1024
"""Longest result line read (an embeddings reply of many texts is the largest honest one)."""


def request_line(call: PendingCall) -> bytes:
    """One input-file line (compact JSON, UTF-8, newline-terminated)."""
    text = json.dumps(call.record.batch_line(), ensure_ascii=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


@dataclass
class InputFile:
    """The requests of one batch: one endpoint, one model, one URL, within the limits."""

    endpoint: str
    model: str
    url: str
    calls: list[PendingCall] = field(default_factory=list)
    size: int = 0
    tokens: int = 0
    """Prompt tokens of its requests (the client's estimate): what a provider's enqueued-token limit counts."""

    def content(self) -> bytes:
        return b"".join(request_line(call) for call in self.calls)


def split_files(
    calls: Iterable[PendingCall],
    max_requests: int = MAX_FILE_REQUESTS,
    max_bytes: int = MAX_FILE_BYTES,
    max_tokens: int | None = None,
) -> list[InputFile]:
    """Calls grouped by (endpoint, model, url), in key order, cut into files of at most ``max_requests``
    lines, ``max_bytes`` bytes and (when given) ``max_tokens`` prompt tokens (one model per file, as the
    OpenAI Batch API requires; a file over the provider's enqueued-token limit would be refused whole). Each
    custom_id is in exactly one file: ``calls`` come from a dict keyed by it."""
    files: list[InputFile] = []
    current: dict[tuple[str, str, str], InputFile] = {}
    seen: set[str] = set()
    for call in sorted(calls, key=lambda c: (c.endpoint, c.model, c.record.url, c.key)):
        if call.key in seen:
            raise ValueError(f"custom_id {call.key} given twice")  # a bug: the collector keys by custom_id
        seen.add(call.key)
        size = len(request_line(call))
        if size > max_bytes:
            raise ConfigError(
                f"a request of stage {call.stage} (model {call.model}) is {size} bytes, over batch_max_bytes "
                f"{max_bytes}: it cannot go in a batch file"
            )
        if max_tokens is not None and call.prompt_tokens > max_tokens:
            raise ConfigError(
                f"a request of stage {call.stage} (model {call.model}) has ~{call.prompt_tokens} prompt tokens, "
                f"over batch_max_enqueued_tokens {max_tokens}: no batch could hold it"
            )
        group = (call.endpoint, call.model, call.record.url)
        file = current.get(group)
        full = max_tokens is not None and file is not None and file.tokens + call.prompt_tokens > max_tokens
        if file is None or full or len(file.calls) >= max_requests or file.size + size > max_bytes:
            file = InputFile(call.endpoint, call.model, call.record.url)
            current[group] = file
            files.append(file)
        file.calls.append(call)
        file.size += size
        file.tokens += call.prompt_tokens
    return files


@dataclass(frozen=True)
class Result:
    """One result line: a reply body to check and cache, or the reason the request failed."""

    custom_id: str
    body: bytes | None
    failure: str | None
    request_id: str | None = None


def read_lines(path: Path, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank line, each read with a cap (a longer line is an InputError)."""
    with Path(path).open("rb") as handle:
        number = 0
        while True:
            raw = handle.readline(limit + 1)
            if not raw:
                return
            number += 1
            if len(raw) > limit and not raw.endswith(b"\n"):
                raise InputError(f"{path} line {number}: longer than {limit} bytes")
            if raw.strip():
                yield number, raw


def parse_result(raw: bytes, where: str) -> Result:
    """One result line, or an ``InputError`` naming ``where`` (file and line) and what is wrong."""
    try:
        data = pydantic_core.from_json(raw)
    except ValueError as err:
        raise InputError(f"{where}: not JSON ({str(err)[:80]})") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: not a JSON object")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 200:
        raise InputError(f"{where}: custom_id missing or not a string")
    request_id = None
    error = data.get("error")
    response = data.get("response")
    if error is not None:
        if not isinstance(error, dict):
            raise InputError(f"{where}: error is not an object")
        return Result(custom_id, None, _failure(error.get("code"), error.get("message"), "error"), None)
    if not isinstance(response, dict):
        raise InputError(f"{where}: neither a response nor an error")
    status = response.get("status_code")
    if type(status) is not int:
        raise InputError(f"{where}: response.status_code missing or not an integer")
    if isinstance(response.get("request_id"), str):
        request_id = response["request_id"][:200]
    body = response.get("body")
    if status != 200:
        inner = body.get("error") if isinstance(body, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else None
        return Result(custom_id, None, _failure(f"http_{status}", message, f"HTTP {status}"), request_id)
    if isinstance(body, str):  # some servers put the body in as text
        return Result(custom_id, body.encode("utf-8"), None, request_id)
    if not isinstance(body, dict):
        raise InputError(f"{where}: response.body is not an object")
    return Result(custom_id, json.dumps(body, ensure_ascii=False).encode("utf-8"), None, request_id)


def _failure(code: Any, message: Any, default: str) -> str:
    code = str(code)[:60] if code else default
    text = " ".join(str(message).split())[:200] if message else ""
    return f"{code}: {text}" if text else code


def write_pending(path: Path, calls: Iterable[PendingCall]) -> int:
    """The pending calls as JSON lines (atomic): what ``batch export`` and ``batch import`` read."""
    from wikipersona_data.fileio import write_jsonl

    return write_jsonl(path, (json.dumps(c.as_json(), ensure_ascii=False, sort_keys=True) for c in calls))


def read_pending(path: Path) -> dict[str, PendingCall]:
    """custom_id -> pending call, from a file :func:`write_pending` wrote (one-line error if damaged)."""
    from wikipersona_data.fileio import iter_jsonl_lines

    calls: dict[str, PendingCall] = {}
    for number, line in iter_jsonl_lines(path):
        try:
            call = PendingCall.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"{path} line {number}: not a pending request ({err})") from None
        calls[call.key] = call
    return calls
