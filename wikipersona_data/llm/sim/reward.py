"""A reward model without a model: a deterministic quality score of (question, answer) from plain features.

Served at ``/classify``, ``/pooling`` and ``/rerank`` in vLLM's shapes (``llm/reward.py``) so the reward band can be
built and tested offline. The score is no hash: it reads the text, so answers of different quality get
different scores and a band by score means something in the demo:

* **relevance**: share of the question's content words (4+ letters) the answer uses;
* **length**: log-shaped, best around ``IDEAL_WORDS`` words, penalised when far shorter or longer;
* **concreteness**: numbers, list items and sentences with a verb of advice ("try", "start", ...);
* **hedging**: refusal or filler phrases cost.

Same conversation, same score, on every machine.
"""

from __future__ import annotations

import math
import re
from typing import Any

from wikipersona_data.llm.sim.config import SimConfig
from wikipersona_data.llm.sim.protocol import RequestError, check_model
from wikipersona_data.llm.sim.textgen import count_tokens

IDEAL_WORDS = 90
_WORD = re.compile(r"[a-z']+")
_CONTENT = re.compile(r"[a-z]{4,}")
_ADVICE = ("try", "start", "consider", "choose", "avoid", "plan", "focus", "keep", "use", "make")
_HEDGES = ("i cannot", "i can't", "as an ai", "i'm not able", "it depends", "hard to say", "no way to know")


def reward_score(question: str, answer: str) -> float:
    """The simulated reward of ``answer`` to ``question`` (about -3 .. 3)."""
    q_words = set(_CONTENT.findall(question.lower()))
    text = answer.lower()
    words = _WORD.findall(text)
    a_words = set(_CONTENT.findall(text))
    relevance = len(q_words & a_words) / len(q_words) if q_words else 0.0
    length = -abs(math.log((len(words) + 1) / IDEAL_WORDS))
    sentences = [s for s in re.split(r"[.!?\n]+", text) if s.strip()]
    advice = sum(any(re.search(rf"\b{v}\b", s) for v in _ADVICE) for s in sentences) / max(1, len(sentences))
    concrete = min(1.0, 0.25 * len(re.findall(r"\d+|^\s*[-*]\s", answer, re.M)))
    hedges = sum(text.count(h) for h in _HEDGES)
    score = 2.0 * relevance + 0.8 * length + 1.0 * advice + 0.5 * concrete - 1.0 * hedges
    return round(score, 6)


def _conversation(body: dict[str, Any]) -> tuple[str, str, int]:
    """(last user text, last assistant text, prompt tokens) of a chat-shaped request."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty array", "invalid_value", "messages")
    texts: dict[str, str] = {}
    tokens = 0
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise RequestError(400, "each message needs a string 'content'", "invalid_value", "messages")
        texts[str(message.get("role"))] = message["content"]
        tokens += count_tokens(message["content"]) + 4
    if "assistant" not in texts:
        raise RequestError(400, "a reward request needs the assistant's answer as the last turn", "invalid_value")
    return texts.get("user", ""), texts["assistant"], tokens


def _rerank_pair(body: dict[str, Any]) -> tuple[str, str, int]:
    query, documents = body.get("query"), body.get("documents")
    if not isinstance(query, str) or not isinstance(documents, list) or len(documents) != 1:
        raise RequestError(400, "rerank needs a string 'query' and one 'documents' entry", "invalid_value")
    document = documents[0] if isinstance(documents[0], str) else None
    if document is None:
        raise RequestError(400, "'documents' entries must be strings", "invalid_value", "documents")
    return query, document, count_tokens(query) + count_tokens(document)


def reward_body(body: Any, cfg: SimConfig, route: str) -> dict[str, Any]:
    """Validate a /classify or /pooling body (chat form, as a reward model is called) or a /rerank body (query
    and one document) and build the reply."""
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object", "invalid_json")
    model = check_model(body.get("model"), cfg)
    question, answer, tokens = _rerank_pair(body) if route == "rerank" else _conversation(body)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0}
    if route == "rerank":
        score = reward_score(question, answer)
        results = [{"index": 0, "relevance_score": 1.0 / (1.0 + math.exp(-score))}]
        return {"id": "rerank-sim", "model": model + cfg.served_model_suffix, "results": results, "usage": usage}
    score = reward_score(question, answer)
    if route == "classify":
        item: dict[str, Any] = {"index": 0, "label": "LABEL_0", "probs": [1.0 / (1.0 + math.exp(-score))]}
        item["num_classes"] = 1
        prefix = "classify"
    else:
        item = {"index": 0, "object": "pooling", "data": [score]}
        prefix = "pool"
    return {
        "id": f"{prefix}-sim",
        "object": "list",
        "created": 0,
        "model": model + cfg.served_model_suffix,
        "data": [item],
        "usage": usage,
    }
