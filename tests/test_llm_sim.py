"""The simulator over real HTTP with the real openai client: protocol, faults, determinism."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator

import httpx2
import jsonschema
import openai
import pytest

from wikipersona_data.llm.sim import SimConfig, SimServer

PERSONA_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3, "maxLength": 40},
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "diet": {"enum": ["vegan", "omnivore", "kosher"]},
        "kind": {"const": "persona"},
        "living": {"type": "boolean"},
        "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4, "uniqueItems": True},
        "claims": {"type": "array", "items": {"$ref": "#/$defs/Claim"}, "minItems": 1},
    },
    "required": ["name", "age", "score", "diet", "kind", "living", "nickname", "tags", "claims"],
    "additionalProperties": False,
    "$defs": {
        "Claim": {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "evidence": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "supported": {"type": ["boolean", "null"]},
            },
            "required": ["text", "evidence", "supported"],
            "additionalProperties": False,
        }
    },
}


def _json_schema_format(name: str = "persona", schema: dict | None = None) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema or PERSONA_SCHEMA, "strict": True}}


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture()
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(seed=7)) as server:
        yield server


def _client(sim: SimServer, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.base_url, api_key="test", max_retries=0, **kw)


def test_plain_chat_reply_has_openai_shape_and_usage(sim: SimServer) -> None:
    reply = _client(sim).chat.completions.create(model="sim-small", messages=_user("Suggest vegan recipes for runners"))
    choice = reply.choices[0]
    assert reply.object == "chat.completion"
    assert reply.model == "sim-small-2026-11"
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert choice.message.refusal is None
    words = {w.strip(".").lower() for w in choice.message.content.split()}
    assert words & {"vegan", "recipes", "runners", "suggest"}
    usage = reply.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert reply.system_fingerprint and reply.id.startswith("chatcmpl-")


def test_json_schema_reply_validates(sim: SimServer) -> None:
    client = _client(sim)
    for topic in ("Ada Lovelace", "a marathon runner", "a chess player", "a vegan chef"):
        reply = client.chat.completions.create(
            model="sim-large", messages=_user(f"Describe {topic}"), response_format=_json_schema_format()
        )
        jsonschema.validate(json.loads(reply.choices[0].message.content), PERSONA_SCHEMA)
    assert sim.stats()["by_schema"] == {"persona": 4}


def test_same_seed_same_request_gives_identical_body() -> None:
    body = {"model": "sim-small", "messages": _user("Tell me about gardening"), "temperature": 0.7}
    replies = []
    for _ in range(2):
        with SimServer(SimConfig(seed=3)) as server:
            replies.append(httpx2.post(f"{server.base_url}/chat/completions", json=body).text)
    with SimServer(SimConfig(seed=4)) as server:
        other = httpx2.post(f"{server.base_url}/chat/completions", json=body).text
    assert replies[0] == replies[1]
    assert (
        json.loads(other)["choices"][0]["message"]["content"]
        != json.loads(replies[0])["choices"][0]["message"]["content"]
    )


def test_script_outcomes_in_order_with_retry_after(sim: SimServer) -> None:
    sim.set_script(("429", "ok", "401", "500", "503"))
    client = _client(sim)
    with pytest.raises(openai.RateLimitError) as rate_limited:
        client.chat.completions.create(model="sim-small", messages=_user("one"))
    headers = rate_limited.value.response.headers
    assert float(headers["retry-after"]) == pytest.approx(0.05)
    assert headers["retry-after-ms"] == "50"
    assert client.chat.completions.create(model="sim-small", messages=_user("two")).choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="sim-small", messages=_user("three"))
    with pytest.raises(openai.InternalServerError) as server_error:
        client.chat.completions.create(model="sim-small", messages=_user("four"))
    assert server_error.value.status_code == 500
    with pytest.raises(openai.InternalServerError) as overloaded:
        client.chat.completions.create(model="sim-small", messages=_user("five"))
    assert overloaded.value.status_code == 503
    stats = sim.stats()
    assert stats["by_status"] == {200: 1, 401: 1, 429: 1, 500: 1, 503: 1}
    assert stats["script_left"] == []


def test_openai_client_retries_through_scripted_429s(sim: SimServer) -> None:
    sim.set_script(("429", "429", "ok"))
    client = openai.OpenAI(base_url=sim.base_url, api_key="test", max_retries=2)
    assert client.chat.completions.create(model="sim-small", messages=_user("retry me")).choices[0].message.content
    assert sim.stats()["by_outcome"] == {"429": 2, "ok": 1}


def test_drop_slow_malformed_length_refusal(sim: SimServer) -> None:
    client = _client(sim, timeout=0.5)
    sim.set_script(("drop",))
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="sim-small", messages=_user("dropped"))
    sim.set_script(("slow",))
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="sim-small", messages=_user("slow"))
    sim.set_script(("malformed",))
    reply = client.chat.completions.create(
        model="sim-small", messages=_user("broken json"), response_format=_json_schema_format()
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.choices[0].message.content)
    sim.set_script(("malformed",))
    raw = httpx2.post(f"{sim.base_url}/chat/completions", json={"model": "sim-small", "messages": _user("broken body")})
    assert raw.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw.text)
    sim.set_script(("length",))
    reply = client.chat.completions.create(model="sim-small", messages=_user("cut this answer short please"))
    assert reply.choices[0].finish_reason == "length"
    full = client.chat.completions.create(model="sim-small", messages=_user("cut this answer short please"))
    assert full.choices[0].message.content.startswith(reply.choices[0].message.content)
    assert len(full.choices[0].message.content) > len(reply.choices[0].message.content)
    sim.set_script(("refusal",))
    reply = client.chat.completions.create(model="sim-small", messages=_user("refuse"))
    assert reply.choices[0].message.content is None and reply.choices[0].message.refusal
    outcomes = sim.stats()["by_outcome"]
    for kind in ("drop", "slow", "malformed", "length", "refusal"):
        assert outcomes[kind] >= 1


def test_random_faults_are_seeded_and_a_retried_request_eventually_succeeds() -> None:
    cfg = SimConfig(seed=11, fault_rate=0.5, faults=("429", "500", "503"))
    sequences = []
    for _ in range(2):
        with SimServer(cfg) as server:
            body = {"model": "sim-small", "messages": _user("flaky request")}
            statuses = [httpx2.post(f"{server.base_url}/chat/completions", json=body).status_code for _ in range(30)]
            sequences.append(statuses)
    assert sequences[0] == sequences[1]
    assert 200 in sequences[0] and set(sequences[0]) - {200}


def test_wrong_api_key_is_401() -> None:
    with SimServer(SimConfig(api_key="sekret")) as server:
        with pytest.raises(openai.AuthenticationError) as err:
            openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0).models.list()
        assert err.value.body["code"] == "invalid_api_key"
        models = openai.OpenAI(base_url=server.base_url, api_key="sekret", max_retries=0).models.list()
        assert [m.id for m in models.data] == ["sim-small", "sim-large", "sim-embed", "sim-reward"]


def test_errors_have_openai_shape(sim: SimServer) -> None:
    client = _client(sim)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-nope", messages=_user("x"))
    assert missing.value.body["code"] == "model_not_found"
    raw = httpx2.post(
        f"{sim.base_url}/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert raw.status_code == 400 and set(raw.json()["error"]) >= {"message", "type", "code"}
    with pytest.raises(openai.BadRequestError, match="streaming not supported"):
        client.chat.completions.create(model="sim-small", messages=_user("x"), stream=True)


def test_n_choices_and_max_tokens_truncation(sim: SimServer) -> None:
    client = _client(sim)
    reply = client.chat.completions.create(model="sim-small", messages=_user("Write about mountains and rivers"), n=3)
    contents = [c.message.content for c in reply.choices]
    assert [c.index for c in reply.choices] == [0, 1, 2] and len(set(contents)) == 3
    for key in ("max_tokens", "max_completion_tokens"):
        short = client.chat.completions.create(model="sim-small", messages=_user("Write about mountains"), **{key: 5})
        assert short.choices[0].finish_reason == "length"
        assert short.usage.completion_tokens == 5


def test_embeddings_related_texts_are_closer(sim: SimServer) -> None:
    data = _client(sim).embeddings.create(
        model="sim-embed", input=["vegan diet recipes", "vegan recipes for dinner", "quantum chromodynamics"]
    )
    vectors = [d.embedding for d in data.data]

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert all(math.isclose(cosine(v, v), 1.0, rel_tol=1e-6) for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    assert data.usage.prompt_tokens == 9


def test_peak_concurrency_is_measured_exactly() -> None:
    with SimServer(SimConfig(latency_ms=300)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        barrier = threading.Barrier(12)

        def call(i: int) -> None:
            barrier.wait()
            client.chat.completions.create(model="sim-small", messages=_user(f"request {i}"))

        threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = server.stats()
    assert stats["peak_concurrency"] == 12
    assert stats["in_flight"] == 0 and stats["by_status"] == {200: 12}


def test_latency_counts_from_arrival_and_is_never_shortened() -> None:
    """The reply is built while the latency runs (not after it), yet every caller still waits the latency."""
    with SimServer(SimConfig(latency_ms=250, seed=3)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        barrier = threading.Barrier(16)
        elapsed: list[float] = []
        texts: list[str] = []

        def call(i: int) -> None:
            barrier.wait()
            started = time.perf_counter()
            reply = client.chat.completions.create(model="sim-small", messages=_user(f"request {i}"))
            elapsed.append(time.perf_counter() - started)
            texts.append(reply.choices[0].message.content or "")

        threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(elapsed) == 16 and min(elapsed) >= 0.25
    assert all(texts)
