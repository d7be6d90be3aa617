"""Batch generation (issue 13 items 1-4): the OpenAI Batch API and ``vllm run-batch`` files, over real HTTP
against the simulator's batch API (``llm/sim/batch_api.py``).

The demo built in batch mode gives the golden bytes of the online build at half the price, also when the build
is SIGKILLed while its first batch is pending (the rerun polls the same batch, never submits a request twice);
failed and expired requests are asked again then rejected with their reason; a batch failing as a whole stops
the build loudly with nothing cached; the offline export / import round trip continues the build.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from test_build_demo import DEMO, GOLDEN_PARQUET, GOLDEN_STAGE_FILES, SIM, _sha256

from wikipersona_data.api import build
from wikipersona_data.cli import main
from wikipersona_data.errors import BudgetExceeded, ConfigError, InputError, LLMError
from wikipersona_data.llm import batch_files
from wikipersona_data.llm.batch_offline import export, import_results, pending_path
from wikipersona_data.llm.batches import MAX_QUEUE_REFUSALS, BatchRounds, Journal, RepliesPending
from wikipersona_data.llm.cache import CallCache
from wikipersona_data.llm.client import LLMClient
from wikipersona_data.llm.config import EndpointConfig, ModelPrice, PriceTable
from wikipersona_data.llm.deferral import Collector, Deferred, PendingCall
from wikipersona_data.llm.ledger import Ledger
from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.llm.transport import CHAT_URL, RequestRecord
from wikipersona_data.stages.fingerprint import stage_fingerprints
from wikipersona_data.stages.recipe import EndpointSpec, load_recipe

PRICES = PriceTable(
    {
        "sim-small": ModelPrice(input_per_m=1.0, output_per_m=4.0),
        "sim-large": ModelPrice(input_per_m=2.0, output_per_m=8.0),
    }
)


def _recipe(tmp_path: Path, mode: str, extra: str = "") -> Path:
    """The demo recipe with its endpoint in ``mode`` (and ``extra`` endpoint settings)."""
    text = DEMO.read_text(encoding="utf-8")
    anchor = "max_concurrency = 16\n"
    assert anchor in text
    path = tmp_path / f"demo-{mode}.toml"
    path.write_text(text.replace(anchor, f'{anchor}mode = "{mode}"\n{extra}'), encoding="utf-8")
    return path


def _journal_has_a_batch(path: Path) -> bool:
    try:
        return any(e.get("batch_id") for e in json.loads(path.read_text(encoding="utf-8"))["batches"])
    except (OSError, ValueError, KeyError):
        return False


def test_killed_batch_build_resumes_its_batch_and_gives_the_golden_bytes_at_the_batch_price(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "batch", "batch_poll_s = 0.05\n")
    work = tmp_path / "work"
    journal = work / "batch" / "journal.json"
    with SimServer(SimConfig(**SIM, batch_delay_s=3600)) as sim:
        cmd = [sys.executable, "-m", "wikipersona_data.cli", "build", str(recipe), "--work", str(work)]
        proc = subprocess.Popen(
            [*cmd, "--base-url", sim.base_url, "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 180
            while not _journal_has_a_batch(journal):
                assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                assert time.monotonic() < deadline, "no batch was journaled"
                time.sleep(0.05)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        first = sim.batch_submissions()
        assert first and sim.stats()["batches_created"] == 1  # the describe round, pending when killed
        sim.release_batches()  # the batch completes now instead of in an hour
        lines: list[str] = []
        release = build(recipe, work=work, base_url=sim.base_url, progress=False, echo=lines.append)
        stats, submissions = sim.stats(), sim.batch_submissions()
    assert any("resuming 1 journaled batch" in line for line in lines)
    assert {k: submissions[k] for k in first} == dict.fromkeys(first, 1)  # polled again, never submitted again
    assert set(submissions.values()) == {1}  # and no request of any round was paid twice
    entries = Journal.load(journal).entries.values()
    assert {e.state for e in entries} == {"imported"} and len(entries) == stats["batches_created"]
    # every call went through a batch: the online routes saw the preflight only
    assert not {"/v1/chat/completions", "/v1/embeddings"} & set(stats["requests_by_route"])
    data = {str(p.relative_to(release / "data")): _sha256(p) for p in (release / "data").rglob("*.parquet")}
    assert data == GOLDEN_PARQUET
    assert {name: _sha256(work / name) for name in GOLDEN_STAGE_FILES} == GOLDEN_STAGE_FILES
    ledger = json.loads((release / "manifest.json").read_text(encoding="utf-8"))["data"]["ledger"]
    (paid,) = ledger["by_mode"]
    assert paid["mode"] == "batch" and paid["calls"] == ledger["totals"]["calls"] == len(submissions)
    prices = load_recipe(DEMO).prices

    def listed_cost(row: dict) -> float:  # prompt-cache hits (a regenerated description's article): cached price
        price, cached = prices[row["model"]], row["cached_input_tokens"]
        cached_rate = price.input if price.cached_input is None else price.cached_input
        return (
            (row["input_tokens"] - cached) * price.input + cached * cached_rate + row["output_tokens"] * price.output
        ) / 1e6

    listed = sum(listed_cost(row) for row in ledger["by_stage_model"])
    assert paid["cost_usd"] == pytest.approx(listed / 2, abs=1e-5)  # the batch discount, on the same tokens
    assert ledger["totals"]["cost_usd"] == pytest.approx(paid["cost_usd"])


def test_a_batch_failing_as_a_whole_stops_the_build_in_one_line_and_caches_nothing(tmp_path, capsys) -> None:
    recipe = _recipe(tmp_path, "batch", "batch_poll_s = 0.02\n")
    work = tmp_path / "work"
    with SimServer(SimConfig(**SIM, batch_fail=True)) as sim:
        code = main(["build", str(recipe), "--work", str(work), "--base-url", sim.base_url, "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: batch batch_sim000001 ") and "failed as a whole" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert CallCache(work / "cache").keys() == set()  # no reply of it was cached as a success
    assert [e.state for e in Journal.load(work / "batch" / "journal.json").entries.values()] == ["failed"]


def test_switching_an_endpoint_to_batch_mode_changes_no_stage_fingerprint(tmp_path: Path) -> None:
    online = load_recipe(DEMO)
    batched = load_recipe(_recipe(tmp_path, "batch"))
    assert batched.endpoints["sim"].mode == "batch" and online.endpoints["sim"].mode == "online"
    assert stage_fingerprints(batched) == stage_fingerprints(online)
    with pytest.raises(ConfigError, match="mode"):
        load_recipe(_recipe(tmp_path, "sometimes"))


# ---------------------------------------------------------------------------------------------- client level


class _Batch:
    """An LLM client on a simulator endpoint in batch mode, and the rounds that answer it."""

    def __init__(self, tmp_path: Path, sim: SimServer, max_usd: float | None = None, **spec: Any) -> None:
        self.tmp_path, self.lines = tmp_path, []
        ep = EndpointConfig(name="sim", base_url=sim.base_url, profile="sim", alias="sim")
        self.cache = CallCache(tmp_path / "cache")
        self.client = LLMClient({"sim": ep}, cache=self.cache, ledger=Ledger(PRICES), max_usd=max_usd)
        self.client.collector = Collector({"sim": "batch"}, frozenset({"judge"}))
        self.spec = EndpointSpec(mode="batch", batch_poll_s=0.02, **spec)
        self.rounds = BatchRounds(tmp_path, self.client, {"sim": self.spec}, echo=self.lines.append)

    async def ask(self, prompts: list[str], model: str = "sim-small") -> list[Any]:
        """chat_text for every prompt, round after round until none waits for a batch."""

        async def one(text: str) -> Any:
            messages = [{"role": "user", "content": text}]
            return await self.client.chat_text(
                stage="judge", endpoint="sim", model=model, messages=messages, params={"max_tokens": 200}, max_reasks=0
            )

        for _ in range(10):
            try:
                return list(await asyncio.gather(*(one(p) for p in prompts)))
            except Deferred:
                await self.client.settle()
                await self.rounds.answer()
        raise AssertionError("more than 10 rounds")

    async def close(self) -> None:
        await self.rounds.aclose()
        await self.client.aclose()
        self.cache.close()

    def run(self, prompts: list[str], resume: bool = False) -> list[Any]:
        """:meth:`ask`, then close; with ``resume``, as a rerun of a killed build: the journaled batches first."""

        async def run() -> list[Any]:
            try:
                if resume:
                    await self.rounds.resume()
                return await self.ask(prompts)
            finally:
                await self.close()

        return asyncio.run(run())


def _ask(tmp_path: Path, cfg: SimConfig, prompts: list[str], **kw: Any) -> tuple[list[Any], dict, dict, _Batch]:
    with SimServer(cfg) as sim:
        batch = _Batch(tmp_path, sim, **kw)
        results = batch.run(prompts)
        return results, sim.stats(), sim.batch_submissions(), batch


PROMPTS = [f"question number {i}" for i in range(24)]


def test_failed_requests_are_asked_again_then_rejected_with_their_reason(tmp_path: Path) -> None:
    results, stats, submissions, batch = _ask(tmp_path, SimConfig(batch_fail_rate=0.7, seed=3), PROMPTS)
    ok = [r for r in results if r.ok]
    rejected = [r for r in results if not r.ok]
    assert ok and rejected  # both outcomes occur at this rate (the draws are seeded)
    for r in rejected:
        assert r.failure.startswith("batch_failed: http_500") and "after 3 batch attempts" in r.failure
        assert submissions[r.call_keys[0]] == 3 and not batch.cache.contains(r.call_keys[0])
    assert any(submissions[r.call_keys[0]] > 1 for r in ok)  # some got through on a resubmission
    assert all(batch.cache.contains(r.call_keys[0]) for r in ok)
    assert stats["batches_created"] == 3
    summary = batch.client.ledger.summary()
    assert [m["mode"] for m in summary["by_mode"]] == ["batch"] and summary["by_mode"][0]["calls"] == len(ok)


def test_expired_requests_end_as_rejects_naming_the_expiry(tmp_path: Path) -> None:
    results, stats, submissions, _ = _ask(tmp_path, SimConfig(batch_expire_rate=1.0), PROMPTS[:4])
    assert all(not r.ok and "batch_expired" in r.failure for r in results)
    assert set(submissions.values()) == {3} and stats["batch_status"] == {"expired": 3}


def test_a_reply_that_is_not_a_completion_is_never_cached_and_is_asked_again(tmp_path: Path) -> None:
    cfg = SimConfig(script=("malformed",))  # the first line of the first batch: a body without choices
    results, _, submissions, batch = _ask(tmp_path, cfg, PROMPTS[:3])
    assert all(r.ok for r in results)
    assert sorted(submissions.values()) == [1, 1, 2]
    errors = [json.loads(line) for line in (tmp_path / "cache" / "errors.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in errors] == ["invalid_envelope"]
    assert any("1 failed" in line for line in batch.lines)


def test_max_usd_is_checked_at_batch_prices_before_anything_is_submitted(tmp_path: Path) -> None:
    with SimServer(SimConfig()) as sim:
        batch = _Batch(tmp_path, sim, max_usd=0.000001)
        with pytest.raises(BudgetExceeded, match=r"batch prices; nothing submitted"):
            batch.run(PROMPTS[:2])
        assert sim.stats()["batches_created"] == 0 and sim.stats()["requests_by_route"] == {}


def _file_tokens() -> int:
    """The simulator's count of one 6-request input file of PROMPTS (what its enqueued-token limit sees)."""
    from wikipersona_data.llm.sim.batch_api import line_tokens

    lines = [{"body": {"messages": [{"role": "user", "content": p}]}} for p in PROMPTS[:6]]
    return sum(line_tokens(line) for line in lines)


