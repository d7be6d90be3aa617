"""The card's charts, rendered as PNG files that are byte-identical for identical data.

Uses matplotlib's object API with the Agg canvas (never ``pyplot``), so rendering neither depends
on nor changes the caller's global backend, and drops the PNG "Software" text chunk, which would
otherwise carry the matplotlib version into the bytes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CHARTS = {
    "pairs_per_persona": "charts/pairs_per_persona.png",
    "pairs_per_axis": "charts/pairs_per_axis.png",
    "answer_lengths": "charts/answer_lengths.png",
    "grounding": "charts/grounding.png",
}
_DPI = 100
_STYLE = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False}


def render_charts(root: Path, pairs: dict[str, pa.Table], personas: pa.Table) -> dict[str, str]:
    """Write every chart under ``root`` and return {chart name: relative path}."""
    from matplotlib import rc_context

    (root / "charts").mkdir(parents=True, exist_ok=True)
    rows = [row for split in sorted(pairs) for row in _pair_facts(pairs[split], split)]
    with rc_context(_STYLE):
        _save(_pairs_per_persona(rows), root / CHARTS["pairs_per_persona"])
        _save(_pairs_per_axis(rows), root / CHARTS["pairs_per_axis"])
        _save(_answer_lengths(rows), root / CHARTS["answer_lengths"])
        _save(_grounding(personas), root / CHARTS["grounding"])
    return dict(CHARTS)


def _pair_facts(table: pa.Table, split: str) -> list[dict]:
    cols = table.select(["persona", "question_type", "axis", "chosen", "rejected"]).to_pylist()
    return [
        {
            "split": split,
            "persona": r["persona"],
            "type": r["question_type"],
            "axis": r["axis"],
            "chosen_words": sum(len((m["content"] or "").split()) for m in r["chosen"] or []),
            "rejected_words": sum(len((m["content"] or "").split()) for m in r["rejected"] or []),
        }
        for r in cols
    ]


def _figure(height: float) -> Figure:
    fig = Figure(figsize=(7.0, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=_DPI, metadata={"Software": None})


def _stacked_bars(labels: list[str], stacks: list[tuple[list[int], str, str]], xlabel: str, title: str) -> Figure:
    """Horizontal bars, one per label, each stacked from ``(values, color, legend label)`` left to right."""
    fig = _figure(max(2.5, 0.28 * len(labels) + 1.2))
    ax = fig.add_subplot()
    left = [0] * len(labels)
    for values, color, name in stacks:
        ax.barh(labels, values, left=left, color=color, label=name)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def _pairs_per_persona(rows: list[dict]) -> Figure:
    personas = sorted({r["persona"] for r in rows})
    counts = Counter((r["persona"], r["type"]) for r in rows)
    stacks = [([counts[(p, kind)] for p in personas], color, kind) for kind, color in _TYPE_COLORS]
    return _stacked_bars(personas, stacks, "preference pairs (train + test)", "Pairs per persona")


def _pairs_per_axis(rows: list[dict]) -> Figure:
    divergent = [r for r in rows if r["type"] == "divergent" and r["axis"]]
    axes = sorted({r["axis"] for r in divergent})
    counts = Counter((r["axis"], r["split"]) for r in divergent)
    stacks = [([counts[(a, split)] for a in axes], color, split) for split, color in _SPLIT_COLORS]
    return _stacked_bars(axes, stacks, "divergent pairs", "Divergent pairs per axis of disagreement")


_TYPE_COLORS = (("personal", "#4C72B0"), ("divergent", "#DD8452"))
_SPLIT_COLORS = (("train", "#55A868"), ("test", "#C44E52"))


def _answer_lengths(rows: list[dict]) -> Figure:
    chosen = [r["chosen_words"] for r in rows]
    rejected = [r["rejected_words"] for r in rows]
    top = max([*chosen, *rejected, 1])
    bins = [top * i / 30 for i in range(31)]
    fig = _figure(3.0)
    ax = fig.add_subplot()
    ax.hist(chosen, bins=bins, alpha=0.6, color="#4C72B0", label="chosen")
    ax.hist(rejected, bins=bins, alpha=0.6, color="#C44E52", label="rejected")
    ax.set_xlabel("answer length (words)")
    ax.set_ylabel("pairs")
    ax.set_title("Answer lengths, chosen vs rejected")
    ax.legend(frameon=False)
    return fig


def _grounding(personas: pa.Table) -> Figure:
    facts = sorted(
        (r["name"], r["grounding_score"] or 0.0) for r in personas.select(["name", "grounding_score"]).to_pylist()
    )
    fig = _figure(max(2.5, 0.28 * len(facts) + 1.2))
    ax = fig.add_subplot()
    ax.barh([n for n, _ in facts], [s for _, s in facts], color="#8172B2")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of description claims supported by the cited Wikipedia sentences")
    ax.set_title("Grounding score per persona")
    return fig
