"""Calls, tokens and cost *behind the data*, for the manifest: the same for a fresh, resumed or replayed build.

The client's ledger counts what this process did: a resumed build skips journaled units and a
``--cache only`` replay pays nothing, so its numbers describe the run, not the dataset. The manifest
instead sums, per (stage, model), the usage recorded in the call cache for every call key that a
stage row or reject cites (all attempts, re-asks and re-judged attempts included; candidates cite
their embedding call), priced with the recipe's prices by the ledger's own rule. That is a pure
function of the rows and the cache, so equal builds get equal manifests, and a fresh build's table
shows the same totals.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def keys_of(rows: Iterable[Any]) -> set[str]:
    """Every call key a stage's rows and rejects cite."""
    keys: set[str] = set()
    for row in rows:
        provenance = getattr(row, "provenance", None)
        if provenance is not None:
            keys.update(provenance.call_keys)
        keys.update(getattr(row, "call_keys", []) or [])
    return keys


def data_ledger(cache: Any, prices: Any, keys_by_stage: dict[str, set[str]]) -> dict[str, Any]:
    """{"by_stage_model": [...], "totals": {...}, "by_mode": [...]} from cached calls, charged by the client's
    own ledger rule: per stage and model, per price mode (online / batch / offline), and how much of the input
    the provider's prompt cache served (``cached_input_tokens``, ``cached_input_share``: billed at the
    cached-input price).

    Each cited call is recorded into a fresh :class:`~wikipersona_data.llm.ledger.Ledger` as the client
    recorded it when it was paid (reported usage, our local count of prompt and reply as the floor of
    the charge), so the build table's total and the manifest's are one ledger, not two formulas.
    Tokens a server did not report count in ``unknown_usage``.
    """
    from wikipersona_data.llm.cache import record_mode
    from wikipersona_data.llm.client import _reply_tokens
    from wikipersona_data.llm.envelope import reliable_usage
    from wikipersona_data.llm.ledger import Ledger, estimate_tokens

    ledger = Ledger(prices)
    for stage, keys in sorted(keys_by_stage.items()):
        for key in sorted(keys):
            record = cache.peek(key) if cache is not None else None
            if record is None:
                continue
            spec = record.get("spec") or {}
            response = record.get("response") or {}
            if spec.get("api") == "embed":
                local = (sum(estimate_tokens(t) for t in spec.get("input") or []), 0)
            else:
                local = (estimate_tokens(spec.get("messages") or []), _reply_tokens(response))
            usage = reliable_usage(response.get("usage"))
            model = spec.get("model", "?")
            ledger.record_call(
                stage, model, usage=usage, latency_s=None, cached=False, local_tokens=local, mode=record_mode(record)
            )
    summary = ledger.summary()
    rows = [
        {
            "stage": r["stage"],
            "model": r["model"],
            "calls": r["calls"],
            "input_tokens": r["input_tokens"],
            "cached_input_tokens": r["cached_tokens"],
            "cached_input_share": cached_share(r["cached_tokens"], r["input_tokens"]),
            "output_tokens": r["output_tokens"],
            "unknown_usage": r["calls_without_usage"],
            "cost_usd": r["cost_usd"],
        }
        for r in summary["by_stage_model"]
    ]
    t = summary["totals"]
    totals = {
        "calls": t["calls"],
        "input_tokens": t["input_tokens"],
        "cached_input_tokens": t["cached_tokens"],
        "cached_input_share": cached_share(t["cached_tokens"], t["input_tokens"]),
        "output_tokens": t["output_tokens"],
        "cost_usd": t["cost_usd"],
    }
    return {"by_stage_model": rows, "totals": totals, "by_mode": summary["by_mode"]}


def cached_share(cached: int, total: int) -> float:
    """Share of the input tokens the provider served from its prompt cache (billed at the cached-input price)."""
    return round(cached / total, 4) if total else 0.0