def test_batches_refused_for_the_enqueued_token_limit_wait_and_are_created_again(tmp_path: Path) -> None:
    """OpenAI refuses a batch whose tokens would pass the model's enqueued-token limit (status failed,
    token_limit_exceeded, nothing run). Without a limit in the recipe, 4 files are submitted at once, the
    refused ones wait for one to finish and are created again on the same file: every request answered,
    none paid twice."""
    cfg = SimConfig(batch_delay_s=0.2, batch_enqueued_token_limit=2 * _file_tokens())
    results, stats, submissions, batch = _ask(tmp_path, cfg, PROMPTS, batch_max_requests=6)
    assert all(r.ok for r in results) and len(submissions) == len(PROMPTS)
    assert set(submissions.values()) == {1}  # a refused batch ran nothing
    assert stats["batch_status"]["failed"] >= 1 and stats["batch_status"]["completed"] == 4
    refused = [line for line in batch.lines if "refused for the enqueued token limit" in line]
    assert len(refused) == stats["batch_status"]["failed"]
    entries = Journal.load(tmp_path / "batch" / "journal.json").entries.values()
    assert [e.state for e in entries] == ["imported"] * 4 and sum(e.requests for e in entries) == len(PROMPTS)


def test_batch_max_enqueued_tokens_keeps_the_queue_below_the_limit(tmp_path: Path) -> None:
    """With the limit set (by our estimate, kept below the provider's count), files are cut by tokens and
    submitted only while they fit: the provider refuses nothing."""
    cfg = SimConfig(batch_delay_s=0.05, batch_enqueued_token_limit=2 * _file_tokens())
    results, stats, submissions, _ = _ask(tmp_path, cfg, PROMPTS, batch_max_enqueued_tokens=40)
    assert all(r.ok for r in results) and set(submissions.values()) == {1}
    assert "failed" not in stats["batch_status"]
    entries = list(Journal.load(tmp_path / "batch" / "journal.json").entries.values())
    assert len(entries) > 1 and all(0 < e.tokens <= 40 for e in entries)  # cut by tokens, not by requests
    with pytest.raises(ConfigError, match="~5 prompt tokens, over batch_max_enqueued_tokens 4: no batch could hold"):
        batch_files.split_files([_call("a" * 64, "m")], max_tokens=4)


