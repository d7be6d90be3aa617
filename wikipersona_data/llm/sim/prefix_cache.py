"""The simulator's prompt cache: which leading tokens of a request it has already seen, reported as
``usage.prompt_tokens_details.cached_tokens`` so that prompt caching is measured, not assumed.

The rule (documented in docs/llm.md, "Prompt caching"):

* A request's prompt is one token sequence: the enforced response schema (OpenAI places it before the
  system message), then each message as 4 framing tokens (its role) plus its text's tokens, then 3
  tokens priming the reply; its length is exactly the reported ``prompt_tokens``.
* The sequence is cut into blocks of ``block`` tokens; block ``k`` is identified by a hash chained over
  blocks ``1..k`` (and the model), so a block only matches when everything before it matches too.
* ``cached_tokens`` = ``block`` x the number of leading blocks some earlier request to this server (for
  the same model) already had, or 0 if that is below ``min_tokens``. Then the request's blocks are
  remembered for the server's lifetime (no eviction).

With ``block = 128`` and ``min_tokens = 1024`` (the defaults) this is OpenAI's published rule (prompts
from 1024 tokens, hits in 128-token increments); ``block = 16``, ``min_tokens = 0`` is vLLM's automatic
prefix caching with its default block size. Without a minimum, the *sum* of cached tokens over a set of
requests does not depend on their order (each block is paid once, by whichever request shows it first),
so concurrent builds report the same totals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from wikipersona_data.llm.sim.textgen import _TOKEN, message_text

MESSAGE_FRAMING = 4
REPLY_PRIMING = 3


def prompt_sequence(messages: Iterable[dict[str, Any]], schema_text: str | None) -> list[str]:
    """The request's prompt as tokens, in the order a server would see (and could cache) them."""
    tokens: list[str] = _TOKEN.findall(schema_text) if schema_text else []
    for message in messages:
        role = str(message.get("role", ""))
        tokens += [f"<|{role}|>"] * MESSAGE_FRAMING
        tokens += _TOKEN.findall(message_text(message))
    tokens += ["<|assistant|>"] * REPLY_PRIMING
    return tokens


class PrefixCache:
    """Block hashes seen so far; :meth:`lookup_and_add` is the whole rule above."""

    def __init__(self, block: int = 128, min_tokens: int = 1024) -> None:
        self.block = block
        self.min_tokens = min_tokens
        self._seen: set[bytes] = set()

    def lookup_and_add(self, model: str, tokens: list[str]) -> int:
        """Cached tokens of this request (see the module docstring); remembers its blocks."""
        digest = hashlib.sha256(model.encode()).digest()
        hits, all_seen = 0, True
        for start in range(0, len(tokens) - self.block + 1, self.block):
            chunk = "\0".join(tokens[start : start + self.block]).encode()
            digest = hashlib.sha256(digest + chunk).digest()
            if all_seen and digest in self._seen:
                hits += 1
            else:
                all_seen = False
                self._seen.add(digest)
        cached = hits * self.block
        return cached if cached >= self.min_tokens else 0
