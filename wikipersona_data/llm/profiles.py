"""What differs between OpenAI-compatible servers, in one table.

"OpenAI-compatible" hides real differences that silently change results if ignored, so the client asks
the endpoint's profile instead of guessing:

* ``enforces_json_schema``: whether ``response_format={"type": "json_schema", ...}`` is honoured by
  constrained decoding. Where it is not, the client instead states the schema in the system message
  (with the marker line ``Respond with JSON for schema "<name>"``) and extracts JSON tolerantly.
  Output is validated locally with pydantic in every case.
* ``reports_usage``: whether token usage normally comes back. Absent usage is recorded as ``None``
  (unknown), never ``0``.
* ``max_tokens_param``: recipes always say ``max_tokens``; OpenAI deprecated it in favour of
  ``max_completion_tokens`` (required by its reasoning models) while compatible servers expect
  ``max_tokens``.
* ``supports_seed``: ``seed`` is dropped from the request where a server rejects it (it stays in the
  cache key: it is part of what the user asked for).
* ``timeout_s`` / ``max_retry_seconds``: defaults of the endpoint's total deadline per request and retry
  budget (a recipe endpoint may override both): a local CPU server (llama.cpp, ollama) takes 40-110 s for
  a 700-token reply, a hosted API seconds.
* ``requires_key``: local servers accept any bearer token, so a dummy is sent if the variable is unset;
  OpenAI needs the real key and the client says which variable to set.
* ``prompt_cache``: ``(min_tokens, block_tokens)`` of the server's automatic prompt (prefix) cache, for the
  cache share ``wikipersona estimate`` expects: OpenAI caches prompts from 1024 tokens in 128-token steps;
  vLLM's automatic prefix caching reuses 16-token blocks; the simulator follows OpenAI's rule unless its
  ``cache_*`` options say otherwise. ``None``: not modelled (ollama, llama.cpp's per-slot cache), expected 0.

* ``batch_api``: whether the server has the OpenAI Batch API (``/v1/files``, ``/v1/batches``, at half the
  list price): OpenAI and the simulator. vLLM has none (``vllm run-batch`` reads the same JSONL offline, on
  your own GPUs: an endpoint's ``mode = "offline"``), nor have llama.cpp and Ollama; a recipe that puts such an
  endpoint in ``mode = "batch"`` is refused at load, and ``wikipersona estimate`` gives its calls no discount.
* ``schema_in_prompt``: whether an enforced ``response_format`` schema is part of the prompt the server counts
  (and caches): OpenAI places it before the system message, and the simulator does the same; vLLM and
  llama.cpp compile it into a decoding grammar and never show it to the model. A schema stated in the prompt
  (``json_schema = "instructed"``) is prompt text on every server. ``wikipersona estimate`` counts it.

* ``alternates_roles``: the server applies the model's own chat template, and many (Gemma, Mistral, Llama 2)
  refuse two messages of one role in a row ("Conversation roles must alternate"). A template may split its
  user part for prompt caching (shared part first), so for these servers the client joins consecutive user
  messages into one before sending (``client.alternating``); the shared text still leads.

Known quirks per server (ecosystem.md section 4):

* **openai**: ``seed`` is best-effort (same seed does not guarantee the same output; check
  ``system_fingerprint``); reasoning models reject ``temperature``/``top_p`` other than default and
  ``max_tokens``; strict schemas need ``additionalProperties: false`` and every property required.
  ``Retry-After`` headers are sent on 429.
* **vllm**: ``json_schema`` enforced through guided decoding (xgrammar/outlines backends); the served
  model name is whatever ``--served-model-name`` says; no ``/v1/batches`` (``vllm run-batch`` reads the
  same JSONL instead); usage always reported.
* **ollama**: the OpenAI endpoint enforces ``json_schema`` locally via a grammar only since v0.5.0 and
  Ollama Cloud accepts it *without* enforcing (ollama#12362), so we treat it as not enforced;
  ``max_tokens`` maps to ``num_predict``; a model that is not pulled gives 404.
* **llamacpp**: current ``llama-server`` enforces ``response_format`` json_schema by grammar (checked
  against xllamacpp 2026.10 in our tests; older builds had conversion bugs, llama.cpp#11847: set
  ``json_schema = "instructed"`` on the endpoint for those); the ``model`` field is ignored (one model
  per server); usage reported for non-streamed calls; ``GET /props`` gives the context size ``n_ctx``.
  A CPU server needs minutes for a long reply, hence the long default timeouts.
* **sim**: our simulator (``wikipersona_data.llm.sim``); enforces schemas unless configured not to,
  reports usage, honours ``seed``; serves a deterministic reward model at ``/classify`` and ``/pooling``.

Reward models (``reward_routes``): vLLM (and the simulator) serve ``/classify``, ``/pooling`` and ``/rerank``;
llama.cpp serves ``/rerank`` from a server started with embeddings on and ``rank`` pooling (``wikipersona
llm-local --rerank``); a recipe that sends reward calls to a route its endpoint's profile lacks is refused at load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from wikipersona_data.errors import ConfigError


@dataclass(frozen=True)
class Profile:
    """Capability flags of one kind of server (see the module docstring for why each matters)."""

    name: str
    enforces_json_schema: bool
    reports_usage: bool
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"]
    supports_seed: bool
    requires_key: bool
    timeout_s: float = 120.0
    max_retry_seconds: float = 300.0
    unsupported_schema_keywords: frozenset[str] = frozenset()
    """JSON-schema keywords the server rejects in a strict ``response_format``; stripped from what is sent
    (the local pydantic check still enforces them, so a reply past a stripped bound gets a re-ask)."""
    prompt_cache: tuple[int, int] | None = None
    """``(min_tokens, block_tokens)`` of the server's prefix cache (see the module docstring)."""
    reward_routes: frozenset[str] = frozenset()
    """Reward-model routes the server has (``llm/reward.py``): vLLM's ``/classify``, ``/pooling`` and ``/rerank``;
    llama.cpp only ``/rerank`` (a server started with ``rank`` pooling); OpenAI and Ollama none."""
    alternates_roles: bool = False
    """Join consecutive same-role messages before sending (servers that apply open models' chat templates)."""
    batch_api: bool = False
    """The server has the OpenAI Batch API (``/v1/files``, ``/v1/batches``) at the batch price."""
    schema_in_prompt: bool = False
    """An enforced ``response_format`` schema counts as prompt tokens, ahead of the messages."""

    def sendable_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``schema`` without this server's unsupported keywords (the same object when there are none)."""
        if not self.unsupported_schema_keywords:
            return schema
        return _strip_keywords(schema, self.unsupported_schema_keywords)

    def request_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Translate recipe sampling params into this server's request fields."""
        out = {name: value for name, value in params.items() if value is not None}
        if "max_tokens" in out and self.max_tokens_param != "max_tokens":
            out[self.max_tokens_param] = out.pop("max_tokens")
        if not self.supports_seed:
            out.pop("seed", None)
        return out


