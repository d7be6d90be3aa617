"""Pure parts of the client: JSON extraction, failure reasons, Retry-After parsing, AIMD, token buckets."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pydantic
import pytest

from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.client import semantic_params
from wikipersona_data.llm.limits import AdaptiveLimiter, TokenBucket
from wikipersona_data.llm.retry import backoff_seconds, retry_after_seconds
from wikipersona_data.llm.structured import Reply, extract_json, parse_json_reply, schema_instruction, strict_schema


class Thing(pydantic.BaseModel):
    name: str
    size: int


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "a", "size": 1}',
        '```json\n{"name": "a", "size": 1}\n```',
        'Sure! Here it is:\n{"name": "a", "size": 1}',
        'Here you go: {"name": "a", "size": 1} Hope this helps {really}.',
        '```\n{"name": "a", "size": 1}\n```\nLet me know!',
    ],
)
def test_extract_json_tolerates_fences_preambles_and_trailing_text(text):
    assert extract_json(text) == {"name": "a", "size": 1}


def test_extract_json_rejects_text_without_json():
    with pytest.raises(ValueError):
        extract_json("I cannot do that {not json")


def _reply(content=None, refusal=None, finish="stop") -> Reply:
    return Reply(content=content, refusal=refusal, finish_reason=finish, served_model="m", usage=None)


def test_parse_reasons_are_named_never_defaults():
    assert parse_json_reply(_reply('{"name": "a", "size": 2}'), Thing)[0] == Thing(name="a", size=2)
    assert parse_json_reply(_reply('{"name": "a", "si'), Thing) == (None, "invalid_json")
    value, why = parse_json_reply(_reply('{"name": "a", "size": "big"}'), Thing)
    assert value is None and why.startswith("schema_violation: size:")
    assert parse_json_reply(_reply('{"name": "a", "size": 2}', finish="length"), Thing) == (None, "length")
    value, why = parse_json_reply(_reply(None, refusal="I can't help with that."), Thing)
    assert value is None and why == "refusal: I can't help with that."
    assert parse_json_reply(_reply("   "), Thing) == (None, "empty")


def test_strict_schema_and_instruction_marker():
    schema = strict_schema(Thing)
    assert schema["additionalProperties"] is False and schema["required"] == ["name", "size"]
    text = schema_instruction("thing", schema)
    assert text.splitlines()[0] == 'Respond with JSON for schema "thing"'
    assert extract_json(text.splitlines()[1]) == schema


def test_strict_schema_fallback_matches_the_sdk_on_nested_models():
    from wikipersona_data.llm.structured import _strictify

    class Inner(pydantic.BaseModel):
        label: str
        weight: float = 1.0

    class Outer(pydantic.BaseModel):
        items: list[Inner]
        note: str | None = None

    ours = _strictify(Outer.model_json_schema())
    assert ours["additionalProperties"] is False and ours["required"] == ["items", "note"]
    inner = ours["$defs"]["Inner"]
    assert inner["additionalProperties"] is False and inner["required"] == ["label", "weight"]
    assert "default" not in inner["properties"]["weight"]
    sdk = strict_schema(Outer)
    assert sdk["required"] == ours["required"] and sdk["$defs"]["Inner"]["required"] == inner["required"]


def test_retry_after_headers():
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == pytest.approx(0.25)
    assert retry_after_seconds({"retry-after": "3"}) == pytest.approx(3.0)
    assert retry_after_seconds({"retry-after": "100000"}) == pytest.approx(120.0)  # capped
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
    date = email.utils.formatdate(1_000_010.0, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=1_000_000.0) == pytest.approx(10.0)


def test_backoff_grows_with_jitter_and_is_capped():
    waits = [backoff_seconds(n, 0.5) for n in (1, 2, 3, 4)]
    for n, wait in zip((1, 2, 3, 4), waits, strict=True):
        assert 0.25 * 2 ** (n - 1) <= wait <= 0.5 * 2 ** (n - 1)
    assert backoff_seconds(50, 0.5) <= 30.0


def test_aimd_halves_once_per_burst_and_grows_back():
    async def run() -> AdaptiveLimiter:
        limiter = AdaptiveLimiter(8, increase_every=2)
        epochs = [await limiter.acquire() for _ in range(8)]
        for epoch in epochs:  # a burst of 429s from requests admitted together: one decrease
            limiter.on_rate_limited(epoch)
        assert limiter.limit == 4 and limiter.decreases == 1
        for _ in range(8):
            limiter.release()
        late = await limiter.acquire()
        limiter.on_rate_limited(late)  # admitted after the cut: a new signal
        assert limiter.limit == 2
        limiter.release()
        for _ in range(6):
            limiter.on_success()
        assert limiter.limit == 5
        for _ in range(100):
            limiter.on_success()
        assert limiter.limit == 8  # never above the configured bound
        return limiter

    limiter = asyncio.run(run())
    assert limiter.peak == 8


def test_token_bucket_spends_and_goes_into_debt():
    async def run() -> TokenBucket:
        bucket = TokenBucket(600)  # 10 per second, burst 600
        await bucket.acquire(590)
        bucket.adjust(+50)  # the call used 50 more tokens than reserved
        return bucket

    bucket = asyncio.run(run())
    assert bucket.tokens < 0


def test_semantic_params_drop_neutral_values_and_reject_unknown():
    assert semantic_params({"temperature": 0.0, "n": 1, "stop": [], "seed": None, "max_tokens": 5}) == {
        "temperature": 0.0,
        "max_tokens": 5,
    }
    with pytest.raises(ConfigError, match="unknown LLM param 'timeout'"):
        semantic_params({"timeout": 3})
    with pytest.raises(ConfigError, match="n must be 1"):
        semantic_params({"n": 3})


@pytest.mark.parametrize("cancel_first", [True, False])
def test_limiter_hands_slots_over_in_order_and_survives_cancelled_waiters(cancel_first):
    async def run() -> list[str]:
        limiter = AdaptiveLimiter(1)
        order: list[str] = []
        await limiter.acquire()

        async def user(name: str) -> None:
            await limiter.acquire()
            order.append(name)
            limiter.release()

        b = asyncio.create_task(user("b"))
        c = asyncio.create_task(user("c"))
        await asyncio.sleep(0)  # let both queue up
        if cancel_first:  # cancelled while waiting
            b.cancel()
            limiter.release()
        else:  # cancelled after being handed the slot, before using it: the slot must move on
            limiter.release()
            b.cancel()
        await c
        assert b.cancelled()
        assert limiter.in_flight == 0
        return order

    assert asyncio.run(run()) == ["c"]


def test_token_bucket_makes_callers_wait_once_the_burst_is_spent():
    async def run() -> float:
        bucket = TokenBucket(600)  # 10 per second after a burst of 600
        await bucket.acquire(600)
        started = time.perf_counter()
        await bucket.acquire(2)  # needs 0.2 s of refill
        return time.perf_counter() - started

    assert asyncio.run(run()) >= 0.19
