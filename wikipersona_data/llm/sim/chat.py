"""Chat completions: request validation, content generation, and the OpenAI-shaped reply.

Kept apart from the HTTP layer so the rules (what is a 400, how JSON is produced, how truncation and
usage are computed) can be read in one place and every reply is a pure function of
(config, request body, outcome, sample index).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from wikipersona_data.llm.sim.config import SimConfig
from wikipersona_data.llm.sim.protocol import RequestError, check_model, request_hash
from wikipersona_data.llm.sim.responders import ResponderRequest, find_schema_marker, get_responder
from wikipersona_data.llm.sim.schema_fill import SchemaFillError, canonical, check_schema, fill, fit, is_valid, violate
from wikipersona_data.llm.sim.textgen import (
    count_tokens,
    last_user_text,
    message_text,
    paragraph,
    truncate_tokens,
    user_text,
    words_of,
)

CREATED_BASE = 1_795_651_200  # 2026-11-26T00:00:00Z: replies carry a fixed time, never the clock
MAX_N = 16
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
SAMPLING_PARAMS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "seed", "stop",
                   "presence_penalty", "frequency_penalty", "logit_bias", "reasoning_effort")  # fmt: skip
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."


@dataclass
class ChatPlan:
    """A validated chat request."""

    body: dict[str, Any]
    hash: str
    model: str
    messages: list[dict[str, Any]]
    n: int
    max_tokens: int | None
    schema: dict[str, Any] | None
    schema_name: str | None
    wants_json: bool
    schema_enforced: bool  # response_format json_schema: the endpoint guarantees the shape
    params: dict[str, Any]


def parse_chat(body: Any, cfg: SimConfig) -> ChatPlan:
    """Validate a /v1/chat/completions body or raise ``RequestError`` (400/404)."""
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object", "invalid_json")
    if body.get("stream"):
        raise RequestError(400, "streaming not supported by the simulator", "unsupported_parameter", "stream")
    model = check_model(body.get("model"), cfg)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty array", "invalid_value", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RequestError(400, f"messages[{index}] needs a valid 'role'", "invalid_value", f"messages[{index}]")
        if not isinstance(message.get("content"), (str, list, type(None))):
            raise RequestError(400, f"messages[{index}].content must be a string or an array", "invalid_type")
    n = body.get("n", 1) if body.get("n") is not None else 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N:
        raise RequestError(400, f"'n' must be an integer in [1, {MAX_N}], got {n!r}", "invalid_value", "n")
    max_tokens = None
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise RequestError(400, f"'{key}' must be a positive integer, got {value!r}", "invalid_value", key)
        max_tokens = value if max_tokens is None else min(max_tokens, value)
    for key, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        value = body.get(key)
        if value is not None and (not isinstance(value, (int, float)) or not low <= value <= high):
            raise RequestError(400, f"'{key}' must be a number in [{low}, {high}], got {value!r}", "invalid_value", key)
    schema, schema_name, wants_json, enforced = _response_format(body.get("response_format"), messages)
    params = {key: body[key] for key in SAMPLING_PARAMS if key in body}
    return ChatPlan(
        body, request_hash(body), model, messages, n, max_tokens, schema, schema_name, wants_json, enforced, params
    )


def _response_format(fmt: Any, messages: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str | None, bool, bool]:
    marker = find_schema_marker(messages)
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        if marker is None:
            return None, None, False, False
        return _schema_after_marker(messages), marker, True, False
    if not isinstance(fmt, dict):
        raise RequestError(400, "'response_format' must be an object", "invalid_type", "response_format")
    kind = fmt.get("type")
    if kind == "json_object":
        return _schema_after_marker(messages) if marker else None, marker, True, False
    if kind != "json_schema":
        raise RequestError(400, f"unknown response_format.type {kind!r}", "invalid_value", "response_format.type")
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise RequestError(400, "response_format.json_schema needs a 'name'", "invalid_value", "response_format")
    schema = spec.get("schema", {"type": "object"})
    problem = check_schema(schema)
    if problem:
        raise RequestError(400, problem, "invalid_value", "response_format.json_schema.schema")
    return schema, spec["name"], True, True


def _schema_after_marker(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A JSON schema the client printed after the marker line, if any (clients of non-enforcing endpoints do)."""
    for message in messages:
        if message.get("role") not in ("system", "developer"):
            continue
        text = message_text(message)
        start = text.find("Respond with JSON for schema")
        brace = text.find("{", start) if start >= 0 else -1
        while brace >= 0:
            try:
                value, _ = json.JSONDecoder().raw_decode(text, brace)
            except ValueError:
                brace = text.find("{", brace + 1)
                continue
            if isinstance(value, dict) and ("type" in value or "properties" in value) and check_schema(value) is None:
                return value
            break
    return None


@dataclass
class Choice:
    content: str | None
    refusal: str | None
    finish_reason: str


