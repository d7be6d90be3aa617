"""Settings of one simulator instance.

Frozen so a running server can share it between requests without locks; everything that makes a
response differ (seed, faults, JSON style) lives here, so two servers built from equal configs answer
the same request body with the same bytes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from wikipersona_data.errors import ConfigError

FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "drop", "slow", "malformed", "length", "refusal")
"""Faults the random injector can pick; ``script`` may also use ``ok`` and ``401``."""

SCRIPT_OUTCOMES: tuple[str, ...] = ("ok", "401", *FAULT_KINDS)
JSON_STYLES: tuple[str, ...] = ("plain", "fenced", "preamble")


def is_loopback_host(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class SimConfig:
    """How the simulator behaves; see ``wikipersona llm-sim --help`` for the same knobs on the CLI."""

    seed: int = 0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    script: tuple[str, ...] = ()
    retry_after_s: float = 0.05
    api_key: str | None = None
    json_style: str = "plain"
    enforce_schema: bool = True
    violation_rate: float = 0.0
    models: tuple[str, ...] = ("sim-small", "sim-large", "sim-embed", "sim-reward")
    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False
    slow_s: float = 30.0
    """How long a "slow" fault stalls: longer than any sane client timeout."""
    served_model_suffix: str = "-2026-11"
    """Appended to the requested model in replies, the way real endpoints report a dated snapshot."""
    embedding_dim: int = 256
    # Stage responders (llm/sim/stage_responders.py): shares of deliberately bad answers,
    # so the verification filters have something real to catch in the demo and the tests.
    unsupported_claim_rate: float = 0.0
    """Share of description claims citing a wrong sentence id or stating invented content."""
    position_bias_rate: float = 0.0
    """Share of judge votes that prefer answer (a) whatever the answers say."""
    cache_min_tokens: int = 1024
    """A repeated prompt prefix shorter than this is not reported as cached (OpenAI caches from 1024 tokens)."""
    cache_block_tokens: int = 128
    """Cached prefixes are counted in blocks of this many tokens (OpenAI: 128; vLLM's default block: 16).
    The rule is in ``llm/sim/prefix_cache.py``."""
    # The batch API (/v1/files, /v1/batches; llm/sim/batch_api.py)
    batch_delay_s: float = 0.0
    """Seconds from a batch's creation to its completion (its status reads in_progress until then)."""
    batch_fail_rate: float = 0.0
    """Share of a batch's requests answered with a 500 error line (drawn per request and submission)."""
    batch_expire_rate: float = 0.0
    """Share of a batch's requests left unanswered as ``batch_expired`` (the batch then ends ``expired``)."""
    batch_fail: bool = False
    """Every batch fails as a whole (status ``failed``, no output file)."""
    batch_enqueued_token_limit: int = 0
    """Prompt tokens a model's batches in progress may hold at once (OpenAI's "enqueued token limit"); a batch
    created past it fails at once with ``token_limit_exceeded``, nothing of it run. 0: no limit."""

    def __post_init__(self) -> None:
        # Tuples may arrive as lists from callers; normalise so the config stays hashable.
        for name in ("faults", "script", "models"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        """Reject settings that would make the simulator silently do something else than asked."""
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ConfigError(f"fault_rate must be within [0, 1], got {self.fault_rate}")
        for name in ("unsupported_claim_rate", "position_bias_rate", "batch_fail_rate", "batch_expire_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be within [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.violation_rate <= 1.0:
            raise ConfigError(f"violation_rate must be within [0, 1], got {self.violation_rate}")
        if self.batch_enqueued_token_limit < 0:
            raise ConfigError(f"batch_enqueued_token_limit must not be negative, got {self.batch_enqueued_token_limit}")
        if min(self.latency_ms, self.jitter_ms, self.slow_s, self.retry_after_s, self.batch_delay_s) < 0:
            raise ConfigError("latency_ms, jitter_ms, slow_s, retry_after_s and batch_delay_s must not be negative")
        for fault in self.faults:
            if fault not in FAULT_KINDS:
                raise ConfigError(f"unknown fault {fault!r}; known: {', '.join(FAULT_KINDS)}")
        if self.fault_rate > 0 and not self.faults:
            raise ConfigError("fault_rate > 0 needs at least one fault kind in faults")
        for outcome in self.script:
            if outcome not in SCRIPT_OUTCOMES:
                raise ConfigError(f"unknown script outcome {outcome!r}; known: {', '.join(SCRIPT_OUTCOMES)}")
        if self.json_style not in JSON_STYLES:
            raise ConfigError(f"unknown json_style {self.json_style!r}; known: {', '.join(JSON_STYLES)}")
        if not self.models:
            raise ConfigError("models must name at least one model")
        if self.cache_block_tokens < 1 or self.cache_min_tokens < 0:
            raise ConfigError("cache_block_tokens must be >= 1 and cache_min_tokens >= 0")
        if not 8 <= self.embedding_dim <= 4096:
            raise ConfigError(f"embedding_dim must be within [8, 4096], got {self.embedding_dim}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be within [0, 65535], got {self.port}")
        if not self.allow_remote and not is_loopback_host(self.host):
            raise ConfigError(f"refusing to listen on non-loopback host {self.host!r} without --allow-remote")
