"""A hostile endpoint must not crash the client, poison the cache or spend past the budget (real HTTP)."""

from __future__ import annotations

import asyncio
import json
import logging
import resource

import pydantic
import pytest
from hostile_llm import HostileServer, Stream, chat, embeddings, error, models, raw

from wikipersona_data.errors import BudgetExceeded, LLMError
from wikipersona_data.llm.cache import CallCache
from wikipersona_data.llm.client import LLMClient
from wikipersona_data.llm.config import EndpointConfig, ModelPrice, PriceTable
from wikipersona_data.llm.ledger import Ledger

GOOD = '{"name": "a", "size": 1}'


class Thing(pydantic.BaseModel):
    name: str
    size: int


def _client(srv, cache_dir=None, *, mode="use", prices=None, max_usd=None, **kw):
    kw.setdefault("profile", "vllm")
    kw.setdefault("api_key_env", "HOSTILE_TEST_KEY")
    kw.setdefault("backoff_base_s", 0.01)
    kw.setdefault("max_attempts", 2)
    ep = EndpointConfig(name="h", base_url=srv.base_url, **kw)
    cache = CallCache(cache_dir, mode=mode) if cache_dir is not None else None
    return LLMClient({"h": ep}, cache=cache, ledger=Ledger(prices), max_usd=max_usd)


def _ask(client, i=0, max_reasks=0, **params):
    params = {"temperature": 0.0, "max_tokens": 100, "seed": 7, **params}
    return client.chat_json(
        stage="describe",
        endpoint="h",
        model="m",
        messages=[{"role": "user", "content": f"question {i}"}],
        schema=Thing,
        schema_name="thing",
        params=params,
        max_reasks=max_reasks,
    )


def _run(srv, tmp_path=None, **kw):
    async def go():
        async with _client(srv, tmp_path, **kw) as client:
            result = await _ask(client)
            return result, client.ledger.summary()["totals"]["errors"]

    return asyncio.run(go())


