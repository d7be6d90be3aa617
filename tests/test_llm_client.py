"""The LLM client against the simulator over real HTTP: retries, fail-fast, re-asks, limits, cache, budget."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydantic
import pytest

from wikipersona_data.errors import BudgetExceeded, LLMError
from wikipersona_data.llm.cache import CallCache
from wikipersona_data.llm.client import LLMClient
from wikipersona_data.llm.config import EndpointConfig, ModelPrice, PriceTable
from wikipersona_data.llm.ledger import Ledger
from wikipersona_data.llm.sim import SimConfig, SimServer

KEY_ENV = "WIKIPERSONA_TEST_LLM_KEY"


class Person(pydantic.BaseModel):
    name: str
    hobbies: list[str]


def _messages(i: int = 0) -> list[dict]:
    return [
        {"role": "system", "content": "You describe people."},
        {"role": "user", "content": f"Describe person number {i} who likes chess and tea."},
    ]


def _client(sim: SimServer, cache_dir: Path | None = None, *, mode="use", prices=None, max_usd=None, **ep_kw):
    ep_kw.setdefault("profile", "sim")
    ep_kw.setdefault("api_key_env", KEY_ENV)
    ep_kw.setdefault("backoff_base_s", 0.01)
    ep = EndpointConfig(name="local", base_url=sim.base_url, **ep_kw)
    cache = CallCache(cache_dir, mode=mode) if cache_dir is not None else None
    return LLMClient({"local": ep}, cache=cache, ledger=Ledger(prices), max_usd=max_usd)


async def _ask(client: LLMClient, i: int = 0, **kw):
    kw.setdefault("params", {"temperature": 0.0, "max_tokens": 300, "seed": 7})
    return await client.chat_json(
        stage="describe", endpoint="local", model="sim-large", messages=_messages(i), schema=Person,
        schema_name="person", **kw,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _no_real_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


def test_429_then_success_honours_retry_after():
    with SimServer(SimConfig(script=("429", "ok"), retry_after_s=0.3)) as sim:

        async def run():
            async with _client(sim) as client:
                started = time.perf_counter()
                result = await _ask(client)
                return result, time.perf_counter() - started, client.ledger.summary()

        result, elapsed, summary = asyncio.run(run())
        assert result.ok and isinstance(result.value, Person)
        assert elapsed >= 0.3  # waited what the server asked, not the 10 ms backoff
        assert sim.stats()["requests"] == 2
        assert summary["totals"]["errors"] == {"http_429": 1}
        assert summary["totals"]["requests"] == 2


def test_401_fails_fast_naming_the_env_var(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-123456")
    with SimServer(SimConfig(api_key="sk-right-key-654321")) as sim:

        async def run():
            async with _client(sim, max_attempts=6) as client:
                await _ask(client)

        started = time.perf_counter()
        with pytest.raises(LLMError, match=f"HTTP 401.*{KEY_ENV}") as info:
            asyncio.run(run())
        assert time.perf_counter() - started < 1.0
        assert sim.stats()["requests"] == 1
        assert "sk-wrong-key-123456" not in str(info.value)
        assert "\n" not in str(info.value)


def test_openai_profile_without_key_says_which_variable(tmp_path):
    with SimServer(SimConfig()) as sim:

        async def run():
            async with _client(sim, profile="openai") as client:
                await _ask(client)

        with pytest.raises(LLMError, match=f"set the environment variable {KEY_ENV}"):
            asyncio.run(run())
        assert sim.stats()["requests"] == 0


def test_correct_key_is_sent_from_the_environment(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-right-key-654321")
    with SimServer(SimConfig(api_key="sk-right-key-654321")) as sim:

        async def run():
            async with _client(sim, profile="openai") as client:
                return await _ask(client)

        assert asyncio.run(run()).ok
        assert sim.stats()["by_status"] == {200: 1}


def test_bounded_retries_end_in_a_recorded_failure(tmp_path):
    with SimServer(SimConfig(script=("503",) * 10)) as sim:

        async def run():
            async with _client(sim, tmp_path, max_attempts=3) as client:
                return await _ask(client), client.ledger.summary()

        result, summary = asyncio.run(run())
        assert not result.ok and result.value is None
        assert result.failure == "exhausted_retries: 503"
        assert sim.stats()["requests"] == 3
        assert summary["totals"]["errors"] == {"exhausted_retries": 1, "http_503": 3}
        errors = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
        assert [e["kind"] for e in errors] == ["exhausted_retries"]
        assert not any(p.stat().st_size for p in (tmp_path / "calls").glob("*.jsonl"))  # nothing failed is data


def test_timeouts_and_dropped_connections_are_retried():
    with SimServer(SimConfig(script=("slow", "drop", "ok"), slow_s=3.0)) as sim:

        async def run():
            async with _client(sim, timeout_s=0.3) as client:
                return await _ask(client), client.ledger.summary()

        result, summary = asyncio.run(run())
        assert result.ok
        assert sim.stats()["requests"] == 3
        assert summary["totals"]["errors"] == {"connection": 1, "timeout": 1}


def test_a_broken_http_body_is_retried_and_never_cached(tmp_path):
    with SimServer(SimConfig(script=("malformed", "ok"))) as sim:

        async def run():
            async with _client(sim, tmp_path) as client:
                text = await client.chat_text(stage="s", endpoint="local", model="sim-small", messages=_messages())
                return text, client.ledger.summary()

        text, summary = asyncio.run(run())
        assert text.ok and text.text
        assert sim.stats()["requests"] == 2
        assert summary["totals"]["errors"] == {"invalid_body": 1}
        assert len(CallCache(tmp_path).keys()) == 1


def test_bad_request_is_a_per_row_failure_without_retry():
    with SimServer(SimConfig()) as sim:

        async def run():
            async with _client(sim) as client:
                return await _ask(client, params={"temperature": 5.0})

        result = asyncio.run(run())
        assert not result.ok and result.failure.startswith("http_400: 'temperature'")
        assert sim.stats()["requests"] == 1


def test_unknown_model_raises():
    with SimServer(SimConfig()) as sim:

        async def run():
            async with _client(sim) as client:
                await client.chat_text(stage="s", endpoint="local", model="nope", messages=_messages())

        with pytest.raises(LLMError, match=r"no model 'nope'.*HTTP 404"):
            asyncio.run(run())
        assert sim.stats()["requests"] == 1


def test_malformed_reply_is_reasked_with_a_new_attempt_key(tmp_path):
    with SimServer(SimConfig(script=("malformed", "ok"))) as sim:

        async def run():
            async with _client(sim, tmp_path) as client:
                return await _ask(client), client.ledger.summary()

        result, summary = asyncio.run(run())
        assert result.ok and len(result.call_keys) == 2 and len(set(result.call_keys)) == 2
        assert sim.stats()["requests"] == 2
        assert summary["totals"]["errors"] == {"invalid_json": 1}
        # both raw replies were cached, including the broken one
        cache = CallCache(tmp_path)
        assert all(cache.get(k) is not None for k in result.call_keys)


def test_schema_violations_exhaust_reasks_and_fail_loudly():
    with SimServer(SimConfig(enforce_schema=False, violation_rate=1.0)) as sim:

        async def run():
            async with _client(sim) as client:
                return await _ask(client, max_reasks=2)

        result = asyncio.run(run())
        assert not result.ok and result.value is None
        assert result.failure.startswith("schema_violation: ")
        assert len(result.call_keys) == 3 and sim.stats()["requests"] == 3
        assert result.raw_text  # the rejected text is kept for the rejects file


@pytest.mark.parametrize(("outcome", "reason"), [("length", "length"), ("refusal", "refusal: ")])
def test_truncated_and_refused_replies_are_not_accepted(outcome, reason):
    with SimServer(SimConfig(script=(outcome,) * 2)) as sim:

        async def run():
            async with _client(sim) as client:
                r_json = await _ask(client, max_reasks=0)
                r_text = await client.chat_text(stage="s", endpoint="local", model="sim-small", messages=_messages())
                return r_json, r_text

        r_json, r_text = asyncio.run(run())
        assert not r_json.ok and r_json.failure.startswith(reason)
        assert not r_text.ok and r_text.text is None and r_text.failure.startswith(reason)


def test_a_length_cut_is_reasked_with_more_tokens_a_new_seed_and_a_frequency_penalty(tmp_path):
    """A reply cut at max_tokens by a small model is mostly a loop ("2.2.2.2...", seen on SmolLM2-135M): more
    tokens alone only lengthen it, so the re-ask also penalises repeated tokens."""
    with SimServer(SimConfig(script=("length", "ok"))) as sim:

        async def run():
            async with _client(sim, tmp_path) as client:
                return await _ask(client, max_reasks=1)

        result = asyncio.run(run())
    assert result.ok and len(result.call_keys) == 2
    cache = CallCache(tmp_path)
    first, reask = (cache.get(k)["spec"]["params"] for k in result.call_keys)
    assert "frequency_penalty" not in first  # the recipe's request is sent as asked
    assert reask["frequency_penalty"] == 0.5 and reask["max_tokens"] > first["max_tokens"]
    assert reask["seed"] != first.get("seed")


@pytest.mark.parametrize(
    ("profile", "style", "override"), [("ollama", "fenced", None), ("llamacpp", "preamble", "instructed")]
)
def test_non_enforcing_profiles_instruct_and_extract(profile, style, override):
    """ollama is not trusted to enforce; llamacpp does, unless the recipe says json_schema = "instructed"."""
    with SimServer(SimConfig(json_style=style)) as sim:

        async def run():
            async with _client(sim, profile=profile, json_schema=override) as client:
                return await _ask(client)

        result = asyncio.run(run())
        assert result.ok, result.failure
        assert result.raw_text.startswith("```json" if style == "fenced" else "Sure!")
        assert sim.stats()["by_schema"] == {"person": 1}  # the marker line named the schema


def test_concurrency_never_exceeds_the_bound_and_reaches_it_when_saturated():
    with SimServer(SimConfig(latency_ms=40)) as sim:

        async def run():
            async with _client(sim, max_concurrency=4) as client:
                results = await asyncio.gather(*(_ask(client, i) for i in range(24)))
                return results, client.limits("local").concurrency.peak

        results, client_peak = asyncio.run(run())
        assert all(r.ok for r in results)
        assert sim.stats()["peak_concurrency"] == 4
        assert client_peak == 4


def test_a_burst_of_calls_is_admitted_a_window_at_a_time(tmp_path):
    """60 calls handed over at once with 4 slots: only a window of 8 is prepared (key built, cache looked
    up) before the first reply is handled, so replies never wait behind the preparation of the whole burst."""
    with SimServer(SimConfig(latency_ms=40)) as sim:

        async def run():
            async with _client(sim, tmp_path / "cache", max_concurrency=4) as client:
                tasks = [asyncio.ensure_future(_ask(client, i)) for i in range(60)]
                first = await next(asyncio.as_completed(tasks))
                looked_up, finished = client.cache.misses, sum(t.done() for t in tasks)
                results = await asyncio.gather(*tasks)
                return first, looked_up, finished, results, client.limits("local")

        first, looked_up, finished, results, limits = asyncio.run(run())
        assert first.ok and all(r.ok for r in results)
        # the window of 8, plus one call let in per call that has left; without it all 60 would come first
        assert finished >= 1
        assert looked_up <= 8 + finished < 60
        assert limits.peak_admitted == limits.admission_window == 8
        assert limits.admitted == 0
        assert limits.concurrency.peak == 4


def test_a_429_burst_halves_the_concurrency_once_then_it_grows_back():
    with SimServer(SimConfig(latency_ms=20, script=("429",) * 8, retry_after_s=0.02)) as sim:

        async def run():
            async with _client(sim, max_concurrency=8) as client:
                limiter = client.limits("local").concurrency
                burst = await asyncio.gather(*(_ask(client, i) for i in range(8)))
                after_burst = (limiter.limit, limiter.decreases)
                for i in range(8, 40):
                    await _ask(client, i)
                return burst, after_burst, limiter.limit

        burst, (limit_after_burst, decreases), limit_later = asyncio.run(run())
        assert all(r.ok for r in burst)
        assert decreases == 1 and limit_after_burst in (4, 5)  # halved once, maybe regrown by one window
        assert limit_later == 8
        assert sim.stats()["by_status"] == {200: 40, 429: 8}


def test_identical_concurrent_calls_are_sent_once():
    with SimServer(SimConfig(latency_ms=30)) as sim:

        async def run():
            async with _client(sim) as client:
                return await asyncio.gather(*(_ask(client, 0) for _ in range(5)))

        results = asyncio.run(run())
        assert len({r.raw_text for r in results}) == 1 and sum(not r.cached for r in results) == 1
        assert sim.stats()["requests"] == 1


def test_cache_hit_replay_and_only_mode(tmp_path):
    with SimServer(SimConfig()) as sim:

        async def run(mode):
            async with _client(sim, tmp_path, mode=mode) as client:
                first = await _ask(client, 1)
                vectors = await client.embed(stage="e", endpoint="local", model="sim-embed", texts=["a", "b"])
                return first, vectors, client.ledger.summary()

        cold, cold_vec, cold_summary = asyncio.run(run("use"))
        warm, warm_vec, warm_summary = asyncio.run(run("use"))
        assert sim.stats()["requests"] == 2  # the second run paid nothing
        assert not cold.cached and warm.cached and warm.value == cold.value and warm_vec == cold_vec
        assert warm_summary["cache"] == {"hits": 2, "misses": 0}
        assert cold_summary["cache"] == {"hits": 0, "misses": 2}
        refreshed, _, _ = asyncio.run(run("refresh"))
        assert not refreshed.cached and sim.stats()["requests"] == 4
        url = sim.base_url
    # the server is gone: `only` replays from disk, and a miss is a clear error
    ep = EndpointConfig(name="local", base_url=url, profile="sim", api_key_env=KEY_ENV)

    async def offline(i):
        async with LLMClient({"local": ep}, cache=CallCache(tmp_path, mode="only")) as client:
            return await _ask(client, i)

    assert asyncio.run(offline(1)).value == cold.value
    with pytest.raises(LLMError, match="cache miss in --cache only mode for stage describe"):
        asyncio.run(offline(2))


def test_torn_cache_line_is_tolerated_by_the_client(tmp_path):
    with SimServer(SimConfig()) as sim:

        async def run():
            async with _client(sim, tmp_path) as client:
                return await asyncio.gather(*(_ask(client, i) for i in range(6)))

        first = asyncio.run(run())
        shard = tmp_path / "calls" / f"{first[0].call_keys[0][:2]}.jsonl"
        with open(shard, "ab") as fh:
            fh.write(b'{"key":"' + b"f" * 64 + b'","spec":{"api":"chat","mo')
        sim.reset_stats()
        again = asyncio.run(run())
        assert [r.value for r in again] == [r.value for r in first]
        assert sim.stats()["requests"] == 0


_KILLED_RUN = """
import asyncio, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_llm_client import Person, _messages
from wikipersona_data.llm.cache import CallCache
from wikipersona_data.llm.client import LLMClient
from wikipersona_data.llm.config import EndpointConfig

