"""Who spent what: requests, cache hits, tokens, latency, errors and dollars per (stage, model).

The ledger is the single place usage is counted, so the release manifest, the ``estimate`` command and
the ``--max-usd`` guard all agree. Prices come from a user-supplied :class:`PriceTable`; a model
without a price has cost ``None`` (unknown, with one warning), never a made-up number. Tokens an
endpoint did not report are ``None``-valued calls counted in ``calls_without_usage``, never zeros.

``summary()`` holds no keys, URLs or paths, so it can go straight into ``manifest.json``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from wikipersona_data.llm.config import PriceTable, mode_factor

log = logging.getLogger(__name__)

# chars per token of the estimate heuristic: OpenAI's rule of thumb for English text (~4 chars/token);
# it over-counts code and under-counts CJK text, which is acceptable for a budget guard that also reserves
# the full max_tokens of every call.
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators per chat message


def estimate_tokens(messages: Sequence[dict[str, Any]] | str) -> int:
    """Rough prompt size (``ceil(chars / 4)`` plus a few tokens per message) for estimates and RPM/TPM.

    Used only where the real count is not yet known: the pre-run estimate, the budget projection and the
    TPM bucket. Real usage from the server replaces it as soon as a reply arrives.
    """
    if isinstance(messages, str):
        return math.ceil(len(messages) / CHARS_PER_TOKEN)
    total = 0
    for message in messages:
        content = message.get("content") or ""
        if not isinstance(content, str):  # multi-part content: count the text parts
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        total += math.ceil(len(content) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS
    return total


@dataclass
class _ModeLine:
    """Paid calls of one price mode (``online``, ``batch``, ``offline``): what was bought how."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = 0.0

    def add(self, tokens: tuple[int, int, int] | None, cost: float | None) -> None:
        self.calls += 1
        if tokens is not None:
            self.input_tokens += tokens[0]
            self.output_tokens += tokens[1]
            self.cached_tokens += tokens[2]
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost

    def merge(self, other: _ModeLine) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.cost_usd = None if other.cost_usd is None or self.cost_usd is None else self.cost_usd + other.cost_usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
        }


def modes_table(modes: dict[str, _ModeLine]) -> list[dict[str, Any]]:
    """``[{"mode": "batch", "calls": .., "cost_usd": ..}, ...]`` sorted by mode: the paid calls by how they were
    bought (a list of records, so the card renders it as a table)."""
    return [{"mode": mode, **line.as_dict()} for mode, line in sorted(modes.items())]


@dataclass
class _Line:
    calls: int = 0
    requests: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    calls_without_usage: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    cost_usd: float | None = 0.0
    saved_usd: float | None = 0.0
    charged_usd: float = 0.0  # what the budget guard counts (not reported: cost_usd is the billed figure)
    modes: dict[str, _ModeLine] = field(default_factory=dict)  # paid calls by price mode

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        p95 = lat[min(len(lat) - 1, math.ceil(0.95 * len(lat)) - 1)] if lat else None
        return {
            "calls": self.calls,
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "calls_without_usage": self.calls_without_usage,
            "latency_s": {
                "sum": round(sum(lat), 6),
                "mean": round(sum(lat) / len(lat), 6) if lat else None,
                "p95": round(p95, 6) if p95 is not None else None,
            },
            "errors": dict(sorted(self.errors.items())),
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "saved_usd": None if self.saved_usd is None else round(self.saved_usd, 6),
            "by_mode": {mode: line.as_dict() for mode, line in sorted(self.modes.items())},
        }


def _count(value: Any) -> int | None:
    """A reported token count, or None when it is not a non-negative int (a hostile server's "lots" or -5)."""
    return value if type(value) is int and value >= 0 else None


