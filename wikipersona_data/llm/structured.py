"""From a raw chat completion to a validated pydantic value, or a named reason why not.

Parsing is kept apart from calling: the client caches the raw response first and only then runs
:func:`parse_json_reply`, so fixing a parser re-parses cached responses without paying again. Every
rejection has a short, stable reason (``invalid_json``, ``schema_violation: <field>: <msg>``,
``length``, ``refusal: <text>``, ``content_filter``, ``empty``) that ends up in the ledger and the
stage's rejects; nothing is ever replaced by a default value.

Where the server does not enforce the schema the model is *told* the schema (:func:`schema_instruction`)
and its reply is read tolerantly: a bare JSON value, a fenced code block, or JSON after a preamble and
before trailing chatter.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import pydantic

from wikipersona_data.llm.envelope import MAX_JSON_DEPTH, reliable_usage, too_deep

SCHEMA_MARKER = 'Respond with JSON for schema "{name}"'
"""Agreed with the simulator: tells a non-enforcing endpoint which schema the reply must follow."""

_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
_MAX_REASON = 300


@functools.lru_cache(maxsize=256)
def strict_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The JSON schema sent as ``response_format`` (strict mode: no extra keys, every field required).

    Uses the openai package's own converter when it is there (so we match exactly what OpenAI's strict
    mode accepts; it lives in a private module that may move), else :func:`_strictify`.
    Memoised per model class (generating it costs more than a cache replay); callers must not mutate it.
    """
    try:
        from openai.lib._pydantic import to_strict_json_schema
    except ImportError:
        return _strictify(model.model_json_schema())
    return to_strict_json_schema(model)


def _strictify(node: Any) -> Any:
    """Strict-mode rules on a pydantic JSON schema: closed objects, every property required."""
    if isinstance(node, list):
        return [_strictify(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strictify(value) for key, value in node.items()}
    if out.get("type") == "object" or "properties" in out:
        out.setdefault("additionalProperties", False)
        out["required"] = list(out.get("properties", {}))
    out.pop("default", None)  # strict mode rejects defaults
    return out


def schema_instruction(name: str, schema: dict[str, Any]) -> str:
    """System-message block for endpoints that do not enforce ``json_schema``."""
    return (
        f"{SCHEMA_MARKER.format(name=name)}\n"
        f"{json.dumps(schema, ensure_ascii=False, sort_keys=True)}\n"
        "Reply with exactly one JSON object that validates against this schema: no prose, no code fences, "
        "no keys other than those in the schema."
    )


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def extract_json(text: str) -> Any:
    """The JSON value in a reply, tolerating code fences, preambles and trailing text.

    Raises ``ValueError`` when no JSON can be found, or when it nests deeper than
    :data:`~wikipersona_data.llm.envelope.MAX_JSON_DEPTH` (checked first: the decoder would recurse into
    a ``RecursionError``). Candidates are tried in order of how deliberate they look: the whole text, each
    fenced block, then an *object* embedded in prose. Only objects are taken from prose: a reply such as
    ``"[1.0] is my score"`` or ``"See [2]: {...}"`` must not turn a bracketed aside into the answer.
    """
    if too_deep(text):
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    for match in _FENCE.finditer(text):
        try:
            return json.loads(match.group(1).strip())
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for match in re.finditer(r"{", text):
        try:
            value, _end = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError("no JSON object found")


def validation_reason(err: pydantic.ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "<root>"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return _one_line(f"schema_violation: {where}: {first.get('msg', 'invalid')}{more}")


@dataclass(frozen=True)
class Reply:
    """The parts of a chat completion the client needs, read from the raw JSON body."""

    content: str | None
    refusal: str | None
    finish_reason: str | None
    served_model: str | None
    usage: dict[str, Any] | None

    @classmethod
    def from_response(cls, response: dict[str, Any]) -> Reply:
        choices = response.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        message = choice.get("message")
        message = message if isinstance(message, dict) else {}
        return cls(
            content=_str_or_none(message.get("content")),
            refusal=_str_or_none(message.get("refusal")),
            finish_reason=_str_or_none(choice.get("finish_reason")),
            served_model=_str_or_none(response.get("model")),
            usage=reliable_usage(response.get("usage")),
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def reply_failure(reply: Reply) -> str | None:
    """Why a reply cannot be used at all (before looking at its content), or None."""
    if reply.refusal:
        return _one_line(f"refusal: {reply.refusal}")
    if reply.finish_reason == "length":
        return "length"
    if reply.finish_reason == "content_filter":
        return "content_filter"
    if reply.content is None or not reply.content.strip():
        return "empty"
    return None


def parse_json_reply(reply: Reply, schema: type[pydantic.BaseModel]) -> tuple[pydantic.BaseModel | None, str | None]:
    """``(value, None)`` for a usable reply, else ``(None, reason)``."""
    failure = reply_failure(reply)
    if failure:
        return None, failure
    assert reply.content is not None
    try:
        data = extract_json(reply.content)
    except ValueError:
        return None, "invalid_json"
    try:
        return schema.model_validate(data), None
    except pydantic.ValidationError as err:
        return None, validation_reason(err)


def reask_messages(raw_text: str | None, failure: str) -> list[dict[str, str]]:
    """What a re-ask appends so the next attempt can come out differently.

    A reply cut by ``length`` is *not* sent back (it would only grow the prompt toward the context limit and
    invite the model to continue it): the model is asked for a shorter answer instead, and the client also
    raises ``max_tokens``. Any other rejected reply is shown with the reason, so the model can correct it.
    """
    if failure == "length":
        return [
            {
                "role": "user",
                "content": "Your previous reply was cut off by the token limit. Reply again with only the JSON "
                "object, shorter: fewer list items and shorter strings.",
            }
        ]
    return [
        {"role": "assistant", "content": (raw_text or "")[:4000]},
        {
            "role": "user",
            "content": f"Your previous reply could not be used ({failure}). "
            "Reply again with only the JSON object that follows the schema.",
        },
    ]
