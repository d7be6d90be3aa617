"""Embeddings without a model: hashed word and character-trigram features, L2-normalised.

Texts sharing words or word stems land near each other, which is all the pipeline asks of an
embedding (near-duplicate and topical similarity), and the vectors are the same on every machine.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from typing import Any

from wikipersona_data.llm.sim.config import SimConfig
from wikipersona_data.llm.sim.protocol import RequestError, check_model
from wikipersona_data.llm.sim.textgen import count_tokens

_WORD = re.compile(r"\w+")


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, (1.0 if (value >> 63) & 1 else -1.0)


def embed(text: str, dim: int = 256) -> list[float]:
    """A unit vector for ``text``; whole words weigh more than the trigrams that tolerate inflection."""
    vector = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        index, sign = _bucket(f"w:{word}", dim)
        vector[index] += 2.0 * sign
        padded = f"#{word}#"
        for start in range(len(padded) - 2):
            index, sign = _bucket(f"c:{padded[start : start + 3]}", dim)
            vector[index] += sign
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:
        # Empty text: a fixed unit vector rather than NaNs.
        vector[0] = 1.0
        return vector
    return [v / norm for v in vector]


def to_base64(vector: list[float]) -> str:
    """The ``encoding_format="base64"`` wire form: little-endian float32, as OpenAI sends it."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embeddings_body(body: Any, cfg: SimConfig) -> dict[str, Any]:
    """Validate a /v1/embeddings body and build the reply (raises ``RequestError`` 400/404)."""
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object", "invalid_json")
    model = check_model(body.get("model"), cfg)
    texts = _inputs(body.get("input"))
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise RequestError(400, f"'encoding_format' must be 'float' or 'base64', got {encoding!r}", "invalid_value")
    dim = body.get("dimensions") or cfg.embedding_dim
    if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 4096:
        raise RequestError(400, f"'dimensions' must be an integer in [1, 4096], got {dim!r}", "invalid_value")
    data = []
    for index, text in enumerate(texts):
        vector = embed(text, dim)
        data.append(
            {"object": "embedding", "index": index, "embedding": to_base64(vector) if encoding == "base64" else vector}
        )
    tokens = sum(count_tokens(text) for text in texts)
    return {
        "object": "list",
        "data": data,
        "model": model + cfg.served_model_suffix,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _inputs(value: Any) -> list[str]:
    """str | [str] | [int] | [[int]] as texts (token ids become pseudo-words so they still hash)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return value
        if all(isinstance(v, int) for v in value):
            return [" ".join(f"t{v}" for v in value)]
        if all(isinstance(v, list) and all(isinstance(t, int) for t in v) for v in value):
            return [" ".join(f"t{t}" for t in v) for v in value]
    raise RequestError(
        400, "'input' must be a non-empty string, array of strings or array of token arrays", "invalid_value", "input"
    )