OPENAI_UNSUPPORTED = frozenset({"minLength", "maxLength"})
"""OpenAI strict structured outputs list ``pattern``/``format`` (strings), ``minItems``/``maxItems`` (arrays)
and number bounds as supported, but not ``minLength``/``maxLength``, which the API rejects with a 400."""

SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
"""Keys whose value maps *names* to subschemas: a property called "pattern" is not a keyword."""


def _strip_keywords(node: Any, drop: frozenset[str], names: bool = False) -> Any:
    if isinstance(node, list):
        return [_strip_keywords(item, drop) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {name: _strip_keywords(sub, drop) for name, sub in node.items()}
    return {key: _strip_keywords(value, drop, key in SCHEMA_MAPS) for key, value in node.items() if key not in drop}


REWARD_ROUTES = frozenset({"classify", "pooling", "rerank"})

PROFILES: dict[str, Profile] = {
    "openai": Profile(
        "openai",
        True,
        True,
        "max_completion_tokens",
        True,
        True,
        120.0,
        300.0,
        OPENAI_UNSUPPORTED,
        prompt_cache=(1024, 128),
        batch_api=True,
        schema_in_prompt=True,
    ),
    "vllm": Profile(
        "vllm",
        True,
        True,
        "max_tokens",
        True,
        False,
        300.0,
        600.0,
        reward_routes=REWARD_ROUTES,
        prompt_cache=(0, 16),
        alternates_roles=True,
    ),
    "ollama": Profile("ollama", False, True, "max_tokens", True, False, 600.0, 1800.0, alternates_roles=True),
    "llamacpp": Profile(
        "llamacpp",
        True,
        True,
        "max_tokens",
        True,
        False,
        600.0,
        1800.0,
        reward_routes=frozenset({"rerank"}),
        alternates_roles=True,
    ),
    "sim": Profile(
        "sim",
        True,
        True,
        "max_tokens",
        True,
        False,
        60.0,
        300.0,
        reward_routes=REWARD_ROUTES,
        prompt_cache=(1024, 128),
        batch_api=True,
        schema_in_prompt=True,
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown endpoint profile {name!r}; choose one of {', '.join(sorted(PROFILES))}") from None
