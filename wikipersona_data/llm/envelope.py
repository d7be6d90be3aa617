"""What a reply body must look like before anything trusts it: decoded, bounded, shape-checked.

An endpoint is not trusted to speak the protocol. Before a body is cached (and again when a cached record
is read back) it must:

* be at most ``max_reply_bytes`` (enforced while reading, by the client) and decode as a JSON object with
  ``pydantic_core.from_json`` (jiter: bounded recursion, so 100k nested arrays are an error, not a
  ``RecursionError``);
* not be an error object (an HTTP 200 carrying ``{"error": ...}`` is a failure, never a cached success);
* match the chat-completion (or embeddings) shape: ``choices`` a non-empty list of objects whose
  ``message.content`` is a string or null, ``finish_reason`` a string or null; embeddings ``data`` a list
  of ``{index, embedding: [float]}``.

``usage`` is checked apart: a usage object with wrong types or negative counts does not fail the reply
(the text is fine) but is dropped as *unreliable*, and the ledger then charges locally counted tokens
(see :mod:`wikipersona_data.llm.ledger`). Extra fields are allowed everywhere (servers add their own).
"""

from __future__ import annotations

import re
from typing import Any

import pydantic
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays/objects accepted in a reply's JSON content (stage schemas need < 10)."""


class EnvelopeError(ValueError):
    """The body is not a usable reply; ``kind`` is the ledger's error kind."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Message(_Open):
    content: StrictStr | None = None
    refusal: StrictStr | None = None


class _Choice(_Open):
    message: _Message
    finish_reason: StrictStr | None = None


class ChatEnvelope(_Open):
    """The parts of a chat completion the client reads, with their types enforced."""

    choices: list[_Choice] = Field(min_length=1)
    model: StrictStr | None = None


class _Vector(_Open):
    index: StrictInt = Field(ge=0)
    embedding: list[StrictFloat | StrictInt]


class EmbedEnvelope(_Open):
    data: list[_Vector]
    model: StrictStr | None = None


class Usage(_Open):
    """Token counts as reported; any wrong type or negative value makes the whole usage unreliable."""

    prompt_tokens: StrictInt = Field(ge=0)
    completion_tokens: StrictInt = Field(default=0, ge=0)
    total_tokens: StrictInt | None = Field(default=None, ge=0)


def decode_body(content: bytes) -> dict[str, Any]:
    """The body as a JSON object, or :class:`EnvelopeError` (``invalid_body`` / ``error_body``)."""
    try:
        body = pydantic_core.from_json(content)
    except ValueError as err:  # includes jiter's "recursion limit exceeded"
        raise EnvelopeError("invalid_body", f"reply body is not JSON ({str(err)[:80]})") from None
    if not isinstance(body, dict):
        raise EnvelopeError("invalid_body", "reply body is not a JSON object")
    error = body.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else error
        raise EnvelopeError("error_body", f"HTTP 200 with an error object: {str(message)[:200]}")
    return body


def check_chat(body: dict[str, Any]) -> None:
    """Raise :class:`EnvelopeError` unless ``body`` has the chat-completion shape."""
    _check(ChatEnvelope, body)


def check_embed(body: dict[str, Any]) -> None:
    _check(EmbedEnvelope, body)


def _check(model: type[BaseModel], body: dict[str, Any]) -> None:
    if body.get("error"):
        raise EnvelopeError("error_body", "error object in the reply")
    try:
        model.model_validate(body)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "<root>"
        raise EnvelopeError("invalid_envelope", f"{where}: {first.get('msg', 'invalid')}") from None


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def reliable_usage(usage: Any) -> dict[str, Any] | None:
    """``usage`` when every count is a non-negative int, else None (absent or not to be trusted).

    The same rule as :class:`Usage`, written out: it runs on every reply and cache hit.
    """
    if not isinstance(usage, dict) or not _count(usage.get("prompt_tokens")):
        return None
    for name in ("completion_tokens", "total_tokens"):
        value = usage.get(name)
        if value is not None and not _count(value):
            return None
    details = usage.get("prompt_tokens_details")
    if details is not None:
        cached = details.get("cached_tokens") if isinstance(details, dict) else "bad"
        if cached is not None and not _count(cached):
            return {k: v for k, v in usage.items() if k != "prompt_tokens_details"}
    return usage


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON-ish ``text`` nests arrays/objects deeper than ``limit`` (strings are skipped).

    Checked before ``json`` parses a reply's content: the stdlib decoder recurses per level and raises
    ``RecursionError`` on a reply of 100k nested arrays. Cheap: a text with few brackets returns at once.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth = max(depth - 1, 0)
    return False
