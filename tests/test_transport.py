"""The transport seam (issue 12, item 4): stages build request records, a transport executes them.

A second, trivial transport answers in-process (the simulator's reply functions, no HTTP, no server): the demo's
stages produce the golden bytes through it, so a batch or offline transport can replace HTTP without a stage
changing. The records it receives are OpenAI batch-file lines whose ``custom_id`` is the call's cache key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from test_build_demo import DEMO, GOLDEN_CACHE_KEYS, GOLDEN_CACHE_KEYS_SHA256, GOLDEN_STAGE_FILES, SIM

from wikipersona_data.llm.config import EndpointConfig
from wikipersona_data.llm.sim import SimConfig
from wikipersona_data.llm.sim.chat import completion_body, generate_choice, parse_chat
from wikipersona_data.llm.sim.embeddings import embeddings_body
from wikipersona_data.llm.sim.server import SimState
from wikipersona_data.llm.transport import CHAT_URL, EMBEDDINGS_URL, Delivery, RequestRecord
from wikipersona_data.stages.pipeline import open_context, run_all_stages
from wikipersona_data.stages.recipe import load_recipe

NOWHERE = "http://127.0.0.1:9/v1"  # nothing listens: a request that went over HTTP would fail the build


class InProcessTransport:
    """Answers each record with the simulator's reply functions, in this process; keeps every record."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.state = SimState(cfg)
        self.records: list[RequestRecord] = []

    async def send(self, record: RequestRecord, endpoint: EndpointConfig, headers: dict[str, str]) -> Delivery:
        self.records.append(record)
        body: dict[str, Any]
        if record.url == CHAT_URL:
            plan = parse_chat(record.body, self.cfg)
            choices = [generate_choice(plan, self.cfg, i, "ok", self.state.counters) for i in range(plan.n)]
            body = completion_body(plan, self.cfg, choices, self.state.cached_tokens(plan))
        else:
            assert record.url == EMBEDDINGS_URL
            body = embeddings_body(record.body, self.cfg)
        return Delivery(json.dumps(body, ensure_ascii=False).encode("utf-8"))

    async def aclose(self) -> None:
        pass


def test_stages_make_the_golden_bytes_through_another_transport(tmp_path: Path) -> None:
    transport = InProcessTransport(SimConfig(**SIM))

    async def run() -> None:
        async with open_context(load_recipe(DEMO), tmp_path, base_url=NOWHERE, transport=transport) as ctx:
            ctx.progress = False
            await run_all_stages(ctx)

    asyncio.run(run())
    got = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in GOLDEN_STAGE_FILES}
    assert got == GOLDEN_STAGE_FILES

    keys = [r.custom_id for r in transport.records]
    assert len(keys) == len(set(keys)) == GOLDEN_CACHE_KEYS  # each paid call sent once, none twice
    assert hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest() == GOLDEN_CACHE_KEYS_SHA256
    cached = {json.loads(line)["key"] for p in (tmp_path / "cache" / "calls").glob("*.jsonl") for line in p.open()}
    assert cached == set(keys)  # custom_id is the cache key the reply was stored under


def test_a_record_is_a_batch_file_line() -> None:
    record = RequestRecord(custom_id="k" * 64, url=CHAT_URL, body={"model": "m", "messages": []})
    line = json.loads(json.dumps(record.batch_line()))
    assert line == {"custom_id": "k" * 64, "method": "POST", "url": "/v1/chat/completions", "body": record.body}


def test_open_model_servers_get_alternating_roles_and_the_same_cache_key(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A prompt split into two user messages (shared part first, for prompt caching) reaches llama.cpp, vLLM and
    Ollama as one user message, since open models' chat templates refuse two in a row; OpenAI and the
    simulator get it as written. The cache key is the same either way (it is computed on the prompt)."""
    from wikipersona_data.llm.client import LLMClient, alternating

    messages = [
        {"role": "system", "content": "You answer."},
        {"role": "user", "content": "Card: likes tea."},
        {"role": "user", "content": "Question: what to drink?"},
    ]
    sent: dict[str, RequestRecord] = {}
    monkeypatch.setenv("WIKIPERSONA_TEST_NO_KEY", "sk-test")  # OpenAI's profile needs a key to send
    for profile in ("sim", "llamacpp", "vllm", "ollama", "openai"):
        transport = InProcessTransport(SimConfig(**SIM))
        ep = EndpointConfig(name="local", base_url=NOWHERE, profile=profile, api_key_env="WIKIPERSONA_TEST_NO_KEY")

        async def ask(client_transport: InProcessTransport = transport, endpoint: EndpointConfig = ep) -> None:
            async with LLMClient({"local": endpoint}, transport=client_transport) as client:
                await client.chat_text(stage="respond", endpoint="local", model="sim-large", messages=messages)

        asyncio.run(ask())
        (sent[profile],) = transport.records
    assert sent["sim"].body["messages"] == sent["openai"].body["messages"] == messages
    joined = [messages[0], {"role": "user", "content": "Card: likes tea.\n\nQuestion: what to drink?"}]
    for profile in ("llamacpp", "vllm", "ollama"):
        assert sent[profile].body["messages"] == joined == alternating(messages)
    assert len({record.custom_id for record in sent.values()}) == 1
    # an assistant turn in between (a re-ask) is kept: roles already alternate
    reask = [*messages, {"role": "assistant", "content": "{"}, {"role": "user", "content": "JSON please."}]
    assert alternating(reask) == [*joined, *reask[3:]]