def _cached_responses(cache_dir):
    lines = []
    for path in sorted((cache_dir / "calls").glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (lambda req: raw(b'{"choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), "invalid_body"),
        (lambda req: chat(content=["a", "list"]), "invalid_envelope"),
        (lambda req: {**chat(), "choices": {"0": chat()["choices"][0]}}, "invalid_envelope"),
        (lambda req: {"error": {"message": "overloaded", "type": "server_error"}}, "error_body"),
        (lambda req: raw(b"[1, 2, 3]"), "invalid_body"),
        (lambda req: chat(content=None, finish=7), "invalid_envelope"),
    ],
    ids=["nested-body", "content-list", "choices-object", "200-error", "body-array", "finish-int"],
)
def test_malformed_envelope_is_a_failure_and_never_cached(tmp_path, reply, kind):
    with HostileServer(reply) as srv:
        result, errors = _run(srv, tmp_path)
    assert not result.ok and result.failure == f"exhausted_retries: {kind}"
    assert errors[kind] == 2  # retried (max_attempts=2), each time refused before the cache
    assert _cached_responses(tmp_path) == []
    assert len(srv.chat_requests()) == 2


def test_poisoned_reply_then_healthy_server_recovers(tmp_path):
    """A 200+error body under one run is not replayed by the next run against a healthy server."""
    with HostileServer(lambda req: {"error": {"message": "busy"}}) as srv:
        first, _ = _run(srv, tmp_path)
    with HostileServer(lambda req: chat(GOOD)) as srv:
        second, _ = _run(srv, tmp_path)
    assert not first.ok and second.ok and second.value == Thing(name="a", size=1)


def test_nested_content_is_invalid_json_not_recursion_error(tmp_path):
    with HostileServer(lambda req: chat(content="[" * 100_000 + "]" * 100_000)) as srv:
        result, errors = _run(srv, tmp_path)
    assert not result.ok and result.failure == "invalid_json" and errors["invalid_json"] == 1


def test_wrong_typed_usage_is_ignored_not_a_crash(tmp_path):
    usage = {"prompt_tokens": "lots", "completion_tokens": -3}
    with HostileServer(lambda req: chat(GOOD, usage=usage)) as srv:
        result, _ = _run(srv, tmp_path)
    assert result.ok and result.usage is None


def test_bad_cache_record_is_skipped_and_recomputed(tmp_path, caplog):
    with HostileServer(lambda req: chat(GOOD)) as srv:
        first, _ = _run(srv, tmp_path)
        shard = next((tmp_path / "calls").glob("*.jsonl"))
        record = json.loads(shard.read_text())
        record["response"]["choices"] = {"not": "a list"}  # tampered on disk
        shard.write_text(json.dumps(record) + "\n")
        with caplog.at_level(logging.WARNING):
            second, _ = _run(srv, tmp_path)
        assert len(srv.chat_requests()) == 2  # asked again instead of crashing on the record
    assert first.ok and second.ok and not second.cached
    assert "not a valid reply" in caplog.text


@pytest.mark.parametrize("status", [200, 500, 429, 400])
def test_huge_body_is_cut_off(tmp_path, status):
    """Error pages too: on a 4xx/5xx the SDK reads the body itself (to build its exception), so the cap sits
    on the HTTP client's response stream, not only on our own read of a 200 body."""
    stream = Stream(b'{"x": "' + b"a" * (1 << 20), count=100, status=status)  # 100 MiB if read to the end
    with HostileServer(lambda req: stream) as srv:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result, errors = _run(srv, tmp_path, max_reply_bytes=2 * 1024 * 1024, max_attempts=1)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert not result.ok and result.failure == "exhausted_retries: reply_too_large"
    assert errors["reply_too_large"] == 1
    assert stream.sent < 100  # the client hung up long before the end
    assert (after - before) < 80 * 1024  # KiB: nowhere near 100 MiB held


def test_endless_chunked_body_hits_the_total_deadline(tmp_path):
    stream = Stream(b" ", count=None, pause_s=0.02)  # a byte every 20 ms forever: no read timeout fires
    with HostileServer(lambda req: stream) as srv:
        result, errors = _run(srv, tmp_path, timeout_s=0.5, max_attempts=1)
    assert not result.ok and result.failure == "exhausted_retries: timeout"
    assert errors["timeout"] == 1


@pytest.mark.parametrize("usage", [None, {"prompt_tokens": -1000000, "completion_tokens": -1000000}])
def test_budget_holds_without_or_with_negative_usage(usage):
    prices = PriceTable({"m": ModelPrice(input_per_m=1000.0, output_per_m=1000.0)})
    long = json.dumps({"name": "a" * 4000, "size": 1})

    async def go(client):
        done = 0
        with pytest.raises(BudgetExceeded):
            for i in range(100):
                await _ask(client, i, max_tokens=10)
                done += 1
        return done, client.ledger.spent_usd

    with HostileServer(lambda req: chat(long, usage=usage)) as srv:

        async def run():
            async with _client(srv, prices=prices, max_usd=5.0) as client:
                return await go(client)

        done, spent = asyncio.run(run())
    # each reply is ~1000 tokens at $1000/M = ~$1: the cap of $5 stops the run after a handful of calls
    assert 2 <= done <= 6
    assert spent > 1.0


def test_reasks_vary_the_seed_and_keep_attempt_keys(tmp_path):
    with HostileServer(lambda req: chat("not json" if req.n < 2 else GOOD)) as srv:

        async def go():
            async with _client(srv, tmp_path) as client:
                return await _ask(client, max_reasks=2)

        result = asyncio.run(go())
        seeds = [r.json["seed"] for r in srv.chat_requests()]
    assert result.ok and len(result.call_keys) == 3 and len(set(result.call_keys)) == 3
    assert seeds == [7, 1007, 2007]


def test_length_reask_raises_max_tokens_and_does_not_resend_the_cut_text(tmp_path):
    cut = '{"name": "aaaaaaaa'
    with HostileServer(lambda req: chat(cut, finish="length") if req.n == 0 else chat(GOOD)) as srv:

        async def go():
            async with _client(srv, tmp_path) as client:
                return await _ask(client, max_reasks=1)

        result = asyncio.run(go())
        first, second = srv.chat_requests()
    assert result.ok
    assert first.json["max_tokens"] == 100 and second.json["max_tokens"] == 150
    assert cut not in json.dumps(second.json["messages"])


def test_prompt_over_the_context_is_not_sent(tmp_path):
    with HostileServer(lambda req: chat(GOOD)) as srv:

        async def go():
            async with _client(srv, tmp_path, context_tokens=200) as client:
                budget = client.context_budget("h", 100)
                long = await client.chat_json(
                    stage="s",
                    endpoint="h",
                    model="m",
                    messages=[{"role": "user", "content": "word " * 400}],
                    schema=Thing,
                    schema_name="thing",
                    params={"max_tokens": 100},
                )
                return budget, long

        budget, result = asyncio.run(go())
        assert srv.chat_requests() == []
    assert budget == 200 - 100 - 32
    assert not result.ok and result.failure.startswith("prompt_too_long")


def test_transient_content_fault_is_asked_again_next_run(tmp_path):
    refusal = chat(None)
    refusal["choices"][0]["message"]["refusal"] = "I am busy"
    with HostileServer(lambda req: refusal) as srv:
        first, _ = _run(srv, tmp_path)
    with HostileServer(lambda req: chat(GOOD)) as srv:
        second, _ = _run(srv, tmp_path)
        third, _ = _run(srv, tmp_path)
        assert len(srv.chat_requests()) == 1  # the recovered answer is then replayed
    assert first.failure.startswith("refusal") and second.ok and third.ok and third.cached


# ---------------------------------------------------------------- preflight (one line, in seconds)
def _preflight(srv_url, uses, **kw):
    from wikipersona_data.llm.preflight import preflight

    kw.setdefault("profile", "vllm")
    kw.setdefault("api_key_env", "HOSTILE_TEST_KEY")
    ep = EndpointConfig(name="h", base_url=srv_url, **kw)

    async def go():
        async with LLMClient({"h": ep}) as client:
            await preflight(client, uses)
            return client

    return asyncio.run(go())


def _served(req):
    if req.path.endswith("/models"):
        return models("m", "e")
    if req.path.endswith("/embeddings"):
        return embeddings(1, model="e-served")
    return chat("OK", model="m-served")


def test_preflight_passes_and_records_served_models_and_cost():
    with HostileServer(_served) as srv:
        client = _preflight(srv.base_url, [("h", "m", "chat"), ("h", "e", "embed")])
    assert client.served == {"m": {"m-served"}, "e": {"e-served"}}
    lines = {(r["stage"], r["model"]) for r in client.ledger.summary()["by_stage_model"]}
    assert lines == {("preflight", "m"), ("preflight", "e")}


def test_preflight_connection_refused_names_the_url(unused_port):
    import time

    started = time.monotonic()
    with pytest.raises(LLMError) as err:
        _preflight(f"http://127.0.0.1:{unused_port}/v1", [("h", "m", "chat")])
    assert str(err.value) == (
        f"endpoint 'h' (http://127.0.0.1:{unused_port}/v1): connection refused http://127.0.0.1:{unused_port}/v1"
    )
    assert time.monotonic() - started < 10


def test_preflight_401_names_the_variable(monkeypatch):
    monkeypatch.delenv("HOSTILE_TEST_KEY", raising=False)
    with HostileServer(lambda req: error(401, "bad key sk-abc****wxyz")) as srv, pytest.raises(LLMError) as err:
        _preflight(srv.base_url, [("h", "m", "chat")])
    assert "HTTP 401" in str(err.value) and "HOSTILE_TEST_KEY (is not set)" in str(err.value)
    assert "****" not in str(err.value)


def test_preflight_unknown_model_lists_the_served_ones():
    with HostileServer(_served) as srv, pytest.raises(LLMError) as err:
        _preflight(srv.base_url, [("h", "gpt-9", "chat")])
    assert "does not serve model 'gpt-9'; it serves: e, m" in str(err.value)


def test_preflight_embeddings_not_served():
    def reply(req):
        if req.path.endswith("/embeddings"):
            return error(501, "This server does not support embeddings. Start it with `--embeddings`")
        return _served(req)

    with HostileServer(reply) as srv, pytest.raises(LLMError) as err:
        _preflight(srv.base_url, [("h", "m", "chat"), ("h", "e", "embed")])
    assert "does not serve embeddings (HTTP 501)" in str(err.value)


def test_refused_connection_is_not_called_a_timeout(tmp_path, unused_port):
    class FakeSrv:
        base_url = f"http://127.0.0.1:{unused_port}/v1"

    result, errors = _run(FakeSrv(), tmp_path, max_attempts=1)
    assert result.failure == "exhausted_retries: connection_refused" and errors["connection_refused"] == 1
    logged = (tmp_path / "errors.jsonl").read_text()
    assert "connection refused http://127.0.0.1" in logged and "timed out" not in logged


@pytest.fixture
def unused_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