def generate_choice(plan: ChatPlan, cfg: SimConfig, index: int, outcome: str, counters: Counter[str]) -> Choice:
    """One sample. ``counters`` receives responder fallbacks/violations for the stats."""
    rng = random.Random(f"{cfg.seed}:{plan.hash}:{index}")
    if outcome == "refusal":
        return Choice(None, REFUSAL_TEXT, "stop")
    text = _json_text(plan, cfg, rng, index, counters) if plan.wants_json else _plain_text(plan, cfg, rng, index)
    finish = "stop"
    if outcome == "length":
        text, _ = truncate_tokens(text, max(1, count_tokens(text) // 2))
        finish = "length"
    elif outcome == "malformed" and plan.wants_json:
        text = text[: max(1, len(text) // 2)]
    if plan.max_tokens is not None:
        text, cut = truncate_tokens(text, plan.max_tokens)
        if cut:
            finish = "length"
    return Choice(text, None, finish)


def _plain_text(plan: ChatPlan, cfg: SimConfig, rng: random.Random, index: int) -> str:
    responder = get_responder("text")
    if responder is not None:
        value = responder(_responder_request(plan, cfg, rng, index))
        if isinstance(value, str):
            return value
    return paragraph(rng, last_user_text(plan.messages))


def _responder_request(plan: ChatPlan, cfg: SimConfig, rng: random.Random, index: int) -> ResponderRequest:
    return ResponderRequest(
        model=plan.model,
        messages=plan.messages,
        schema=plan.schema,
        schema_name=plan.schema_name,
        rng=rng,
        seed=cfg.seed,
        params=dict(plan.params),
        choice_index=index,
        config=cfg,
    )


def _json_text(plan: ChatPlan, cfg: SimConfig, rng: random.Random, index: int, counters: Counter[str]) -> str:
    vocabulary = words_of(user_text(plan.messages))
    responder = get_responder(plan.schema_name)
    value: Any
    if responder is not None:
        try:
            value = responder(_responder_request(plan, cfg, rng, index))
        except Exception as err:
            counters["responder_errors"] += 1
            raise RequestError(500, f"responder {plan.schema_name!r} raised {type(err).__name__}: {err}") from err
        if plan.schema is not None and cfg.enforce_schema:
            value = fit(plan.schema, value)  # like constrained decoding: the JSON ends within the bounds
        if plan.schema is not None and cfg.enforce_schema and not is_valid(plan.schema, value):
            counters["responder_fallbacks"] += 1
            value = _fill(plan.schema, rng, vocabulary)
    elif plan.schema is not None:
        value = _fill(plan.schema, rng, vocabulary)
    else:
        value = {"answer": paragraph(rng, last_user_text(plan.messages))}
    if plan.schema is not None:
        if not cfg.enforce_schema and cfg.violation_rate > 0 and rng.random() < cfg.violation_rate:
            value = violate(plan.schema, value, rng)
            counters["schema_violations"] += 1
        elif not is_valid(plan.schema, value):
            # A schema keyword the filler does not model (e.g. pattern): say so in the stats.
            counters["fill_invalid"] += 1
    text = json.dumps(value, ensure_ascii=False)
    if plan.schema_enforced or cfg.json_style == "plain":
        return text
    if cfg.json_style == "fenced":
        return f"```json\n{text}\n```"
    return f"Sure! Here it is:\n{text}"


def _fill(schema: dict[str, Any], rng: random.Random, vocabulary: list[str]) -> Any:
    try:
        return fill(schema, rng, vocabulary)
    except SchemaFillError as err:
        raise RequestError(400, f"cannot satisfy response schema: {err}", "invalid_value", "response_format") from err


def prompt_tokens(plan: ChatPlan) -> int:
    """~OpenAI's accounting: message texts plus a few tokens of framing each, plus the schema."""
    total = 3 + sum(4 + count_tokens(message_text(m)) for m in plan.messages)
    if plan.schema is not None and plan.schema_enforced:
        total += count_tokens(canonical(plan.schema))
    return total


def completion_body(plan: ChatPlan, cfg: SimConfig, choices: list[Choice], cached_tokens: int) -> dict[str, Any]:
    prompt = prompt_tokens(plan)
    completion = sum(count_tokens(c.content or c.refusal or "") for c in choices)
    return {
        "id": f"chatcmpl-sim{plan.hash[:24]}",
        "object": "chat.completion",
        "created": CREATED_BASE + cfg.seed,
        "model": plan.model + cfg.served_model_suffix,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": c.content, "refusal": c.refusal, "annotations": []},
                "logprobs": None,
                "finish_reason": c.finish_reason,
            }
            for i, c in enumerate(choices)
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": system_fingerprint(cfg),
    }


def system_fingerprint(cfg: SimConfig) -> str:
    return "fp_sim" + hashlib.sha256(f"{cfg.seed}".encode()).hexdigest()[:10]