def test_a_batch_the_queue_never_takes_fails_in_one_line(tmp_path: Path) -> None:
    cfg = SimConfig(batch_enqueued_token_limit=_file_tokens() // 2)  # less than the one file holds
    with SimServer(cfg) as sim:
        batch = _Batch(tmp_path, sim, batch_max_requests=6)
        with pytest.raises(LLMError) as err:
            batch.run(PROMPTS[:6])
        created = sim.stats()["batches_created"]
    line = str(err.value)
    assert "\n" not in line and "refused a batch of 6 requests" in line and "5 times in a row" in line
    assert "set batch_max_enqueued_tokens" in line and created == MAX_QUEUE_REFUSALS


def test_input_files_hold_one_model_and_respect_the_request_limit(tmp_path: Path) -> None:
    with SimServer(SimConfig()) as sim:
        batch = _Batch(tmp_path, sim, batch_max_requests=3)

        async def run() -> tuple[list[Any], list[Any]]:
            try:
                return await batch.ask(PROMPTS[:7]), await batch.ask(PROMPTS[7:9], model="sim-large")
            finally:
                await batch.close()

        small, large = asyncio.run(run())
        stats = sim.stats()
    assert all(r.ok for r in small + large)  # the simulator fails a file with two models or a repeated custom_id
    assert stats["batches_created"] == 3 + 1 and stats["batch_status"] == {"completed": 4}


def _call(key: str, model: str, size: int = 10) -> PendingCall:
    body = {"model": model, "messages": [{"role": "user", "content": "x" * size}]}
    return PendingCall(RequestRecord(key, CHAT_URL, body), {"model": model}, "judge", model, "sim", 5, 5)


def test_split_files_cuts_by_model_count_and_bytes_and_refuses_an_oversized_request() -> None:
    calls = [_call(f"{i:064x}", "a" if i % 3 else "b") for i in range(10)]
    line = len(batch_files.request_line(calls[0]))
    files = batch_files.split_files(calls, max_requests=3, max_bytes=2 * line)
    assert all(len({c.model for c in f.calls}) == 1 and len(f.calls) <= 2 for f in files)
    assert sorted(c.key for f in files for c in f.calls) == sorted(c.key for c in calls)
    assert all(len(f.content()) <= 2 * line for f in files)
    with pytest.raises(ConfigError, match="over batch_max_bytes"):
        batch_files.split_files([_call("f" * 64, "a", size=5000)], max_bytes=1024)


def test_a_journaled_batch_whose_id_was_lost_is_adopted_not_created_again(tmp_path: Path) -> None:
    with SimServer(SimConfig(batch_delay_s=0.05)) as sim:
        batch = _Batch(tmp_path, sim)

        async def kill_after_create() -> None:
            """As if killed between the create request and journaling its id."""
            with pytest.raises(RuntimeError, match="killed"):
                await batch.ask(PROMPTS[:2])
            journal = Journal.load(tmp_path / "batch" / "journal.json")
            assert journal.entries  # nothing below may create anything
            for entry in journal.entries.values():
                entry.batch_id, entry.state = None, "creating"
            journal.save()
            await batch.close()

        batch.rounds._poll = _never  # type: ignore[method-assign]
        asyncio.run(kill_after_create())
        again = _Batch(tmp_path, sim)
        results = again.run(PROMPTS[:2], resume=True)
        assert all(r.ok for r in results) and sim.stats()["batches_created"] == 1
    assert any("adopted batch_sim000001" in line for line in again.lines)


def test_a_batch_file_that_never_reached_the_provider_is_dropped_and_its_requests_asked_anew(tmp_path: Path) -> None:
    """Killed after journaling an input file but before the upload: nothing was paid, so the rerun does not
    submit that old file (written under the earlier run's recipe and --max-usd); the stages collect the
    requests again and they go out once, in this run's batch."""
    with SimServer(SimConfig(batch_delay_s=0.02)) as sim:
        batch = _Batch(tmp_path, sim)

        async def kill_before_upload() -> None:
            batch.rounds._submit = _never  # type: ignore[method-assign]
            with pytest.raises(RuntimeError, match="killed"):
                await batch.ask(PROMPTS[:3])
            await batch.close()

        asyncio.run(kill_before_upload())
        (old,) = Journal.load(tmp_path / "batch" / "journal.json").entries.values()
        assert old.state == "prepared" and sim.stats()["batches_created"] == 0
        again = _Batch(tmp_path, sim)
        results = again.run(PROMPTS[:3], resume=True)
        submissions, created = sim.batch_submissions(), sim.stats()["batches_created"]
    assert all(r.ok for r in results) and created == 1
    assert len(submissions) == 3 and set(submissions.values()) == {1}
    states = {e.id: e.state for e in Journal.load(tmp_path / "batch" / "journal.json").entries.values()}
    assert states[old.id] == "dropped" and sorted(states.values()) == ["dropped", "imported"]
    assert any("never reached the provider; dropped" in line for line in again.lines)


def test_a_paid_batch_whose_endpoint_left_the_recipe_is_one_line(tmp_path: Path) -> None:
    with SimServer(SimConfig(batch_delay_s=3600)) as sim:
        batch = _Batch(tmp_path, sim)
        batch.rounds._poll = _never  # type: ignore[method-assign]

        async def submit_then_die() -> None:
            with pytest.raises(RuntimeError, match="killed"):
                await batch.ask(PROMPTS[:2])
            await batch.close()

        asyncio.run(submit_then_die())
        again = _Batch(tmp_path, sim)
        again.rounds.specs = {}  # the recipe of the rerun has no endpoint "sim" any more
        with pytest.raises(ConfigError) as err:
            asyncio.run(again.rounds.resume())
        asyncio.run(again.close())
        created = sim.stats()["batches_created"]
    line = str(err.value)
    assert "\n" not in line and "batch_sim000001 (2 requests, model sim-small)" in line
    assert "endpoint 'sim', which the recipe no longer has" in line and created == 1


async def _never(*_args: Any) -> list[str]:
    raise RuntimeError("killed")


# ---------------------------------------------------------------------------------------------- offline files


def _answer(base_url: str, files: list[Path], out: Path, timeout: float = 30) -> None:
    """What `vllm run-batch` does with the exported files, done against a server (the simulator, or a real
    llama.cpp in tests/test_real_llm_offline.py) over HTTP, one line after the other."""
    lines = []
    with httpx2.Client(timeout=timeout) as http:
        for path in files:
            for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines()):
                request = json.loads(raw)
                reply = http.post(base_url.removesuffix("/v1") + request["url"], json=request["body"])
                response = {"status_code": reply.status_code, "request_id": f"vllm-{number}", "body": reply.json()}
                lines.append({"id": f"vllm-{number}", "custom_id": request["custom_id"], "response": response})
    out.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def test_offline_export_and_import_round_trip_continues_the_build(tmp_path: Path, capsys) -> None:
    recipe, work = _recipe(tmp_path, "offline"), tmp_path / "work"
    with pytest.raises(RepliesPending, match=r"8 requests \(stage describe\) wait") as stopped:
        build(recipe, work=work, progress=False)
    assert stopped.value.exit_code == 3
    first = batch_files.read_pending(pending_path(work))
    files = export(work, 3)
    exported = [json.loads(line)["custom_id"] for f in files for line in f.read_text().splitlines()]
    assert len(files) == 3 and sorted(exported) == sorted(first)  # every pending request once
    results = tmp_path / "results.jsonl"
    with SimServer(SimConfig(**SIM)) as sim:
        _answer(sim.base_url, files, results)
    rows = results.read_text().splitlines()
    key, bad = json.loads(rows[0])["custom_id"], json.loads(rows[1])
    bad["response"]["status_code"] = 500  # one request failed on the node: it stays pending
    rows[1] = json.dumps(bad)
    results.write_text("\n".join([*rows, rows[0]]) + "\n")  # and one line twice
    assert main(["batch", "import", str(work), str(results)]) == 0
    said = capsys.readouterr().out
    assert "7 replies imported" in said and "1 duplicate lines ignored" in said and "1 requests still pending" in said
    assert CallCache(work / "cache").peek(key)["mode"] == "offline"
    with pytest.raises(RepliesPending) as again:
        build(recipe, work=work, progress=False)
    assert "stage describe" in str(again.value)
    now = batch_files.read_pending(pending_path(work))
    assert bad["custom_id"] in now and not set(now) & (set(first) - {bad["custom_id"]})  # the build went on