def _tokens(usage: dict[str, Any] | None) -> tuple[int, int, int] | None:
    """(input, output, cached-input) from an OpenAI usage object; None when absent or not trustworthy."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens") or 0)
    if prompt is None or completion is None:
        return None
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    return prompt, completion, min(cached or 0, prompt)


_ERROR_WORDS = {
    "timeout": "requests timed out",
    "connection_refused": "requests refused (connection refused)",
    "connection": "requests lost their connection",
    "reply_too_large": "replies over max_reply_bytes",
    "invalid_body": "replies not JSON",
    "invalid_envelope": "replies not shaped like a completion",
    "error_body": "HTTP 200 replies carrying an error",
    "exhausted_retries": "calls failed after all retries",
    "prompt_too_long": "prompts over the context (not sent)",
    "length": "replies cut by max_tokens",
    "invalid_json": "replies without valid JSON",
}


def error_line(errors: dict[str, int]) -> str | None:
    """``LLM errors: 3 requests timed out, 2 replies cut by max_tokens, ...`` for the build summary, or None.

    Counted by kind from the ledger, most frequent first, so a build that lost its rows to a slow server
    says so instead of leaving the cause in ``cache/errors.jsonl``.
    """
    if not errors:
        return None
    parts = [
        f"{n} {_ERROR_WORDS.get(kind, kind)}"
        for kind, n in sorted(errors.items(), key=lambda item: (-item[1], item[0]))
        if n
    ]
    return f"LLM errors: {', '.join(parts)}" if parts else None


class Ledger:
    """Counts every call by (stage, model) and prices it; ``Ledger(prices)``.

    ``requests`` counts HTTP requests actually sent (retries included), so it matches what the server
    saw; ``calls`` counts logical calls (cache hits included); ``errors`` counts failed requests and
    rejected replies by kind (``http_429``, ``timeout``, ``invalid_json``, ...).
    """

    def __init__(self, prices: PriceTable | None = None) -> None:
        self.prices = prices or PriceTable()
        self._lines: dict[tuple[str, str], _Line] = {}
        self._warned: set[str] = set()
        self.cache_hits = 0
        self.cache_misses = 0

    def _line(self, stage: str, model: str) -> _Line:
        return self._lines.setdefault((stage, model), _Line())

    def cost(
        self, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0, mode: str = "online"
    ) -> float | None:
        """USD for these tokens bought in ``mode`` (``batch``: at the batch discount), or None (with one
        warning per model) when the model has no price."""
        mode_factor(mode)  # an unknown mode is a bug, also for an unpriced model
        price = self.prices.get(model)
        if price is None:
            if model not in self._warned:
                self._warned.add(model)
                log.warning("no price for model %r: its cost is reported as unknown", model)
            return None
        return price.cost(input_tokens, output_tokens, cached_tokens, mode)

    @property
    def spent_usd(self) -> float:
        """Spend charged against ``--max-usd`` so far: per paid call the larger of reported and locally counted
        tokens (see :meth:`record_call`), so it is never below the reported cost. Unpriced models count 0
        here; the budget guard refuses them up front."""
        return sum(line.charged_usd for line in self._lines.values())

    def record_request(self, stage: str, model: str) -> None:
        """One HTTP request went out (called per attempt, before its outcome is known)."""
        self._line(stage, model).requests += 1

    def record_error(self, stage: str, model: str, kind: str) -> None:
        self._line(stage, model).errors[kind] += 1

    def record_call(
        self,
        stage: str,
        model: str,
        *,
        usage: dict[str, Any] | None,
        latency_s: float | None,
        cached: bool,
        local_tokens: tuple[int, int] | None = None,
        mode: str = "online",
    ) -> None:
        """One logical call got a reply, paid (``cached=False``) or replayed from the cache.

        ``mode`` is how the reply was bought: ``online`` (one HTTP request), ``batch`` (a batch API, at
        :data:`~wikipersona_data.llm.config.BATCH_PRICE_FACTOR` of the list price) or ``offline`` (a file
        answered by ``vllm run-batch``); a cache hit is priced (``saved_usd``) in the mode it was bought in.

        ``local_tokens`` (prompt, completion) are our own count of a paid call. The budget (``spent_usd``) is
        charged on the larger of reported and local tokens, so a server that reports no, negative or
        implausibly small usage cannot get past ``--max-usd``. ``cost_usd`` stays the reported (billed)
        cost, and for a call without trustworthy usage the local count: never nothing, never negative.
        """
        line = self._line(stage, model)
        line.calls += 1
        tokens = _tokens(usage)
        charged = tokens
        if local_tokens is not None and not cached:
            reported = tokens or (0, 0, 0)
            charged = (
                max(reported[0], local_tokens[0]),
                max(reported[1], local_tokens[1]),
                reported[2] if reported[0] >= local_tokens[0] else 0,
            )
        cost = self.cost(model, *tokens, mode=mode) if tokens is not None else None
        if cached:
            line.cache_hits += 1
            self.cache_hits += 1
            if tokens is not None:
                line.saved_usd = None if cost is None or line.saved_usd is None else line.saved_usd + cost
            return
        self.cache_misses += 1
        if latency_s is not None:
            line.latencies.append(latency_s)
        charged_cost = self.cost(model, *charged, mode=mode) if charged is not None else None
        line.charged_usd += charged_cost or 0.0
        by_mode = line.modes.setdefault(mode, _ModeLine())
        if tokens is None:
            line.calls_without_usage += 1
            by_mode.add(None, charged_cost if charged is not None else 0.0)
            if charged is not None:
                line.cost_usd = None if charged_cost is None or line.cost_usd is None else line.cost_usd + charged_cost
            return
        by_mode.add(tokens, cost)
        line.input_tokens += tokens[0]
        line.output_tokens += tokens[1]
        line.cached_tokens += tokens[2]
        line.cost_usd = None if cost is None or line.cost_usd is None else line.cost_usd + cost

    def estimate(self, calls: Iterable[tuple[Any, ...]]) -> dict[str, Any]:
        """Upper-bound plan for ``(stage, model, prompt_tokens, max_output_tokens[, count])`` calls, before any
        spend (``count`` equal calls per tuple, default 1: the sums are arithmetic, not one tuple per call).

        Output is costed at ``max_output_tokens`` (the most a call can cost); a model without a price makes
        its rows' and the total's cost ``None``.
        """
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for item in calls:
            stage, model, prompt_tokens, max_output = item[:4]
            count = int(item[4]) if len(item) > 4 else 1
            row = rows.setdefault(
                (stage, model),
                {
                    "stage": stage,
                    "model": model,
                    "calls": 0,
                    "input_tokens": 0,
                    "max_output_tokens": 0,
                    "cost_usd": 0.0,
                },
            )
            row["calls"] += count
            row["input_tokens"] += prompt_tokens * count
            row["max_output_tokens"] += max_output * count
        total_cost: float | None = 0.0
        for (_stage, model), row in rows.items():
            row["cost_usd"] = self.cost(model, row["input_tokens"], row["max_output_tokens"])
            if row["cost_usd"] is not None:
                row["cost_usd"] = round(row["cost_usd"], 6)
            total_cost = None if row["cost_usd"] is None or total_cost is None else total_cost + row["cost_usd"]
        ordered = [rows[k] for k in sorted(rows)]
        return {
            "by_stage_model": ordered,
            "totals": {
                "calls": sum(r["calls"] for r in ordered),
                "input_tokens": sum(r["input_tokens"] for r in ordered),
                "max_output_tokens": sum(r["max_output_tokens"] for r in ordered),
                "cost_usd": None if total_cost is None else round(total_cost, 6),
            },
        }

    def summary(self, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
        """Per stage and model, plus totals; deterministic ordering, JSON-ready, no secrets or paths.

        ``exclude`` leaves stages out (the build's table shows the ``preflight`` line apart from the total).
        """
        rows = []
        total = _Line()
        for (stage, model), line in sorted(self._lines.items()):
            if stage in exclude:
                continue
            if self.prices.get(model) is None:  # unknown price: no cost and no savings can be stated
                line.cost_usd = line.saved_usd = None
                for by_mode in line.modes.values():
                    by_mode.cost_usd = None
            rows.append({"stage": stage, "model": model, **line.as_dict()})
            total.calls += line.calls
            total.requests += line.requests
            total.cache_hits += line.cache_hits
            total.input_tokens += line.input_tokens
            total.output_tokens += line.output_tokens
            total.cached_tokens += line.cached_tokens
            total.calls_without_usage += line.calls_without_usage
            total.latencies.extend(line.latencies)
            total.errors.update(line.errors)
            total.cost_usd = None if line.cost_usd is None or total.cost_usd is None else total.cost_usd + line.cost_usd
            total.saved_usd = (
                None if line.saved_usd is None or total.saved_usd is None else total.saved_usd + line.saved_usd
            )
            for mode, by_mode in line.modes.items():
                total.modes.setdefault(mode, _ModeLine()).merge(by_mode)
        totals = total.as_dict()
        del totals["by_mode"]  # the table below
        return {
            "by_stage_model": rows,
            "totals": totals,
            "by_mode": modes_table(total.modes),
            "cache": {"hits": self.cache_hits, "misses": self.cache_misses},
        }
