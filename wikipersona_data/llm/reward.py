"""Reward-model replies: vLLM's ``/classify`` and ``/pooling`` routes, checked before anything trusts them.

vLLM serves sequence-classification and reward models (``vllm serve <rm> --runner pooling``) at two routes
of the server root (not under ``/v1``), both taking a chat conversation (``{"model", "messages"}``; the
server applies the model's chat template, which a reward model needs):

* ``POST /classify`` -> ``{"data": [{"index": 0, "label": .., "probs": [p_0, ..], "num_classes": n}], "usage"}``
  (newer builds send ``logits`` / ``probabilities`` instead of ``probs``). A one-label reward model such as
  FsfairX-LLaMA3-RM gives one number (a sigmoid of the reward: monotone, so a band by rank is the same).
* ``POST /pooling`` -> ``{"data": [{"index": 0, "object": "pooling", "data": [..] | [[..], ..]}], "usage"}``:
  the pooled output, raw; a token-level reward model (``ALL`` pooling) sends one row per token, and the
  reward is the last token's.

A third route serves servers that have no reward head but a reranker: ``POST /rerank`` (vLLM's Jina/Cohere-style
rerank API, and llama.cpp's server started with embeddings on and ``rank`` pooling), asked with the question as
``query`` and the answer as the one ``documents`` entry -> ``{"results": [{"index": 0, "relevance_score": s}]}``.
A reranker scores relevance, not preference: a weaker stand-in for a reward model, there for servers that have
nothing better (llama.cpp) and for checking the plumbing on a real model.

The score is element ``index`` of that vector (recipe ``[stages.reward] score_index``; 0 for a one-label
model, the "good" class of a two-class classifier). A reply is trusted only if it holds exactly one result,
for index 0, whose numbers are all finite: anything else is a malformed reply (retried, never cached).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from wikipersona_data.llm.envelope import EnvelopeError

RewardRoute = Literal["classify", "pooling", "rerank"]
ROUTES: tuple[str, ...] = ("classify", "pooling", "rerank")
URLS: dict[str, str] = {"classify": "/classify", "pooling": "/pooling", "rerank": "/rerank"}
"""Request-record URLs: paths of the server root (the transport resolves them against it, not ``/v1``)."""
CLASSIFY_KEYS = ("probs", "probabilities", "logits")
"""Where a ``/classify`` item carries its vector, by vLLM version (the first non-empty one is read)."""
MAX_VECTOR = 1 << 20
"""Numbers a pooling reply may carry in all (a hostile server's giant vector is a malformed reply)."""


def request_body(model: str, messages: list[dict[str, Any]], route: str) -> dict[str, Any]:
    """The request of one conversation: the chat form for ``/classify`` and ``/pooling``; for ``/rerank``
    the last user turn as the query and the last assistant turn as the one document."""
    if route != "rerank":
        return {"model": model, "messages": messages}
    last = {str(m.get("role")): str(m.get("content") or "") for m in messages}
    return {"model": model, "query": last.get("user", ""), "documents": [last.get("assistant", "")]}


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _vector(item: dict[str, Any], route: str) -> list[float]:
    if route == "classify":
        for name in CLASSIFY_KEYS:
            value = item.get(name)
            if isinstance(value, list) and value:
                return _finite(value, f"data.0.{name}")
        raise EnvelopeError("invalid_envelope", "data.0: no probs / probabilities / logits list")
    value = item.get("data")
    if not isinstance(value, list) or not value:
        raise EnvelopeError("invalid_envelope", "data.0.data: not a non-empty list")
    if isinstance(value[0], list):  # token-level output: the reward is the last token's
        if len(value) * max(len(row) if isinstance(row, list) else 1 for row in value) > MAX_VECTOR:
            raise EnvelopeError("invalid_envelope", "data.0.data: too many numbers")
        if not all(isinstance(row, list) and row for row in value):
            raise EnvelopeError("invalid_envelope", "data.0.data: rows must be non-empty lists")
        for row in value:
            _finite(row, "data.0.data")
        return value[-1]
    return _finite(value, "data.0.data")


def _finite(values: list[Any], where: str) -> list[float]:
    if len(values) > MAX_VECTOR:
        raise EnvelopeError("invalid_envelope", f"{where}: too many numbers")
    for i, value in enumerate(values):
        if not _number(value):
            raise EnvelopeError("invalid_envelope", f"{where}.{i}: not a finite number ({str(value)[:20]})")
    return values


def check_reward(body: dict[str, Any], route: str) -> list[float]:
    """The one result's vector, or :class:`EnvelopeError`: exactly one item, index 0, finite numbers."""
    if route == "rerank":
        return _check_rerank(body)
    data = body.get("data")
    if not isinstance(data, list):
        raise EnvelopeError("invalid_envelope", "data: not a list")
    if len(data) != 1:
        raise EnvelopeError("invalid_envelope", f"data: {len(data)} results for 1 conversation")
    item = data[0]
    if not isinstance(item, dict) or type(item.get("index")) is not int or item["index"] != 0:
        raise EnvelopeError("invalid_envelope", "data.0.index: not 0")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise EnvelopeError("invalid_envelope", "model: not a string")
    return _vector(item, route)


def _check_rerank(body: dict[str, Any]) -> list[float]:
    results = body.get("results")
    if not isinstance(results, list):
        raise EnvelopeError("invalid_envelope", "results: not a list")
    if len(results) != 1:
        raise EnvelopeError("invalid_envelope", f"results: {len(results)} results for 1 document")
    item = results[0]
    if not isinstance(item, dict) or type(item.get("index")) is not int or item["index"] != 0:
        raise EnvelopeError("invalid_envelope", "results.0.index: not 0")
    return _finite([item.get("relevance_score")], "results.0.relevance_score")


def score_of(body: dict[str, Any], route: str, index: int) -> tuple[float | None, str | None]:
    """(score, None), or (None, why) when ``index`` is past the vector (a recipe mismatch, not a server fault)."""
    vector = check_reward(body, route)
    if not 0 <= index < len(vector):
        return None, f"score_index {index} out of range: the model returned {len(vector)} value(s)"
    return float(vector[index]), None
