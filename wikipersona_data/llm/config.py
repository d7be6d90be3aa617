"""Endpoint and price configuration for the LLM client.

An endpoint is *where* calls go (base URL, profile, limits, retry bounds); a price table is *what they
cost*. Both are plain frozen values built from a recipe, so the client never reads globals and two
endpoints serving the same model name never share cache entries unless the user gives them the same
``alias`` on purpose.

The API key is deliberately not a field: only the *name* of the environment variable is kept, and the
client reads the variable at call time. That way no config object, repr, cache record or manifest can
ever contain the secret.
"""

from __future__ import annotations

import logging
import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.profiles import get_profile
from wikipersona_data.redact import safe_url

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
DEFAULT_MAX_REPLY_BYTES = 8 * 1024 * 1024  # an honest chat reply is a few KB; 8 MiB leaves room for embeddings


def normalise_base_url(base_url: str) -> str:
    """Canonical endpoint identity for the cache key.

    ``HTTP://Localhost:80/v1/`` and ``http://localhost/v1`` are the same server, so they must give the
    same key; the path keeps its case because servers route on it.
    """
    shown = safe_url(base_url)  # never print userinfo (a password) back
    try:
        parts = urllib.parse.urlsplit(base_url.strip())
    except ValueError:
        raise ConfigError(f"endpoint base_url {shown!r} is not a valid URL") from None
    if "@" in parts.netloc:
        raise ConfigError(
            f"endpoint base_url {shown!r}: credentials in the URL (user:password@) are not supported; "
            "put the key in the environment variable named by the endpoint's api_key_env"
        )
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(f"endpoint base_url {shown!r} is not an http(s) URL with a host")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError as err:
        raise ConfigError(f"endpoint base_url {shown!r} has an invalid port") from err
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return urllib.parse.urlunsplit((scheme, netloc, path, "", ""))


