"""The card's charts keep a fixed size however many personas a release has (issue 12 item 6: bounded memory)."""

from __future__ import annotations

import struct
from pathlib import Path

import pyarrow as pa

from wikipersona_data.release.charts import CHARTS, MAX_BARS, render_charts


def _tables(n: int) -> tuple[dict[str, pa.Table], pa.Table]:
    """n personas with 1 to 3 pairs each (unequal, so no bar chart is left out as uninformative)."""
    rows = []
    for p in range(n):
        for q in range(1 + p % 3):
            kind = "personal" if q else "divergent"
            rows.append(
                {
                    "persona": f"Person {p:04d}",
                    "question_type": kind,
                    "axis": None if q else f"axis{p % 2 + (p % 5 == 0)}",
                    "chosen": [{"role": "assistant", "content": "word " * (5 + q)}],
                    "rejected": [{"role": "assistant", "content": "word " * (3 + p % 7)}],
                }
            )
    pairs = {
        "train": pa.Table.from_pylist(rows),
        "test": pa.Table.from_pylist(rows[:0], schema=pa.Table.from_pylist(rows).schema),
    }
    personas = pa.Table.from_pylist([{"name": f"Person {p:04d}", "grounding_score": (p % 10) / 10} for p in range(n)])
    return pairs, personas


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])  # the IHDR chunk
    return width, height


def test_per_persona_charts_stop_growing_past_max_bars(tmp_path: Path) -> None:
    sizes = {}
    for n in (12, MAX_BARS + 1, 4 * MAX_BARS):
        root = tmp_path / str(n)
        drawn = render_charts(root, *_tables(n), min_grounding_score=0.5)
        assert {"pairs_per_persona", "grounding"} <= set(drawn)
        sizes[n] = {name: _png_size(root / CHARTS[name]) for name in ("pairs_per_persona", "grounding")}
    few, many, most = sizes[12], sizes[MAX_BARS + 1], sizes[4 * MAX_BARS]
    assert many == most  # a distribution over personas: the canvas does not depend on how many
    for name in ("pairs_per_persona", "grounding"):
        assert most[name][1] <= 400  # about 3 inches at 100 dpi
        assert few[name][1] < 0.28 * 100 * (MAX_BARS + 1)  # a bar each below the cap, as before
