"""Rows -> typed pyarrow tables, and the release's file layout.

The writer and the verifier both need "what is the contract schema of this config" and "which
files make a split", so they live here once. Row typing names the offending row and column,
because a pyarrow cast error on a 10k-row batch does not say which row was wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from wikipersona_data.errors import InputError
from wikipersona_data.release import schema

CONFIGS: dict[str, pa.Schema] = {"pairs": schema.PAIRS, "personas": schema.PERSONAS}
SORT_KEY = {"pairs": "pair_id", "personas": "persona_id"}
SPLITS = {"pairs": schema.SPLITS, "personas": ("train",)}
DEFAULT_MAX_SHARD_BYTES = 500 * 1024 * 1024  # push_to_hub's default max_shard_size


def shard_name(config: str, split: str, index: int, total: int) -> str:
    """push_to_hub's layout, so a release can be replaced by ``push_to_hub`` output and vice versa."""
    return f"data/{config}/{split}-{index:05d}-of-{total:05d}.parquet"


def split_glob(config: str, split: str) -> str:
    return f"data/{config}/{split}-*.parquet"


def contract(config: str, reward: bool = False) -> pa.Schema:
    """The column contract of ``config``; ``reward``: the release was built with the reward band."""
    return schema.PAIRS_WITH_REWARD if reward and config == "pairs" else CONFIGS[config]


def has_reward_band(manifest: Any) -> bool:
    """Whether a release's manifest says it was built with the reward band (its pairs have reward columns)."""
    build = manifest.data.ledger.get("build") if manifest is not None else None
    return isinstance(build, dict) and bool(build.get("reward_band"))


def to_table(config: str, split: str, rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Type ``rows`` by the contract schema, sorted by the config's id; fail on the first bad cell. Pairs
    carrying reward scores (a build with the reward band) are typed by the contract with reward columns."""
    contract_ = contract(config, bool(rows) and isinstance(rows[0], dict) and "chosen_reward" in rows[0])
    key = SORT_KEY[config]
    names = set(contract_.names)
    for i, row in enumerate(rows):
        where = _where(config, split, i, row, key)
        if not isinstance(row, dict):
            raise InputError(f"{where}: a row must be a dict, got {type(row).__name__}")
        missing = [n for n in contract_.names if n not in row]
        if missing:
            raise InputError(f"{where}: missing column {missing[0]!r} (contract: release/schema.py)")
        extra = sorted(set(row) - names)
        if extra:
            raise InputError(f"{where}: unknown column {extra[0]!r}; add it to release/schema.py first")
        if not isinstance(row[key], str) or not row[key]:
            raise InputError(f"{where}: column {key!r} must be a non-empty string")
    ordered = sorted(rows, key=lambda r: r[key])
    ids = [r[key] for r in ordered]
    for a, b in itertools.pairwise(ids):
        if a == b:
            raise InputError(f"{config}/{split}: duplicate {key} {a!r}")
    columns = []
    for field in contract_:
        values = [r[field.name] for r in ordered]
        try:
            columns.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            columns.append(_locate_bad_cell(config, split, ordered, field, key))
    return pa.Table.from_arrays(columns, schema=contract_)


def _locate_bad_cell(config: str, split: str, rows: list[dict], field: pa.Field, key: str) -> pa.Array:
    for row in rows:
        try:
            pa.array([row[field.name]], type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as err:
            value = repr(row[field.name])
            value = value if len(value) <= 60 else value[:57] + "..."
            raise InputError(
                f"{config}/{split} {key}={row[key]!r}: column {field.name!r} expects {field.type}, got {value} ({err})"
            ) from None
    raise InputError(f"{config}/{split}: column {field.name!r} cannot be typed as {field.type}")  # pragma: no cover


def _where(config: str, split: str, index: int, row: Any, key: str) -> str:
    if isinstance(row, dict) and isinstance(row.get(key), str):
        return f"{config}/{split} {key}={row[key]!r}"
    return f"{config}/{split} row {index}"


def schema_mismatch(actual: pa.Schema, contract: pa.Schema) -> str | None:
    """Describe the first difference of column names or types (metadata ignored), or None."""
    if actual.names != contract.names:
        missing = [n for n in contract.names if n not in actual.names]
        extra = [n for n in actual.names if n not in contract.names]
        if missing:
            return f"missing column {missing[0]!r}"
        if extra:
            return f"unexpected column {extra[0]!r}"
        return f"columns out of order: {actual.names}"
    for got, want in zip(actual, contract, strict=True):
        if not got.type.equals(want.type):
            return f"column {want.name!r} is {got.type}, contract says {want.type}"
    return None
