"""Which outcome a request gets: scripted first, then seeded random faults.

The random draw is keyed by (seed, request hash, how often this exact body was seen), so a client that
retries the same request walks a fixed sequence of outcomes and eventually succeeds, the same way on
every run; unrelated requests do not shift each other's luck.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Iterable

from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.sim.config import FAULT_KINDS, SCRIPT_OUTCOMES, SimConfig

EMBEDDING_FAULTS: frozenset[str] = frozenset({"429", "500", "503", "drop", "slow", "malformed"})
"""Faults that mean something for an embeddings call ("length"/"refusal" only exist for chat)."""


class FaultPlanner:
    """Decides outcomes and latencies; lives on the server's event loop, so it needs no lock."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self._seen: Counter[str] = Counter()
        self._script: deque[str] = deque(cfg.script)

    def set_script(self, script: Iterable[str]) -> None:
        outcomes = tuple(script)
        for outcome in outcomes:
            if outcome not in SCRIPT_OUTCOMES:
                raise ConfigError(f"unknown script outcome {outcome!r}; known: {', '.join(SCRIPT_OUTCOMES)}")
        self._script = deque(outcomes)

    @property
    def script_left(self) -> tuple[str, ...]:
        return tuple(self._script)

    def decide(self, request_hash: str, applicable: frozenset[str] = frozenset(FAULT_KINDS)) -> tuple[str, int]:
        """(outcome, attempt): outcome is "ok", "401" or a fault kind; attempt counts earlier identical bodies."""
        attempt = self._seen[request_hash]
        self._seen[request_hash] += 1
        if self._script:
            outcome = self._script.popleft()
            return (outcome if outcome in applicable or outcome in ("ok", "401") else "ok"), attempt
        if self.cfg.fault_rate > 0.0:
            rng = random.Random(f"fault:{self.cfg.seed}:{request_hash}:{attempt}")
            if rng.random() < self.cfg.fault_rate:
                kinds = [kind for kind in self.cfg.faults if kind in applicable]
                if kinds:
                    return rng.choice(kinds), attempt
        return "ok", attempt

    def latency_s(self, request_hash: str, attempt: int) -> float:
        """latency_ms ± jitter_ms (uniform), reproducible per request and attempt."""
        cfg = self.cfg
        if cfg.latency_ms <= 0.0 and cfg.jitter_ms <= 0.0:
            return 0.0
        rng = random.Random(f"latency:{cfg.seed}:{request_hash}:{attempt}")
        return max(0.0, cfg.latency_ms + rng.uniform(-cfg.jitter_ms, cfg.jitter_ms)) / 1000.0
