"""The evaluation's charts (PNG, byte-identical for identical figures): win rate by prefix mode and axis, and
the distribution of per-persona win rates per prefix mode. Drawn from ``eval.json``'s figures only, with
matplotlib's object API and Agg canvas, as the card's charts (``release/charts.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CHARTS = {
    "win_rate_by_prefix_axis": "charts/win_rate_by_prefix_axis.png",
    "win_rate_per_persona": "charts/win_rate_per_persona.png",
    "accuracy_by_prefix_axis": "charts/accuracy_by_prefix_axis.png",
    "reward_by_prefix_axis": "charts/reward_by_prefix_axis.png",
}
_STYLE = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B2", "#937860", "#DA8BC3", "#8C8C8C")


def render(out: Path, report: dict[str, Any]) -> dict[str, str]:
    """Write the charts the report has figures for; returns {chart name: path relative to ``out``}."""
    from matplotlib import rc_context

    drawn: dict[str, str] = {}
    (out / "charts").mkdir(parents=True, exist_ok=True)
    with rc_context(_STYLE):
        if report.get("win_rate"):
            by_mode = report["win_rate"]["by_mode"]
            _save(_by_prefix_axis(by_mode, "win rate vs chosen (tie = 0.5)", "Policy win rate by prefix and axis"),
                  out / CHARTS["win_rate_by_prefix_axis"])  # fmt: skip
            drawn["win_rate_by_prefix_axis"] = CHARTS["win_rate_by_prefix_axis"]
            _save(_per_persona(by_mode), out / CHARTS["win_rate_per_persona"])
            drawn["win_rate_per_persona"] = CHARTS["win_rate_per_persona"]
        for kind, title in (("accuracy", "Preference accuracy of the judge"), ("reward", "Reward-model accuracy")):
            if report.get(kind):
                name = f"{kind}_by_prefix_axis"
                figure = _by_prefix_axis(report[kind]["by_mode"], "share of pairs where chosen is preferred", title)
                _save(figure, out / CHARTS[name])
                drawn[name] = CHARTS[name]
    return drawn


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})


def _by_prefix_axis(by_mode: dict[str, Any], ylabel: str, title: str) -> Figure:
    """Grouped bars: one group per prefix mode; bars overall, personal, then each axis; 95 % intervals."""
    modes = [m for m, s in by_mode.items() if s]
    axes = sorted({a for m in modes for a in by_mode[m]["by_axis"]})
    series = [("overall", lambda s: s["rate"]), ("personal", lambda s: s["by_type"]["personal"])]
    series += [(a, lambda s, a=a: s["by_axis"].get(a)) for a in axes]
    fig = _figure(max(5.0, 1.2 * len(modes) + 2.5), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    for k, (name, get) in enumerate(series):
        xs, ys, lo, hi = [], [], [], []
        for i, mode in enumerate(modes):
            f = get(by_mode[mode])
            if f:
                xs.append(i + (k - (len(series) - 1) / 2) * width)
                ys.append(f["value"])
                lo.append(f["value"] - f["ci95"][0])
                hi.append(f["ci95"][1] - f["value"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, color=_COLORS[k % len(_COLORS)], label=name)
    ax.axhline(0.5, color="#333333", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(modes)), modes)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("prefix mode")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def _per_persona(by_mode: dict[str, Any]) -> Figure:
    """Per prefix mode, every persona's win rate as a dot (and a box over them): equity at a glance."""
    modes = [m for m, s in by_mode.items() if s]
    values = [[f["value"] for _, f in sorted(by_mode[m]["by_persona"].items())] for m in modes]
    fig = _figure(max(4.5, 1.0 * len(modes) + 2.0), 3.4)
    ax = fig.add_subplot()
    ax.boxplot(values, positions=range(len(modes)), widths=0.5, showfliers=False)
    for i, vals in enumerate(values):
        n = len(vals)
        xs = [i + (j - (n - 1) / 2) * (0.3 / max(1, n)) for j in range(n)]
        ax.scatter(xs, vals, s=12, color=_COLORS[0], zorder=3)
    ax.axhline(0.5, color="#333333", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(modes)), modes)
    ax.set_ylim(0, 1)
    ax.set_ylabel("persona's win rate vs chosen")
    ax.set_xlabel("prefix mode")
    ax.set_title("Win rate per persona")
    return fig