def test_the_v1_shape_api_calls_in_batches_and_answers_from_vllm_files_gives_the_online_bytes(tmp_path: Path) -> None:
    """builders/wikipersona-v1.toml's shape on the demo: the API endpoint in batch mode, the answers from an
    offline vLLM endpoint (``vllm run-batch`` files, answered here over HTTP as vLLM would), in rounds, to the
    same recipe's online build's bytes (the vLLM profile joins the templates' user messages before sending, for
    chat templates that want alternating roles, so its answers are not the sim profile's golden ones)."""
    text = _recipe(tmp_path, "batch", "batch_poll_s = 0.02\n").read_text(encoding="utf-8")
    gen = '[endpoints.gen]\nprofile = "vllm"\nmode = "offline"\nalias = "sim"\n\n'
    text = text.replace("[prices.sim-large]", gen + "[prices.sim-large]", 1)
    text = text.replace('[stages.respond]\nendpoint = "sim"', '[stages.respond]\nendpoint = "gen"', 1)
    recipe, work = tmp_path / "v1-shape.toml", tmp_path / "work"
    recipe.write_text(text, encoding="utf-8")
    offline_rounds, exported = 0, 0
    with SimServer(SimConfig(**SIM)) as sim:
        while True:
            try:
                release = build(recipe, work=work, base_url=sim.base_url, progress=False, echo=lambda _line: None)
                break
            except RepliesPending as pending:
                assert "(stage respond)" in str(pending)  # only the answers wait for files
                offline_rounds += 1
                assert offline_rounds <= 6, "the offline rounds do not end"
                files = export(work, 2)
                bodies = [json.loads(line) for f in files for line in f.read_text().splitlines()]
                exported += len(bodies)
                assert {b["body"]["model"] for b in bodies} == {"sim-small"}
                chats = [b["body"]["messages"] for b in bodies if b["url"] == CHAT_URL]
                assert chats and all(m[i]["role"] != m[i + 1]["role"] for m in chats for i in range(len(m) - 1))
                results = tmp_path / f"results-{offline_rounds}.jsonl"
                _answer(sim.base_url, files, results)
                report = import_results(work, [results])
                assert report.imported == len(bodies) and not report.failed
        stats, submissions = sim.stats(), sim.batch_submissions()
        online = tmp_path / "v1-shape-online.toml"
        online.write_text(text.replace('mode = "batch"\n', "").replace('mode = "offline"\n', ""), encoding="utf-8")
        online_release = build(online, work=tmp_path / "online", base_url=sim.base_url, progress=False)

    def data(folder: Path) -> dict[str, str]:
        return {str(p.relative_to(folder / "data")): _sha256(p) for p in (folder / "data").rglob("*.parquet")}

    assert data(release) == data(online_release) and len(data(release)) == 3
    ledger = json.loads((release / "manifest.json").read_text(encoding="utf-8"))["data"]["ledger"]
    modes = {m["mode"]: m["calls"] for m in ledger["by_mode"]}
    assert modes == {"batch": len(submissions), "offline": exported} and stats["batches_created"] >= 4
    assert set(submissions.values()) == {1}  # nothing paid twice


