"""The card's charts, rendered as PNG files that are byte-identical for identical data.

Uses matplotlib's object API with the Agg canvas (never ``pyplot``), so rendering neither depends
on nor changes the caller's global backend, and drops the PNG "Software" text chunk, which would
otherwise carry the matplotlib version into the bytes.
"""

from __future__ import annotations

import sys
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
MAX_BARS = 60
"""Above this many personas a bar each is unreadable and its canvas grows with the data (0.28 inch a bar:
a 7,000-pixel-tall image at 256 personas, 20 MB of pixels per render); the per-persona charts show the
distribution over personas instead, a fixed-size histogram."""
_STYLE = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False}


def render_charts(
    root: Path, pairs: dict[str, pa.Table], personas: pa.Table, *, min_grounding_score: float | None = None
) -> dict[str, str]:
    """Write the charts that inform under ``root`` and return {chart name: relative path}.

    A bar chart whose bars are all alike (every persona with the same pairs, every axis the same split)
    says nothing a sentence would not: it is left out and :func:`chart_notes` gives the sentence.
    ``min_grounding_score`` (the recipe's filter threshold) is marked on the grounding chart.
    """
    from matplotlib import rc_context

    (root / "charts").mkdir(parents=True, exist_ok=True)
    rows = _all_facts(pairs)
    skipped = chart_notes(pairs)
    drawn = {name: rel for name, rel in CHARTS.items() if name not in skipped}
    with rc_context(_STYLE):
        if "pairs_per_persona" in drawn:
            _save(_pairs_per_persona(rows), root / CHARTS["pairs_per_persona"])
        if "pairs_per_axis" in drawn:
            _save(_pairs_per_axis(rows), root / CHARTS["pairs_per_axis"])
        _save(_answer_lengths(rows), root / CHARTS["answer_lengths"])
        _save(_grounding(personas, min_grounding_score), root / CHARTS["grounding"])
    return drawn


def chart_notes(pairs: dict[str, pa.Table]) -> dict[str, str]:
    """{chart name: sentence} for the bar charts left out because all their bars are alike."""
    rows = _all_facts(pairs)
    notes = {}
    per_persona = Counter((r["persona"], r["type"]) for r in rows)
    personas = sorted({r["persona"] for r in rows})
    shapes = {tuple(per_persona[(p, kind)] for kind, _ in _TYPE_COLORS) for p in personas}
    if len(shapes) == 1:
        personal, divergent = next(iter(shapes))
        notes["pairs_per_persona"] = (
            f"Every persona has the same pairs: {personal:,} personal and {divergent:,} divergent."
        )
    divergent_rows = [r for r in rows if r["type"] == "divergent" and r["axis"]]
    per_axis = Counter((r["axis"], r["split"]) for r in divergent_rows)
    axes = sorted({r["axis"] for r in divergent_rows})
    shapes = {tuple(per_axis[(a, split)] for split, _ in _SPLIT_COLORS) for a in axes}
    if len(shapes) == 1:
        train, test = next(iter(shapes))
        notes["pairs_per_axis"] = f"Every axis has the same divergent pairs: {train:,} in train and {test:,} in test."
    return notes


def _all_facts(pairs: dict[str, pa.Table]) -> list[dict]:
    return [row for split in sorted(pairs) for row in _pair_facts(pairs[split], split)]


def _pair_facts(table: pa.Table, split: str) -> list[dict]:
    """The few facts per pair the charts draw, converted a batch at a time: the whole table as Python objects
    (every answer's text) took ~0.7 MB per persona at its peak, most of the end of a large build."""
    cols = table.select(["persona", "question_type", "axis", "chosen", "rejected"])
    return [
        {
            "split": split,
            "persona": r["persona"],
            "type": r["question_type"],
            "axis": r["axis"],
            "chosen_words": sum(len((m["content"] or "").split()) for m in r["chosen"] or []),
            "rejected_words": sum(len((m["content"] or "").split()) for m in r["rejected"] or []),
        }
        for batch in cols.to_batches(max_chunksize=_BATCH_ROWS)
        for r in batch.to_pylist()
    ]


