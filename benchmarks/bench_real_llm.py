"""Our LLM client next to the bare ``openai.AsyncOpenAI`` on a real server, plus per-stage figures of a tiny build.

    .venv/bin/python benchmarks/bench_real_llm.py [--calls 16] [--rounds 2] [--no-build]

Needs ``xllamacpp`` and the SmolLM2 model (``make model``). ``wikipersona llm-local --embeddings`` runs in a
child process (2 slots), so this process's CPU time is the client's alone.

1. Throughput and client CPU: ``calls`` short chat calls (distinct prompts, temperature 0, same seed,
   ``max_tokens`` small) at concurrency 2 (= the slots), as text and as JSON with ``response_format``
   json_schema, made by the bare SDK (semaphore + ``model_validate_json``, no cache/ledger/retries) and by
   :class:`LLMClient` (cache off) on the same prompts, alternating which goes first each round. Printed:
   calls/s, client CPU ms per call, and the ratios ours / bare. The server does the same work for both, so
   throughput should be ~1.0x; CPU per call shows what the cache key, ledger, limiter and retries cost.
2. Per stage of two tiny builds (``builders/local.toml``: every stage on the real model;
   ``builders/local-mixed.toml``: the simulator describes, the real model does the rest): calls, share of
   replies that parse (valid JSON for the stage's schema), share cut by ``length``, and the stage's rows
   that the filters kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openai
import pydantic

from wikipersona_data.llm.cache import CallCache
from wikipersona_data.llm.callstats import StageCalls, chat_calls_by_stage
from wikipersona_data.llm.client import LLMClient
from wikipersona_data.llm.config import EndpointConfig, ModelPrice, PriceTable
from wikipersona_data.llm.ledger import Ledger
from wikipersona_data.llm.local import MODEL_NAME, default_model_path, llm_local_process
from wikipersona_data.llm.profiles import get_profile

ROOT = Path(__file__).resolve().parents[1]
THINGS = ["fruit", "river", "city", "colour", "tree", "bird", "metal", "planet", "sport", "tool", "dance", "fish"]


class Pick(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: str = pydantic.Field(max_length=40)


def prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [{"role": "user", "content": f"In one word, name a {THINGS[i % len(THINGS)]} (answer {i // len(THINGS) + 1})."}]
        for i in range(n)
    ]


def response_format() -> dict[str, Any]:
    from wikipersona_data.llm.structured import strict_schema

    schema = strict_schema(Pick)
    return {"type": "json_schema", "json_schema": {"name": "pick", "schema": schema, "strict": True}}


async def bare(url: str, msgs: list[list[dict[str, str]]], as_json: bool, max_tokens: int) -> int:
    sdk = openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0, timeout=300)
    gate = asyncio.Semaphore(2)
    extra = {"response_format": response_format()} if as_json else {}

    async def one(m: list[dict[str, str]]) -> bool:
        async with gate:
            r = await sdk.chat.completions.create(
                model=MODEL_NAME, messages=m, temperature=0.0, max_tokens=max_tokens, seed=1, **extra
            )
        content = r.choices[0].message.content or ""
        if as_json:
            try:
                Pick.model_validate_json(content)
            except pydantic.ValidationError:
                return False
        return bool(content.strip()) and r.choices[0].finish_reason == "stop"

    try:
        return sum(await asyncio.gather(*(one(m) for m in msgs)))
    finally:
        await sdk.close()


async def ours(url: str, profile: str, msgs: list[list[dict[str, str]]], as_json: bool, max_tokens: int) -> int:
    endpoints = {"chat": EndpointConfig(name="chat", base_url=url, profile=profile, max_concurrency=2, timeout_s=300)}
    params = {"temperature": 0.0, "max_tokens": max_tokens, "seed": 1}
    with tempfile.TemporaryDirectory() as tmp:
        free = Ledger(PriceTable({MODEL_NAME: ModelPrice(input_per_m=0.0, output_per_m=0.0)}))
        async with LLMClient(endpoints, cache=CallCache(tmp, mode="off"), ledger=free) as client:

            async def one(m: list[dict[str, str]]) -> bool:
                common = {"stage": "bench", "endpoint": "chat", "model": MODEL_NAME, "messages": m, "params": params}
                if as_json:
                    r = await client.chat_json(**common, schema=Pick, schema_name="pick", max_reasks=0)
                else:
                    r = await client.chat_text(**common)
                return r.ok

            return sum(await asyncio.gather(*(one(m) for m in msgs)))


def timed(fn: Any) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    ok = asyncio.run(fn())
    return time.perf_counter() - wall, time.process_time() - cpu, ok


def client_figures(url: str, calls: int, rounds: int, max_tokens: int) -> None:
    profile = "llamacpp" if get_profile("llamacpp").enforces_json_schema else "vllm"
    msgs = prompts(calls)
    timed(lambda: bare(url, msgs[:2], False, max_tokens))  # warm-up: model pages, first-request costs
    print(f"1. {calls} calls x {rounds} rounds, concurrency 2, max_tokens {max_tokens}; our client's profile {profile}")
    print(f"{'kind':<6}{'client':<8}{'calls/s':>9}{'cpu ms/call':>13}{'ok':>6}")
    for as_json in (False, True):
        kind = "json" if as_json else "text"
        runs: dict[str, list[tuple[float, float, int]]] = {"bare": [], "ours": []}
        for r in range(rounds):
            order = ("bare", "ours") if r % 2 == 0 else ("ours", "bare")
            for who in order:
                if who == "bare":
                    runs[who].append(timed(lambda j=as_json: bare(url, msgs, j, max_tokens)))
                else:
                    runs[who].append(timed(lambda j=as_json: ours(url, profile, msgs, j, max_tokens)))
        med = {}
        for who, got in runs.items():
            rate = statistics.median(calls / w for w, _, _ in got)
            cpu_ms = statistics.median(1000 * c / calls for _, c, _ in got)
            ok = min(k for _, _, k in got)
            med[who] = (rate, cpu_ms)
            print(f"{kind:<6}{who:<8}{rate:>9.2f}{cpu_ms:>13.2f}{ok:>4}/{calls}")
        print(
            f"{kind:<6}ratio ours/bare: throughput {med['ours'][0] / med['bare'][0]:.2f}x, "
            f"client CPU per call {med['ours'][1] / med['bare'][1]:.2f}x"
        )


def stage_figures(chat_url: str, embed_url: str, recipe: Path) -> None:
    from wikipersona_data.cli import main

    with tempfile.TemporaryDirectory(prefix="bench-real-build-") as tmp:
        work = Path(tmp) / "work"
        args = ["build", str(recipe), "--work", str(work), "--out", str(Path(tmp) / "release"), "--no-progress"]
        args += ["--endpoint-url", f"chat={chat_url}", "--endpoint-url", f"embed={embed_url}"]
        started = time.perf_counter()
        code = main(args)
        print(f"\n2. tiny build {recipe.name}: exit {code} in {time.perf_counter() - started:.0f} s")
        stage_table(work)


def stage_table(work: Path) -> None:
    """Per stage of a build's work dir: calls, share that parse, share cut by ``length``, rows the filters kept."""
    calls = chat_calls_by_stage(work)
    print(f"{'stage':<10}{'calls':>6}{'parsed':>8}{'length':>8}{'kept by filters':>17}")
    for stage in ("personas", "describe", "questions", "respond", "judge", "prefixes"):
        c = calls.get(stage, StageCalls(0, 0, 0))
        kept = _kept_by_filters(work / stage)
        if not c.calls and kept is None:
            continue
        n = c.calls or 1
        print(
            f"{stage:<10}{c.calls:>6}{c.parsed / n:>8.0%}{c.length / n:>8.0%}"
            f"{'-' if kept is None else f'{kept[0]}/{kept[1]}':>17}"
        )


