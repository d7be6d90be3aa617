"""The candidate table the scan writes: one schema, two formats (parquet or JSON lines, by extension).

Both writers stream rows in batches (the table of a full dump has ~1.5 M people) into ``FILE.tmp`` and
rename it at the end, so an interrupted scan never leaves a file that looks complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from wikipersona_data.errors import InputError
from wikipersona_data.fileio import atomic_path, iter_jsonl

SCHEMA = pa.schema(
    [
        ("page_id", pa.int64()),
        ("title", pa.string()),
        ("revision_id", pa.int64()),
        ("url", pa.string()),
        ("is_person", pa.bool_()),
        ("is_living", pa.bool_()),
        ("birth_date", pa.string()),
        ("birth_year", pa.int64()),
        ("death_year", pa.int64()),
        ("short_description", pa.string()),
        ("infobox_template", pa.string()),
        ("categories", pa.list_(pa.string())),
        ("inbound_links", pa.int64()),
        ("redirects_in", pa.int64()),
        ("wikitext_bytes", pa.int64()),
        ("ref_count", pa.int64()),
        ("section_count", pa.int64()),
        ("fame_score", pa.float64()),
    ]
)
BATCH_ROWS = 50_000


def table_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    raise InputError(f"--out {path}: unknown table format (use a .parquet or .jsonl file name)")


def write_table(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows (already sorted) to ``path`` via ``path.tmp``; returns the row count."""
    fmt = table_format(path)
    count = 0
    with atomic_path(path) as tmp:
        if fmt == "jsonl":
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                for row in rows:
                    f.write(json.dumps({name: row[name] for name in SCHEMA.names}, ensure_ascii=False) + "\n")
                    count += 1
        else:
            with pq.ParquetWriter(tmp, SCHEMA, compression="zstd") as writer:
                batch: list[dict[str, Any]] = []
                for row in rows:
                    batch.append(row)
                    count += 1
                    if len(batch) >= BATCH_ROWS:
                        writer.write_table(pa.Table.from_pylist(batch, schema=SCHEMA))
                        batch.clear()
                writer.write_table(pa.Table.from_pylist(batch, schema=SCHEMA))
    return count


def read_table(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a table written by :func:`write_table` (used to combine shards)."""
    fmt = table_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if fmt == "jsonl":
        yield from iter_jsonl(path)
    else:
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise InputError(f"{path}: not a parquet file ({err})") from None
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            yield from batch.to_pylist()
