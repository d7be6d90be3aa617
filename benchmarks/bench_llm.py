"""LLM client throughput, overhead and cache replay, measured side by side in one run.

    .venv/bin/python benchmarks/bench_llm.py [--calls 2000] [--concurrency 64] [--latency-ms 200]

The simulator runs in a *separate process* so the client's CPU time is measured alone.

1. Cold run: ``calls`` chat_json calls (schema-validated) through a simulator with ``latency-ms`` latency
   at ``concurrency``. Ideal throughput is ``concurrency / latency``; we print achieved / ideal
   (target >= 0.9). The same calls made with the bare SDK (``AsyncOpenAI`` + semaphore +
   ``model_validate_json``, no cache/ledger/retries) run right after as the baseline, so the ratio
   client / bare separates our overhead from what the machine and the simulator allow.
   The same cold run against latency ± latency/4 (same mean) shows how much of the gap is the
   synchronised waves of a fixed latency rather than per-call cost.
2. Warm run: the same calls again with a fresh client and cache object (index built from disk), all
   served from the cache: calls per second (target >= 5,000) and cold / warm wall time.
3. Overhead: the same number of calls against a zero-latency simulator with the cache off: client
   process CPU seconds per call (the simulator's CPU is not in it).

Every timed run runs as a build's stages do (``stages.pipeline.run_all_stages``): in a settled heap
(:func:`wikipersona_data.heap.settled_heap`), so a full garbage collection does not stall the event loop.
``--no-settle`` leaves the collector as it is, to show what that costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pydantic

from wikipersona_data.heap import settled_heap
from wikipersona_data.llm.cache import CallCache
from wikipersona_data.llm.client import LLMClient
from wikipersona_data.llm.config import EndpointConfig, ModelPrice, PriceTable
from wikipersona_data.llm.ledger import Ledger

_SIM = """
import sys
from wikipersona_data.llm.sim import SimConfig, SimServer
with SimServer(SimConfig(latency_ms=float(sys.argv[1]), jitter_ms=float(sys.argv[2]))) as sim:
    print(sim.base_url, flush=True)
    sys.stdin.read()
"""


# Each timed run's surroundings: a build's settled heap, or contextlib.nullcontext with --no-settle.
like_a_build: Callable[[], contextlib.AbstractContextManager[None]] = settled_heap


class Answer(pydantic.BaseModel):
    topic: str
    points: list[str]
    confidence: float


def start_sim(latency_ms: float, jitter_ms: float = 0.0) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SIM, str(latency_ms), str(jitter_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def process_cpu_s(pid: int) -> float | None:
    """utime + stime of another process (Linux /proc), to show how much of the machine the simulator used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_sim(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


async def run_calls(base_url: str, cache: CallCache, calls: int, concurrency: int) -> tuple[float, float, int]:
    """(wall seconds, client CPU seconds, calls ok)."""
    ep = EndpointConfig(name="sim", base_url=base_url, profile="sim", max_concurrency=concurrency)
    prices = PriceTable({"sim-large": ModelPrice(input_per_m=1.0, output_per_m=4.0)})  # illustrative
    async with LLMClient({"sim": ep}, cache=cache, ledger=Ledger(prices)) as client:

        async def one(i: int) -> bool:
            result = await client.chat_json(
                stage="bench",
                endpoint="sim",
                model="sim-large",
                messages=[
                    {"role": "system", "content": "You answer questions about famous people as JSON."},
                    {"role": "user", "content": f"Question {i}: what does person {i % 97} think about tea?"},
                ],
                schema=Answer,
                schema_name="answer",
                params={"temperature": 0.0, "max_tokens": 200, "seed": 1},
            )
            return result.ok

        with like_a_build():
            cpu0, wall0 = time.process_time(), time.perf_counter()
            results = await asyncio.gather(*(one(i) for i in range(calls)))
            return time.perf_counter() - wall0, time.process_time() - cpu0, sum(results)


async def run_bare(base_url: str, calls: int, concurrency: int) -> tuple[float, float, int]:
    """The same calls with the bare SDK: what the machine and simulator allow without our layer."""
    import httpx2
    import openai

    from wikipersona_data.llm.structured import strict_schema

    http_client = openai.DefaultAioHttpClient(
        timeout=60.0, limits=httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    )
    sdk = openai.AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=0, http_client=http_client)
    gate = asyncio.Semaphore(concurrency)
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": strict_schema(Answer), "strict": True}}

    async def one(i: int) -> bool:
        async with gate:
            reply = await sdk.chat.completions.create(
                model="sim-large",
                messages=[
                    {"role": "system", "content": "You answer questions about famous people as JSON."},
                    {"role": "user", "content": f"Question {i}: what does person {i % 97} think about tea?"},
                ],
                response_format=fmt,  # type: ignore[arg-type]
                temperature=0.0,
                max_tokens=200,
                seed=1,
            )
        Answer.model_validate_json(reply.choices[0].message.content or "")
        return True

    with like_a_build():
        cpu0, wall0 = time.process_time(), time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(calls)))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await sdk.close()
    return wall, cpu, sum(results)