def _kept_by_filters(stage_dir: Path) -> tuple[int, int] | None:
    """(rows kept, rows that reached the filters): rejects whose reason a filter owns count as cut."""
    if not (stage_dir / "rows.jsonl").exists():
        return None
    rows = sum(1 for line in (stage_dir / "rows.jsonl").read_text().splitlines() if line.strip())
    owned: set[str] = set()
    if (stage_dir / "filters.json").exists():
        owned = set(json.loads((stage_dir / "filters.json").read_text()).get("reasons", {}))
    cut = 0
    if (stage_dir / "rejects.jsonl").exists():
        for line in (stage_dir / "rejects.jsonl").read_text().splitlines():
            if line.strip() and json.loads(line).get("reason") in owned:
                cut += 1
    return rows, rows + cut


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--no-build", action="store_true", help="Skip the per-stage figures of a tiny build.")
    ap.add_argument(
        "--recipe",
        type=Path,
        action="append",
        help="Recipe of a tiny build (repeatable; default: builders/local.toml and builders/local-mixed.toml).",
    )
    opts = ap.parse_args()
    if not default_model_path().is_file():
        print(f"no model at {default_model_path()}; run: make model", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--embeddings", "--slots", "2", "--threads", "2"]
        with llm_local_process(args, lines=2, stderr=Path(tmp) / "llm-local.stderr") as (chat_url, embed_url):
            client_figures(chat_url, opts.calls, opts.rounds, opts.max_tokens)
            if not opts.no_build:
                for recipe in opts.recipe or [ROOT / "builders" / n for n in ("local.toml", "local-mixed.toml")]:
                    stage_figures(chat_url, embed_url, recipe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
