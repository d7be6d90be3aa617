"""Throughput of the LLM simulator at concurrency 64, measured with a raw aiohttp client.

Prints requests/s at latency 0 (cost of the server itself) and at 200 ms (where the ideal is
concurrency / latency = 320 req/s, less a partial last wave), plus the ratio to it, from one run side by side.
Also measures the openai AsyncOpenAI client at latency 0, which is what the pipeline really uses.

    .venv/bin/python benchmarks/bench_llm_sim.py [--requests 2000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp
import openai

from wikipersona_data.llm.sim import SimConfig, SimServer

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "score": {"type": "integer", "minimum": 1, "maximum": 5}},
    "required": ["answer", "score"],
    "additionalProperties": False,
}


def _body(i: int) -> dict:
    return {
        "model": "sim-small",
        "messages": [
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": f"Question number {i}: what should a vegan marathon runner eat?"},
        ],
        "response_format": {"type": "json_schema", "json_schema": {"name": "bench", "schema": SCHEMA, "strict": True}},
    }


async def _raw(base_url: str, total: int, concurrency: int) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                async with session.post(f"{base_url}/chat/completions", json=_body(i)) as response:
                    assert response.status == 200
                    await response.read()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - start)


async def _openai(base_url: str, total: int, concurrency: int) -> float:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    semaphore = asyncio.Semaphore(concurrency)

    async def call(i: int) -> None:
        async with semaphore:
            await client.chat.completions.create(**_body(i))

    start = time.perf_counter()
    await asyncio.gather(*(call(i) for i in range(total)))
    elapsed = time.perf_counter() - start
    await client.close()
    return total / elapsed


def measure(latency_ms: float, total: int, concurrency: int, use_openai: bool) -> float:
    with SimServer(SimConfig(latency_ms=latency_ms)) as sim:
        runner = _openai if use_openai else _raw
        rate = asyncio.run(runner(sim.base_url, total, concurrency))
        assert sim.stats()["peak_concurrency"] <= concurrency
        return rate


@contextlib.contextmanager
def _cli_server(latency_ms: float) -> Iterator[str]:
    """The simulator as its own process (``wikipersona llm-sim``): no GIL shared with the client."""
    cmd = [sys.executable, "-m", "wikipersona_data.cli", "llm-sim", "--latency-ms", str(latency_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def measure_process(latency_ms: float, total: int, concurrency: int) -> float:
    with _cli_server(latency_ms) as base_url:
        return asyncio.run(_raw(base_url, total, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    c = args.concurrency
    zero_raw = measure(0.0, args.requests, c, use_openai=False)
    zero_openai = measure(0.0, args.requests, c, use_openai=True)
    slow_total = max(c * 8, args.requests // 2)
    slow_raw = measure(200.0, slow_total, c, use_openai=False)
    zero_process = measure_process(0.0, args.requests, c)
    slow_process = measure_process(200.0, slow_total, c)
    # Requests go out in waves of `c`; the last wave may be partial, so the reachable rate is a bit below c/0.2.
    ideal = slow_total / (math.ceil(slow_total / c) * 0.2)
    print("server on a thread of the client's process (SimServer, as tests use it):")
    _report(c, 0, "raw aiohttp client", zero_raw)
    _report(c, 0, "openai AsyncOpenAI", zero_openai)
    _report(c, 200, "raw aiohttp client", slow_raw, ideal)
    print("server as its own process (wikipersona llm-sim):")
    _report(c, 0, "raw aiohttp client", zero_process)
    _report(c, 200, "raw aiohttp client", slow_process, ideal)


def _report(concurrency: int, latency_ms: int, client: str, rate: float, ideal: float | None = None) -> None:
    line = f"  concurrency {concurrency}, latency {latency_ms:3d} ms, {client:<20} {rate:8.1f} req/s"
    if ideal:
        line += f"  (reachable {ideal:.0f} = requests / (waves x 0.2 s), ratio {rate / ideal:.2f})"
    print(line)


if __name__ == "__main__":
    main()
