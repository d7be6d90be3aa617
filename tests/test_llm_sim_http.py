"""The simulator's housekeeping routes, embeddings wire forms, prompt caching and the CLI process."""

from __future__ import annotations

import base64
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator

import httpx2
import openai
import pytest

from wikipersona_data.llm.sim import SimConfig, SimServer


@pytest.fixture()
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(seed=2)) as server:
        yield server


def _root(sim: SimServer) -> str:
    return sim.base_url.removesuffix("/v1")


def test_stats_and_reset_over_http(sim: SimServer) -> None:
    client = openai.OpenAI(base_url=sim.base_url, api_key="test", max_retries=0)
    client.chat.completions.create(model="sim-large", messages=[{"role": "user", "content": "hello"}])
    client.models.list()
    stats = httpx2.get(f"{_root(sim)}/sim/stats").json()
    assert stats["requests"] == 2
    assert stats["by_status"] == {"200": 2}
    assert stats["by_model"] == {"sim-large": 1}
    assert stats["requests_by_route"] == {"/v1/chat/completions": 1, "/v1/models": 1}
    assert httpx2.post(f"{_root(sim)}/sim/reset").status_code == 200
    assert sim.stats()["requests"] == 0 and sim.stats()["by_status"] == {}


def test_models_routes(sim: SimServer) -> None:
    client = openai.OpenAI(base_url=sim.base_url, api_key="test", max_retries=0)
    assert client.models.retrieve("sim-embed").id == "sim-embed"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-unknown")
    assert httpx2.get(f"{sim.base_url}/nothing/here").status_code == 404


def test_embeddings_base64_tokens_dimensions_and_errors(sim: SimServer) -> None:
    url = f"{sim.base_url}/embeddings"
    as_float = httpx2.post(url, json={"model": "sim-embed", "input": "grounded personas"}).json()
    as_b64 = httpx2.post(
        url, json={"model": "sim-embed", "input": "grounded personas", "encoding_format": "base64"}
    ).json()
    raw = base64.b64decode(as_b64["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(decoded) == 256
    assert decoded == pytest.approx(as_float["data"][0]["embedding"], abs=1e-6)
    tokens = httpx2.post(url, json={"model": "sim-embed", "input": [[1, 2, 3], [4]], "dimensions": 64}).json()
    assert [len(d["embedding"]) for d in tokens["data"]] == [64, 64]
    assert httpx2.post(url, json={"model": "sim-embed", "input": []}).status_code == 400
    assert httpx2.post(url, json={"model": "nope", "input": "x"}).status_code == 404
    client = openai.OpenAI(base_url=sim.base_url, api_key="test", max_retries=0)
    sim.set_script(("429",))
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model="sim-embed", input="x")


def test_repeated_long_system_prompt_reports_cached_tokens() -> None:
    system = {"role": "system", "content": "Persona guidelines. " + "word " * 1500}
    with SimServer(SimConfig()) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        first = client.chat.completions.create(model="sim-small", messages=[system, {"role": "user", "content": "a"}])
        second = client.chat.completions.create(model="sim-small", messages=[system, {"role": "user", "content": "b"}])
        other = client.chat.completions.create(model="sim-large", messages=[system, {"role": "user", "content": "b"}])
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached > 1024 and cached % 128 == 0 and cached <= second.usage.prompt_tokens
    assert second.usage.prompt_tokens - cached < 128 + 8  # everything up to the differing user message
    assert other.usage.prompt_tokens_details.cached_tokens == 0  # a cache is per model


def test_shared_prefix_is_cached_in_blocks_and_a_changed_head_is_not() -> None:
    """vLLM-like rule (16-token blocks, no minimum): the shared leading messages are counted, not the rest;
    a request that differs in its first message shares nothing, even if its tail was seen."""
    system = {"role": "system", "content": "You judge answers. " * 10}
    card = {"role": "user", "content": "The person: a retired marine biologist who loves tide pools. " * 6}
    with SimServer(SimConfig(cache_block_tokens=16, cache_min_tokens=0)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)

        def ask(*messages: dict) -> openai.types.CompletionUsage:
            return client.chat.completions.create(model="sim-large", messages=list(messages)).usage

        first = ask(system, card, {"role": "user", "content": "Question one?"})
        second = ask(system, card, {"role": "user", "content": "Question two, a different one?"})
        changed_head = ask({"role": "system", "content": "Other."}, card, {"role": "user", "content": "Question one?"})
    shared = (4 + 40) + (4 + 72)  # framing + tokens of the system and card messages
    assert first.prompt_tokens_details.cached_tokens == 0
    assert second.prompt_tokens_details.cached_tokens == shared // 16 * 16
    assert changed_head.prompt_tokens_details.cached_tokens == 0


def _non_loopback_address() -> str | None:
    """This machine's own address on a non-loopback interface (a UDP connect sends no packet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_sim_routes_refuse_non_loopback_peers() -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback interface on this machine")
    with SimServer(SimConfig(host=address, allow_remote=True)) as server:
        assert server.base_url.startswith(f"http://{address}:")
        assert httpx2.get(f"{server.base_url}/models").status_code == 200
        assert httpx2.get(f"{_root(server)}/sim/stats").status_code == 403
        assert httpx2.post(f"{_root(server)}/sim/reset").status_code == 403


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "wikipersona_data.cli", "llm-sim", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_cli_prints_url_first_serves_and_stops_cleanly() -> None:
    env = {**os.environ, "SIM_TEST_KEY": "k-123"}
    proc = _cli("--seed", "4", "--api-key-env", "SIM_TEST_KEY", "--script", "429,ok", env=env)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        client = openai.OpenAI(base_url=base_url, api_key="k-123", max_retries=0)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="sim-small", messages=[{"role": "user", "content": "hi"}])
        assert client.chat.completions.create(model="sim-small", messages=[{"role": "user", "content": "hi"}]).choices
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0).models.list()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "k-123" not in out + err


def test_cli_refuses_non_loopback_host_and_missing_key() -> None:
    proc = _cli("--host", "0.0.0.0")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and out == ""
    assert err.strip().splitlines() == [
        "error: refusing to listen on non-loopback host '0.0.0.0' without --allow-remote"
    ]
    env = {k: v for k, v in os.environ.items() if k != "SIM_ABSENT_KEY"}
    proc = _cli("--api-key-env", "SIM_ABSENT_KEY", env=env)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "SIM_ABSENT_KEY" in err and len(err.strip().splitlines()) == 1