async def main():
    ep = EndpointConfig(name="local", base_url=sys.argv[1], profile="sim", max_concurrency=4)
    async with LLMClient({"local": ep}, cache=CallCache(Path(sys.argv[2]))) as client:
        async def one(i):
            r = await client.chat_json(stage="describe", endpoint="local", model="sim-large", messages=_messages(i),
                                       schema=Person, schema_name="person", params={"temperature": 0.0, "seed": 7})
            print("done", i, flush=True)
        await asyncio.gather(*(one(i) for i in range(int(sys.argv[4]))))

asyncio.run(main())
"""


def test_sigkill_mid_run_leaves_a_usable_cache_and_rerun_pays_only_for_the_rest(tmp_path):
    total = 40
    with SimServer(SimConfig(latency_ms=20)) as sim:
        proc = subprocess.Popen(
            [sys.executable, "-c", _KILLED_RUN, sim.base_url, str(tmp_path), str(Path(__file__).parent), str(total)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )  # fmt: skip
        done = 0
        while done < 12:
            line = proc.stdout.readline()
            assert line, "the child exited early"
            done += line.startswith("done")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        paid_before = sim.stats()["requests"]
        assert 12 <= paid_before < total
        survivors = CallCache(tmp_path)
        stored = len(survivors.keys())
        sim.reset_stats()

        async def rerun():
            async with _client(sim, tmp_path, max_concurrency=4) as client:
                return await asyncio.gather(
                    *(_ask(client, i, params={"temperature": 0.0, "seed": 7}) for i in range(total))
                )

        results = asyncio.run(rerun())
        assert all(r.ok for r in results)
        assert sum(r.cached for r in results) == stored >= 12
        assert sim.stats()["requests"] == total - stored  # the rerun pays only for what was not stored
        assert paid_before - stored <= 4  # lost: at most the calls in flight at the kill (the concurrency bound)
        assert survivors.torn_lines <= 1


def test_budget_refusal_after_in_flight_calls_finish(tmp_path):
    prices = PriceTable({"sim-large": ModelPrice(input_per_m=1000.0, output_per_m=1000.0)})
    # one call projects (prompt ~30 + 300 max tokens) * $1000/M ~= $0.33: the cap admits 3 in flight
    with SimServer(SimConfig(latency_ms=30)) as sim:

        async def run():
            client = _client(sim, tmp_path, prices=prices, max_usd=1.0, max_concurrency=8)
            try:
                results = await asyncio.gather(*(_ask(client, i) for i in range(8)), return_exceptions=True)
                return results, client.ledger
            finally:
                await client.aclose()

        results, ledger = asyncio.run(run())
        refused = [r for r in results if isinstance(r, BudgetExceeded)]
        done = [r for r in results if not isinstance(r, BaseException)]
        assert refused and done and len(refused) + len(done) == 8
        assert all(r.ok for r in done)
        assert "spent" in str(refused[0]) and "refused a call of stage describe" in str(refused[0])
        assert sim.stats()["requests"] == len(done)  # refused calls never reached the server
        assert ledger.spent_usd <= 1.0
        cache = CallCache(tmp_path)
        assert all(cache.get(r.call_keys[0]) is not None for r in done)  # everything paid is kept


def test_ledger_matches_the_simulators_usage(tmp_path):
    with SimServer(SimConfig(script=("429", "ok", "503"))) as sim:

        async def run():
            async with _client(sim, tmp_path) as client:
                results = [await _ask(client, i) for i in range(5)]
                text = await client.chat_text(stage="answer", endpoint="local", model="sim-small", messages=_messages())
                return results, text, client.ledger.summary()

        results, text, summary = asyncio.run(run())
        stats = sim.stats()
        rows = {r["stage"]: r for r in summary["by_stage_model"]}
        assert summary["totals"]["requests"] == stats["requests"] == 8
        assert rows["describe"]["input_tokens"] == sum(r.usage["prompt_tokens"] for r in results)
        assert rows["describe"]["output_tokens"] == sum(r.usage["completion_tokens"] for r in results)
        assert rows["answer"]["input_tokens"] == text.usage["prompt_tokens"]
        stored = [
            json.loads(line)["usage"]
            for p in (tmp_path / "calls").glob("*.jsonl")
            for line in p.read_text().splitlines()
        ]
        assert summary["totals"]["input_tokens"] == sum(u["prompt_tokens"] for u in stored)
        assert stats["by_model"] == {"sim-large": 7, "sim-small": 1}


def test_api_key_appears_in_no_file_written(tmp_path, monkeypatch, caplog):
    secret = "sk-wikipersona-DISTINCTIVE-7f3a9c1e5b"
    monkeypatch.setenv(KEY_ENV, secret)
    with SimServer(SimConfig(api_key=secret, script=("429", "ok", "malformed", "ok", "503", "503"))) as sim:

        async def run():
            async with _client(sim, tmp_path, profile="openai", max_attempts=2) as client:
                results = [await _ask(client, i) for i in range(3)]
                await _ask(client, 9, params={"temperature": 9.0})  # a 400 goes to errors.jsonl
                (tmp_path / "ledger.json").write_text(json.dumps(client.ledger.summary()))
                (tmp_path / "repr.txt").write_text(repr(client) + repr(client.endpoints) + repr(client.cache))
                return results

        caplog.set_level("DEBUG")
        results = asyncio.run(run())
    assert [r.ok for r in results] == [True, True, False]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "errors.jsonl" for p in written) and len(written) >= 4
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
    assert secret not in caplog.text