@dataclass(frozen=True)
class EndpointConfig:
    """One OpenAI-compatible server and how hard we may push it.

    ``profile`` selects the server's quirks (see ``profiles.py``); ``alias`` replaces the base URL in
    the cache key so that, e.g., a vLLM moved to a new host keeps its cache. Limits: at most
    ``max_concurrency`` requests in flight (halved on 429 bursts, then grown back), optional ``rpm``
    requests and ``tpm`` tokens per minute. Retries: at most ``max_attempts`` HTTP requests per call
    and at most ``max_retry_seconds`` of waiting, whichever ends first; without a ``Retry-After`` hint the
    n-th wait is about ``backoff_base_s * 2**(n-1)`` seconds (jittered, capped at 30 s).

    ``timeout_s`` is the *total* deadline of one HTTP request (connect, wait and reading the whole body) and
    ``max_reply_bytes`` the largest body read: a server that streams forever or sends 100 MB is cut off with
    an error instead of filling memory. ``None`` for ``timeout_s`` / ``max_retry_seconds`` takes the
    profile's default (long for local CPU servers). ``context_tokens`` is the server's context size when it
    cannot be asked (llama.cpp's ``/props`` is asked first); ``json_schema`` overrides the profile's
    ``enforces_json_schema`` ("enforced": send ``response_format``; "instructed": state the schema in the
    system message).
    """

    name: str
    base_url: str
    profile: str = "openai"
    api_key_env: str = "OPENAI_API_KEY"
    alias: str | None = None
    max_concurrency: int = 16
    rpm: float | None = None
    tpm: float | None = None
    timeout_s: float | None = None
    max_attempts: int = 6
    max_retry_seconds: float | None = None
    backoff_base_s: float = 0.5
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    context_tokens: int | None = None
    json_schema: Literal["enforced", "instructed"] | None = None

    def __post_init__(self) -> None:
        profile = get_profile(self.profile)  # unknown profile -> ConfigError naming it
        if self.timeout_s is None:
            object.__setattr__(self, "timeout_s", profile.timeout_s)
        if self.max_retry_seconds is None:
            object.__setattr__(self, "max_retry_seconds", profile.max_retry_seconds)
        if self.max_reply_bytes < 1024:
            raise ConfigError(f"endpoint {self.name!r}: max_reply_bytes must be >= 1024, got {self.max_reply_bytes}")
        if self.context_tokens is not None and self.context_tokens < 16:
            raise ConfigError(f"endpoint {self.name!r}: context_tokens must be >= 16, got {self.context_tokens}")
        if self.json_schema not in (None, "enforced", "instructed"):
            raise ConfigError(f"endpoint {self.name!r}: json_schema must be 'enforced' or 'instructed'")
        normalise_base_url(self.base_url)
        if self.max_concurrency < 1:
            raise ConfigError(f"endpoint {self.name!r}: max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.max_attempts < 1:
            raise ConfigError(f"endpoint {self.name!r}: max_attempts must be >= 1, got {self.max_attempts}")
        for label, value in (("rpm", self.rpm), ("tpm", self.tpm)):
            if value is not None and not value > 0:
                raise ConfigError(f"endpoint {self.name!r}: {label} must be > 0 or unset, got {value}")
        assert self.timeout_s is not None and self.max_retry_seconds is not None
        if not self.timeout_s > 0 or not self.max_retry_seconds > 0 or not self.backoff_base_s >= 0:
            raise ConfigError(f"endpoint {self.name!r}: timeout_s, max_retry_seconds must be > 0, backoff_base_s >= 0")
        if not self.api_key_env or not self.api_key_env.replace("_", "").isalnum():
            raise ConfigError(f"endpoint {self.name!r}: api_key_env must name an environment variable")

    @property
    def enforces_json_schema(self) -> bool:
        """The recipe's override, else the profile's flag."""
        if self.json_schema is not None:
            return self.json_schema == "enforced"
        return get_profile(self.profile).enforces_json_schema

    @property
    def identity(self) -> str:
        """What the cache key uses for this endpoint: the alias, else the normalised base URL."""
        return self.alias if self.alias else normalise_base_url(self.base_url)


PriceMode = Literal["online", "batch", "offline"]
PRICE_MODES: tuple[str, ...] = ("online", "batch", "offline")
BATCH_PRICE_FACTOR = 0.5
"""Share of the list price a reply bought through a batch API costs: the OpenAI Batch API (and the other
providers' batch APIs) bill input and output at 50 %. ``offline`` replies (``vllm run-batch`` files you ran
yourself) cost what the recipe's price says, like online ones."""


def mode_factor(mode: str) -> float:
    """Price multiplier of a reply bought in ``mode`` (``online``, ``batch`` or ``offline``)."""
    if mode not in PRICE_MODES:
        raise ValueError(f"unknown price mode {mode!r}; known: {', '.join(PRICE_MODES)}")
    return BATCH_PRICE_FACTOR if mode == "batch" else 1.0


@dataclass(frozen=True)
class ModelPrice:
    """USD per one million tokens. ``cached_input_per_m`` defaults to the input price when unknown."""

    input_per_m: float
    output_per_m: float
    cached_input_per_m: float | None = None

    def __post_init__(self) -> None:
        for value in (self.input_per_m, self.output_per_m, self.cached_input_per_m):
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ConfigError(f"model price must be a finite non-negative number, got {value}")

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0, mode: str = "online") -> float:
        """Cost of one call; cached prompt tokens are a subset of input tokens billed at the cached rate; a
        ``batch`` reply costs :data:`BATCH_PRICE_FACTOR` of it all."""
        cached = min(max(cached_tokens, 0), input_tokens)
        cached_rate = self.input_per_m if self.cached_input_per_m is None else self.cached_input_per_m
        listed = (input_tokens - cached) * self.input_per_m + cached * cached_rate + output_tokens * self.output_per_m
        return listed * mode_factor(mode) / 1e6


@dataclass(frozen=True)
class PriceTable:
    """Prices per model name, supplied by the user (recipe or CLI); nothing is hard-coded here because
    prices change and self-hosted models cost whatever the user says they cost."""

    prices: Mapping[str, ModelPrice] = field(default_factory=dict)

    def get(self, model: str) -> ModelPrice | None:
        return self.prices.get(model)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Mapping[str, float]]) -> PriceTable:
        """Build from ``{model: {input_per_m, output_per_m, cached_input_per_m?}}`` (a recipe table)."""
        prices: dict[str, ModelPrice] = {}
        for model, row in data.items():
            unknown = set(row) - {"input_per_m", "output_per_m", "cached_input_per_m"}
            if unknown:
                raise ConfigError(f"price for model {model!r}: unknown field {sorted(unknown)[0]!r}")
            try:
                prices[model] = ModelPrice(**row)  # type: ignore[arg-type]
            except TypeError as err:
                raise ConfigError(f"price for model {model!r}: needs input_per_m and output_per_m") from err
        return cls(prices)