def test_import_refuses_bad_lines_in_one_line_and_imports_nothing(tmp_path: Path, capsys) -> None:
    work = tmp_path / "work"
    calls = [_call(f"{i:064x}", "sim-small") for i in range(2)]
    pending_path(work).parent.mkdir(parents=True)
    batch_files.write_pending(pending_path(work), calls)
    good = {"custom_id": calls[0].key, "response": {"status_code": 200, "body": {"choices": []}}}
    cases = {
        "not JSON": "{oops",
        "is not a pending request": json.dumps({**good, "custom_id": "f" * 64}),
        "custom_id missing": json.dumps({"response": good["response"]}),
        "neither a response nor an error": json.dumps({"custom_id": calls[0].key}),
    }
    for expected, line in cases.items():
        path = tmp_path / "results.jsonl"
        path.write_text(json.dumps(good) + "\n" + line + "\n")
        assert main(["batch", "import", str(work), str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {path} line 2: ") and expected in err and "\n" not in err
    assert CallCache(work / "cache").keys() == set()
    with pytest.raises(InputError, match="no pending requests"):
        export(tmp_path / "elsewhere", 2)
    # a reply that is not a completion is a failed request, never cached
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(good) + "\n")
    report = import_results(work, [path])
    assert report.imported == 0 and calls[0].key in report.failed and "invalid_envelope" in report.failed[calls[0].key]
    assert CallCache(work / "cache").keys() == set()


def test_only_chat_and_embeddings_of_deferrable_stages_wait_for_a_batch(tmp_path: Path) -> None:
    collector = Collector({"b": "batch", "o": "online"}, frozenset({"judge"}))
    assert collector.wants("b", "judge", CHAT_URL) and collector.wants("b", "judge", "/v1/embeddings")
    assert not collector.wants("o", "judge", CHAT_URL)  # an online endpoint
    assert not collector.wants("b", "personas", CHAT_URL)  # a stage that needs its answers now
    assert not collector.wants("b", "judge", "/classify")  # a reward model: no batch API serves it
    with pytest.raises(ConfigError, match="need the call cache"):
        build(_recipe(tmp_path, "batch"), work=tmp_path / "w", progress=False, cache_mode="off")


def test_an_offline_endpoint_needs_no_server_and_gets_no_preflight(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    recipe = _recipe(tmp_path, "offline")
    text = recipe.read_text(encoding="utf-8").replace('profile = "sim"', 'profile = "vllm"', 1)
    recipe.write_text(text.replace("sim = { unsupported_claim_rate = 0.1, position_bias_rate = 0.1 }\n", ""))
    with pytest.raises(RepliesPending, match=r"8 requests \(stage describe\)"):
        build(recipe, work=tmp_path / "w", progress=False)  # nothing listens anywhere: no request was sent
    calls = batch_files.read_pending(pending_path(tmp_path / "w")).values()
    assert {c.spec["endpoint"] for c in calls} == {"sim"}  # the cache identity is the endpoint's name


def test_a_batch_cancelled_at_the_provider_is_submitted_again_and_completes(tmp_path: Path) -> None:
    """Someone cancels the build's batch at the provider (a dashboard, another script): its requests got no
    reply, so they count one attempt each and go into the next round's batch; nothing is lost or paid twice."""
    import threading

    with SimServer(SimConfig(batch_delay_s=1.0)) as sim:
        batch = _Batch(tmp_path, sim)
        cancelled: list[str] = []

        def cancel_the_first_batch() -> None:
            with httpx2.Client(base_url=sim.base_url, timeout=5) as http:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not cancelled:
                    listed = http.get("/batches").json()["data"]
                    if listed:
                        reply = http.post(f"/batches/{listed[-1]['id']}/cancel").json()
                        cancelled.append(reply["status"])
                    else:
                        time.sleep(0.02)

        canceller = threading.Thread(target=cancel_the_first_batch)
        canceller.start()

        async def run() -> list[Any]:
            try:
                return await batch.ask(PROMPTS[:5])
            finally:
                await batch.close()

        results = asyncio.run(run())
        canceller.join()
        stats, submissions = sim.stats(), sim.batch_submissions()
    assert cancelled == ["cancelled"]
    assert all(r.ok for r in results) and all(batch.cache.contains(r.call_keys[0]) for r in results)
    assert stats["batches_created"] == 2 and set(submissions.values()) == {2}
    assert any("cancelled" in line for line in batch.lines)


def test_an_unchanged_batch_is_not_reported_on_every_poll(tmp_path: Path) -> None:
    """A batch polled often while nothing changes gets one progress line per state, not one per poll (the
    elapsed time alone does not make a new line; an unchanged state is repeated once a minute)."""
    results, stats, _, batch = _ask(tmp_path, SimConfig(batch_delay_s=2.5), PROMPTS[:3])
    assert all(r.ok for r in results)
    polls = stats["requests_by_route"].get("/v1/batches/{batch_id}", 0)
    progress = [line for line in batch.lines if line.startswith("batch ") and line.endswith("elapsed")]
    assert polls >= 20, stats["requests_by_route"]  # polled every 0.02 s for 2.5 s
    waiting = [line for line in progress if ": in_progress, 0/3 done" in line]
    assert len(waiting) == 1 and len(progress) == len({line.rsplit(", ", 1)[0] for line in progress}), progress