def main() -> None:
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())  # other work on the machine skews wall times
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--no-settle", action="store_true", help="leave the garbage collector as it is")
    args = parser.parse_args()
    global like_a_build
    if args.no_settle:
        like_a_build = contextlib.nullcontext
    n, conc, latency = args.calls, args.concurrency, args.latency_ms / 1000.0

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_sim(args.latency_ms)
        try:
            cache = CallCache(Path(tmp) / "cache")
            sim_cpu0 = process_cpu_s(proc.pid)
            cold_wall, cold_cpu, ok = asyncio.run(run_calls(url, cache, n, conc))
            sim_cpu1 = process_cpu_s(proc.pid)
            cache.close()
            warm_cache = CallCache(Path(tmp) / "cache")
            warm_wall, warm_cpu, warm_ok = asyncio.run(run_calls(url, warm_cache, n, conc))
            hits = warm_cache.hits
            warm_cache.close()
            bare_wall, _bare_cpu, bare_ok = asyncio.run(run_bare(url, n, conc))
        finally:
            stop_sim(proc)
        proc, url = start_sim(args.latency_ms, args.latency_ms / 4)
        try:
            jitter_wall, _jitter_cpu, jitter_ok = asyncio.run(
                run_calls(url, CallCache(Path(tmp) / "jitter-cache"), n, conc)
            )
        finally:
            stop_sim(proc)
        proc, url = start_sim(0.0)
        try:
            zero_wall, zero_cpu, zero_ok = asyncio.run(run_calls(url, CallCache(tmp, mode="off"), n, conc))
            zbare_wall, zbare_cpu, _ = asyncio.run(run_bare(url, n, conc))
        finally:
            stop_sim(proc)

    ideal = conc / latency
    achieved = n / cold_wall
    replay = n / warm_wall
    print(
        f"calls={n} concurrency={conc} latency={args.latency_ms:.0f}ms (simulator in its own process; "
        f"each run {'with the collector as it is' if args.no_settle else 'in a settled heap'})"
    )
    print(f"cold:   {cold_wall:7.2f} s wall, {achieved:8.1f} calls/s, ideal {ideal:.1f} calls/s, ok={ok}/{n}")
    print(f"        throughput / ideal = {achieved / ideal:.3f} (target >= 0.9)")
    sim_cpu = None if sim_cpu0 is None or sim_cpu1 is None else sim_cpu1 - sim_cpu0
    print(
        f"        CPU used during the cold run: client {cold_cpu:.2f} s, simulator "
        f"{'n/a' if sim_cpu is None else f'{sim_cpu:.2f} s'} over {cold_wall:.2f} s wall on {os.cpu_count()} cores; "
        f"load average before the run {load_before}"
    )
    print(
        f"jitter:  {jitter_wall:6.2f} s wall, {n / jitter_wall:8.1f} calls/s with latency {args.latency_ms:.0f} "
        f"± {args.latency_ms / 4:.0f} ms (same mean), ok={jitter_ok}/{n}"
    )
    print(
        f"        throughput / ideal = {n / jitter_wall / ideal:.3f}: with a fixed latency all {conc} replies "
        "of a wave land together and queue on the client's one event loop; jitter spreads them, as real servers do"
    )
    print(f"bare SDK: {bare_wall:6.2f} s wall, {n / bare_wall:8.1f} calls/s, ok={bare_ok}/{n}")
    print(f"        bare / ideal = {n / bare_wall / ideal:.3f}; client / bare = {bare_wall / cold_wall:.3f}")
    print(f"warm:   {warm_wall:7.3f} s wall, {replay:8.0f} calls/s from cache, hits={hits}, ok={warm_ok}/{n}")
    print(f"        replay rate / 5000 = {replay / 5000:.2f} (target >= 1.0)")
    print(f"        cold / warm wall time = {cold_wall / warm_wall:.0f}x")
    print(f"        warm client CPU per call = {warm_cpu / n * 1e6:.0f} us")
    print(f"zero-latency, cache off: {zero_wall:.2f} s wall, {n / zero_wall:.0f} calls/s, ok={zero_ok}/{n}")
    print(f"        client CPU per call = {zero_cpu / n * 1e3:.3f} ms ({zero_cpu:.2f} s CPU for {n} calls)")
    print(
        f"        bare SDK CPU per call = {zbare_cpu / n * 1e3:.3f} ms ({n / zbare_wall:.0f} calls/s); "
        f"our layer adds {(zero_cpu - zbare_cpu) / n * 1e3:.3f} ms"
    )


if __name__ == "__main__":
    main()