_BATCH_ROWS = 512


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
    if len(personas) > MAX_BARS:
        per_kind = [[counts[(p, kind)] for p in personas] for kind, _ in _TYPE_COLORS]
        colors, names = [c for _, c in _TYPE_COLORS], [k for k, _ in _TYPE_COLORS]
        return _histogram(
            per_kind,
            colors,
            names,
            "preference pairs of a persona (train + test)",
            "personas",
            f"Pairs per persona ({len(personas):,} personas)",
        )
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
    """Chosen and rejected side by side in each bin (no overlap colour to explain), bins over the
    observed range only (no empty range before the shortest answer)."""
    chosen = [r["chosen_words"] for r in rows]
    rejected = [r["rejected_words"] for r in rows]
    low = min([*chosen, *rejected], default=0)
    high = max([*chosen, *rejected, low + 1])
    n_bins = max(1, min(30, high - low))
    bins = [low + (high - low) * i / n_bins for i in range(n_bins + 1)]
    fig = _figure(3.0)
    ax = fig.add_subplot()
    ax.hist([chosen, rejected], bins=bins, color=["#4C72B0", "#C44E52"], label=["chosen", "rejected"])
    ax.set_xlim(low, high)
    ax.set_xlabel("answer length (words)")
    ax.set_ylabel("pairs")
    ax.set_title("Answer lengths, chosen vs rejected")
    ax.legend(frameon=False)
    return fig


def _histogram(
    series: list[list[int]] | list[list[float]],
    colors: list[str],
    names: list[str],
    xlabel: str,
    ylabel: str,
    title: str,
    *,
    span: tuple[float, float] | None = None,
) -> Figure:
    """Side-by-side histogram bars of each series over the observed range (or ``span``), at most 30 bins."""
    values = [v for s in series for v in s]
    low, high = span or (min(values, default=0), max([*values, min(values, default=0) + 1]))
    n_bins = 20 if span else max(1, min(30, int(high - low)))
    bins = [low + (high - low) * i / n_bins for i in range(n_bins + 1)]
    fig = _figure(3.0)
    ax = fig.add_subplot()
    ax.hist(series, bins=bins, color=colors, label=names)
    ax.set_xlim(low, high)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False)
    return fig


def _grounding(personas: pa.Table, threshold: float | None = None) -> Figure:
    facts = sorted(
        (r["name"], r["grounding_score"] or 0.0) for r in personas.select(["name", "grounding_score"]).to_pylist()
    )
    if len(facts) > MAX_BARS:
        fig = _histogram(
            [[s for _, s in facts]],
            ["#8172B2"],
            ["grounding score"],
            "share of description claims supported by the cited Wikipedia sentences",
            "personas",
            f"Grounding score ({len(facts):,} personas)",
            span=(0.0, 1.0),
        )
        if threshold is not None:
            fig.axes[0].axvline(threshold, color="#C44E52", linestyle="--", label=f"min_grounding_score {threshold:g}")
            fig.axes[0].legend(frameon=False)
        return fig
    fig = _figure(max(2.5, 0.28 * len(facts) + 1.2))
    ax = fig.add_subplot()
    ax.barh([n for n, _ in facts], [s for _, s in facts], color="#8172B2", label="grounding score")
    if threshold is not None:
        ax.axvline(threshold, color="#C44E52", linestyle="--", label=f"min_grounding_score {threshold:g}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of description claims supported by the cited Wikipedia sentences")
    ax.set_title("Grounding score per persona")
    return fig


def grounding_threshold(recipe_text: str) -> float | None:
    """``filters.min_grounding_score`` of a recipe's TOML (the filters' default if unset); None if unknown."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    try:
        value = tomllib.loads(recipe_text).get("filters", {}).get("min_grounding_score")
    except (tomllib.TOMLDecodeError, AttributeError):
        return None
    if value is None:
        try:
            from wikipersona_data.verify.config import FiltersConfig
        except ImportError:
            return None
        value = FiltersConfig().min_grounding_score
    return float(value) if isinstance(value, (int, float)) else None
