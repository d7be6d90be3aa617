"""Calls, tokens and cost *behind the data*, for the manifest: the same for a fresh, resumed or replayed build.

The client's ledger counts what this process did: a resumed build skips journaled units and a
``--cache only`` replay pays nothing, so its numbers describe the run, not the dataset. The manifest
instead sums, per (stage, model), the usage recorded in the call cache for every call key that a
stage row or reject cites (all attempts, re-asks included), priced with the recipe's prices. That is
a pure function of the rows and the cache, so equal builds get equal manifests. Embedding calls are
not cited by rows and are left out (they are the cheapest calls; the run's ledger has them).
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
    """{"by_stage_model": [...], "totals": {...}} from cached usage; tokens unknown -> cost None."""
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    for stage, keys in sorted(keys_by_stage.items()):
        for key in sorted(keys):
            record = cache.peek(key) if cache is not None else None
            if record is None:
                continue
            model = record.get("spec", {}).get("model", "?")
            line = lines.setdefault(
                (stage, model),
                {"stage": stage, "model": model, "calls": 0, "input_tokens": 0, "output_tokens": 0, "unknown_usage": 0},
            )
            line["calls"] += 1
            usage = (record.get("response") or {}).get("usage") or {}
            if usage.get("prompt_tokens") is None:
                line["unknown_usage"] += 1
                continue
            line["input_tokens"] += int(usage.get("prompt_tokens") or 0)
            line["output_tokens"] += int(usage.get("completion_tokens") or 0)
    rows = []
    total_cost: float | None = 0.0
    for (_, model), line in sorted(lines.items()):
        price = prices.get(model)
        cost = None if price is None else price.cost(line["input_tokens"], line["output_tokens"])
        # the total sums unrounded line costs, as the build's table does (rounded lines can sum across a
        # 4-decimal boundary the table does not cross)
        total_cost = None if cost is None or total_cost is None else total_cost + cost
        rows.append({**line, "cost_usd": None if cost is None else round(cost, 6)})
    totals = {
        "calls": sum(r["calls"] for r in rows),
        "input_tokens": sum(r["input_tokens"] for r in rows),
        "output_tokens": sum(r["output_tokens"] for r in rows),
        "cost_usd": None if total_cost is None else round(total_cost, 6),
    }
    return {"by_stage_model": rows, "totals": totals}
