"""Reward-model calls (vLLM ``/classify`` and ``/pooling``) through the client's policies.

Over HTTP against the simulator (both routes, served at the server root, cached by content), and through a
scripted transport whose replies are hostile: a wrong count, a wrong index, a number that is not finite, a
token-level pooling reply, a score index past the model's outputs, a profile without reward routes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.cache import CallCache
from wikipersona_data.llm.client import LLMClient
from wikipersona_data.llm.config import EndpointConfig
from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.llm.sim.reward import reward_score
from wikipersona_data.llm.transport import Delivery, RequestRecord

CONVERSATION = [
    {"role": "user", "content": "How should I start running again after a long break?"},
    {"role": "assistant", "content": "Start with 3 short runs a week; keep a log and plan a rest day after each."},
]


def _client(url: str, cache_dir: Path, profile: str = "sim", transport: Any = None) -> LLMClient:
    ep = EndpointConfig(name="rm", base_url=url, profile=profile, max_attempts=2, backoff_base_s=0.0)
    return LLMClient({"rm": ep}, cache=CallCache(cache_dir, mode="use"), transport=transport)


def test_both_routes_over_http_scored_and_cached(tmp_path: Path) -> None:
    async def run(url: str) -> list[Any]:
        async with _client(url, tmp_path) as client:
            return [
                await client.reward(
                    stage="reward", endpoint="rm", model="sim-reward", messages=CONVERSATION, route=route
                )
                for route in ("classify", "pooling", "rerank")
            ]

    with SimServer(SimConfig()) as sim:
        first = asyncio.run(run(sim.base_url))
        again = asyncio.run(run(sim.base_url))
        routes = sim.stats()["requests_by_route"]
    # root routes, as vLLM serves them; the rerun was cached
    assert routes == {"/classify": 1, "/pooling": 1, "/rerank": 1}
    classify, pooling, rerank = first
    raw = reward_score(CONVERSATION[0]["content"], CONVERSATION[1]["content"])
    assert pooling.ok and pooling.score == pytest.approx(raw)  # /pooling: the raw score
    assert classify.ok and classify.score == pytest.approx(1 / (1 + 2.718281828459045 ** (-raw)))  # sigmoid
    assert rerank.ok and rerank.score == pytest.approx(classify.score)  # the sim's rerank: the same sigmoid
    assert len({classify.call_keys, pooling.call_keys, rerank.call_keys}) == 3  # the route is part of the call
    assert [r.cached for r in again] == [True] * 3 and [r.score for r in again] == [r.score for r in first]
    assert first[0].served_model == "sim-reward" + SimConfig().served_model_suffix


def test_sim_reward_reads_the_text() -> None:
    question = "How should I start running again after a long break?"
    good = "Start running with 3 short runs a week after the break; keep a log and plan a rest day after each."
    assert reward_score(question, good) > reward_score(question, "It depends, hard to say.")
    assert reward_score(question, good) == reward_score(question, good)


class Scripted:
    """Answers every record with the next scripted body (bytes or a dict); keeps the records."""

    def __init__(self, bodies: list[Any]) -> None:
        self.bodies = list(bodies)
        self.records: list[RequestRecord] = []

    async def send(self, record: RequestRecord, endpoint: EndpointConfig, headers: dict[str, str]) -> Delivery:
        self.records.append(record)
        body = self.bodies.pop(0)
        return Delivery(body if isinstance(body, bytes) else json.dumps(body).encode())

    async def aclose(self) -> None:
        pass


def _classify(*probs: Any, index: int = 0) -> dict[str, Any]:
    return {"model": "rm", "data": [{"index": index, "label": "x", "probs": list(probs), "num_classes": len(probs)}]}


def _score(transport: Scripted, tmp_path: Path, route: str = "classify", index: int = 0) -> Any:
    async def run() -> Any:
        async with _client("http://127.0.0.1:9/v1", tmp_path, "vllm", transport) as client:
            return await client.reward(
                stage="reward", endpoint="rm", model="rm", messages=CONVERSATION, route=route, score_index=index
            )

    return asyncio.run(run())


@pytest.mark.parametrize(
    "bad",
    [
        {"model": "rm", "data": []},  # no result
        {"model": "rm", "data": [_classify(0.1)["data"][0], _classify(0.2)["data"][0]]},  # two for one
        _classify(0.5, index=3),  # not index 0
        b'{"model": "rm", "data": [{"index": 0, "probs": [NaN]}]}',  # not finite
        b'{"model": "rm", "data": [{"index": 0, "probs": [Infinity]}]}',
        _classify("0.5"),  # a string
        _classify(True),  # a bool is not a score
        {"model": "rm", "data": [{"index": 0, "label": "x"}]},  # no vector
    ],
)
def test_untrusted_replies_are_retried_never_cached_then_failed(tmp_path: Path, bad: Any) -> None:
    transport = Scripted([bad, bad])
    result = _score(transport, tmp_path)
    assert not result.ok and result.failure == "exhausted_retries: invalid_envelope"
    assert len(transport.records) == 2  # max_attempts
    assert not CallCache(tmp_path, mode="use").keys()  # nothing malformed was stored as a reply


def test_a_bad_reply_then_a_good_one(tmp_path: Path) -> None:
    transport = Scripted([b'{"data": [{"index": 0, "probs": [NaN]}]}', _classify(0.25)])
    result = _score(transport, tmp_path)
    assert result.ok and result.score == 0.25
    record = transport.records[0]
    assert record.url == "/classify" and record.body == {"model": "rm", "messages": CONVERSATION}


def test_rerank_request_and_reply(tmp_path: Path) -> None:
    transport = Scripted([{"results": [{"index": 0, "relevance_score": 0.75}]}])
    assert _score(transport, tmp_path / "a", "rerank").score == 0.75
    sent = transport.records[0]
    assert sent.url == "/rerank"
    assert sent.body == {"model": "rm", "query": CONVERSATION[0]["content"], "documents": [CONVERSATION[1]["content"]]}
    two = {"results": [{"index": 0, "relevance_score": 0.1}, {"index": 1, "relevance_score": 0.2}]}
    nan = b'{"results": [{"index": 0, "relevance_score": NaN}]}'
    for bad in (two, nan):
        result = _score(Scripted([bad, bad]), tmp_path / "b", "rerank")
        assert not result.ok and result.failure == "exhausted_retries: invalid_envelope"


def test_pooling_shapes_and_score_index(tmp_path: Path) -> None:
    token_level = {"data": [{"index": 0, "object": "pooling", "data": [[0.1, 9.0], [0.2, 8.0], [0.7, -1.5]]}]}
    assert _score(Scripted([token_level]), tmp_path / "a", "pooling", 1).score == -1.5  # the last token's
    assert _score(Scripted([{"data": [{"index": 0, "data": [2.5]}]}]), tmp_path / "b", "pooling").score == 2.5
    newer = {"data": [{"index": 0, "logits": [-0.5, 1.25], "probabilities": []}]}  # newer vLLM /classify
    assert _score(Scripted([newer]), tmp_path / "c", "classify", 1).score == 1.25
    past = _score(Scripted([_classify(0.9)]), tmp_path / "d", "classify", 1)
    assert not past.ok and "score_index 1 out of range" in (past.failure or "")


def test_profiles_without_reward_routes_are_refused(tmp_path: Path) -> None:
    for profile in ("openai", "ollama", "llamacpp"):  # llama.cpp has /rerank only
        with pytest.raises(ConfigError, match="serves no /classify"):
            _score_profile(profile, tmp_path)


def _score_profile(profile: str, tmp_path: Path) -> Any:
    async def run() -> Any:
        async with _client("http://127.0.0.1:9/v1", tmp_path, profile, Scripted([])) as client:
            return await client.reward(stage="r", endpoint="rm", model="rm", messages=CONVERSATION)

    return asyncio.run(run())
