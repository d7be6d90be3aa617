"""Render the release card (README.md) from the ``dataset_card.md`` template and the manifest.

Every number on the card comes from the manifest or the written tables, never from prose, so the
card cannot drift from the data. The YAML front matter is computed (configs that match the files,
complete ``dataset_info`` from the pyarrow schemas and the parquet files) and parsed back with
``huggingface_hub.DatasetCard`` before it is written, so a card the Hub cannot read never ships.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jinja2
import pyarrow as pa
import yaml
from datasets import Features
from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from huggingface_hub import DatasetCard

from wikipersona_data.errors import ConfigError
from wikipersona_data.release.charts import chart_notes
from wikipersona_data.release.manifest import Manifest
from wikipersona_data.release.tables import CONFIGS, contract, has_reward_band, split_glob
from wikipersona_data.stages.order import pipeline_rank

TEMPLATE_PATH = Path(__file__).with_name("dataset_card.md")  # the repo-root dataset_card.md links here
PLACEHOLDER_REPO = "ORG/NAME"
_EXAMPLE_CHARS = 300


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M" if n < 10_000_000 else "n>10M"


def front_matter(manifest: Manifest, split_bytes: dict[tuple[str, str], int]) -> dict[str, Any]:
    """The computed part of the YAML header: configs, dataset_info and size category.

    ``split_bytes`` maps (config, split) to the Arrow size of that split (``num_bytes`` as
    ``datasets`` reports it); row counts and download sizes come from ``manifest.data.files``.
    """
    files = manifest.data.files
    configs = [
        {
            "config_name": "pairs",
            "default": True,
            "data_files": [{"split": s, "path": split_glob("pairs", s)} for s in ("train", "test")],
        },
        {"config_name": "personas", "data_files": [{"split": "train", "path": split_glob("personas", "train")}]},
    ]
    infos = DatasetInfosDict()
    for config in CONFIGS:
        contract_ = contract(config, has_reward_band(manifest))
        splits = SplitDict()
        download = 0
        for (cfg, split), num_bytes in sorted(split_bytes.items()):
            if cfg != config:
                continue
            prefix = f"data/{config}/{split}-"
            entries = [e for path, e in files.items() if path.startswith(prefix)]
            splits.add(SplitInfo(name=split, num_bytes=num_bytes, num_examples=sum(e.rows or 0 for e in entries)))
            download += sum(e.bytes for e in entries)
        infos[config] = DatasetInfo(
            features=Features.from_arrow_schema(contract_),
            splits=splits,
            download_size=download,
            dataset_size=sum(s.num_bytes for s in splits.values()),
        )
    card_data: dict[str, Any] = {}
    infos.to_dataset_card_data(card_data)
    n_pairs = manifest.data.counts.get("pairs_train", 0) + manifest.data.counts.get("pairs_test", 0)
    return {"size_categories": [size_category(n_pairs)], "configs": configs, "dataset_info": card_data["dataset_info"]}


def render_card(
    manifest: Manifest,
    *,
    pairs: dict[str, pa.Table],
    personas: pa.Table,
    split_bytes: dict[tuple[str, str], int],
    charts: dict[str, str],
    template_path: Path | None = None,
) -> str:
    """Return README.md text; raises ConfigError if the template is missing or renders an unreadable card."""
    path = template_path or TEMPLATE_PATH
    try:
        template_text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the card template ({err.strerror})") from None
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
    env.filters["num"] = _num
    env.filters["cell"] = _cell
    d = manifest.data
    context = {
        "d": d,
        "tag": manifest.tag,
        "repo_id": d.repo_id or PLACEHOLDER_REPO,
        "computed_yaml": yaml.safe_dump(
            front_matter(manifest, split_bytes), sort_keys=False, allow_unicode=True, width=1000
        ).rstrip("\n"),
        "counts": d.counts,
        "n_pairs": d.counts.get("pairs_train", 0) + d.counts.get("pairs_test", 0),
        "example": _example(pairs),
        "models": [
            (stage, use.requested, ", ".join(use.served) or "n/a")
            for stage, use in sorted(d.models.items(), key=lambda kv: pipeline_rank(kv[0]))
        ],
        "templates": sorted(d.templates.items()),
        "filters": _filter_rows(d.filter_report),
        "text_safety": text_safety(d.filter_report),
        "ledger_summary": _ledger_summary(d.ledger),
        "ledger_sections": _ledger_sections(d.ledger),
        "length_bias": _length_bias(d.ledger),
        "reward_band": _reward_band(d.ledger),
        "retried": _retried(d.ledger),
        "divergence": sorted(d.divergence.items()),
        "personas": _persona_rows(personas, fictional=d.fictional_people),
        "fictional": d.fictional_people,
        "description": d.description.strip(),
        "charts": charts,
        "chart_notes": chart_notes(pairs),
        "changelog": sorted(d.changelog, key=lambda e: tuple(int(x) for x in e.version.split(".")), reverse=True),
        "endpoints": d.endpoints,
    }
    try:
        text = env.from_string(template_text).render(**context)
    except jinja2.TemplateError as err:
        raise ConfigError(f"{path}: card template error: {err}") from None
    text = re.sub(r"\n{3,}", "\n\n", text)  # template control lines leave blank runs; markdown needs one
    _check_parses(text, path)
    return text


def _check_parses(text: str, template: Path) -> None:
    data = DatasetCard(text).data.to_dict()
    names = sorted(c.get("config_name") for c in data.get("configs") or [])
    if names != ["pairs", "personas"]:
        raise ConfigError(f"{template}: rendered card front matter has configs {names}, expected pairs and personas")


def _cell(value: Any) -> str:
    """A markdown table cell: pipes escaped, one line."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _num(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)


def _example(pairs: dict[str, pa.Table]) -> str:
    """The first train pair as JSON, long texts cut (marked with an ellipsis) so the card stays readable."""
    table = pairs.get("train")
    if table is None or table.num_rows == 0:
        table = next((t for t in pairs.values() if t.num_rows), None)
    if table is None:
        return "{}"
    row = table.slice(0, 1).to_pylist()[0]
    return json.dumps(_shorten(row), indent=2, ensure_ascii=False)


def _shorten(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _EXAMPLE_CHARS:
        return value[:_EXAMPLE_CHARS] + "…"
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    return value


def _filter_rows(report: dict[str, dict[str, Any]]) -> list[tuple[str, str, int, int, str]]:
    rows = []
    for stage, filters in sorted(report.items(), key=lambda kv: pipeline_rank(kv[0])):
        for name, counts in filters.items():  # the filters' own order (the order they run in)
            dropped = sum(counts.dropped.values())
            reasons = ", ".join(f"{reason}: {n:,}" for reason, n in sorted(counts.dropped.items())) or "none"
            rows.append((stage, name, counts.kept, dropped, reasons))
    return rows


SAFETY_REASONS = ("prompt_injection", "carries_secret", "unsafe_characters")


def text_safety(report: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Rows the text-safety filter looked at (all stages) and the share it dropped per reason."""
    counts = [filters["text_safety"] for filters in report.values() if "text_safety" in filters]
    if not counts:
        return None
    checked = sum(c.kept + sum(c.dropped.values()) for c in counts)
    dropped = {r: sum(c.dropped.get(r, 0) for c in counts) for r in SAFETY_REASONS}
    rate = {r: (n / checked if checked else 0.0) for r, n in dropped.items()}
    return {"checked": checked, "dropped": dropped, "rate": rate}


_SECTION_TITLES = {
    "by_stage_model": "Calls, tokens and cost per stage and model",
    "totals": "Totals",
    "by_mode": "Paid calls by mode (online, batch API, offline files)",
    "cache": "Cache",
    "build": "Build facts",
}
_LEAD_COLUMNS = ("stage", "model")
_NOT_SUMMED = ("share", "mean", "rate", "fraction", "seed")


def _ledger_summary(ledger: dict[str, Any]) -> str:
    """One sentence of totals (calls, tokens, cost), from ``by_stage_model`` rows or a ``totals`` dict."""
    rows = ledger.get("by_stage_model")
    if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
        totals = _column_totals(rows)
        given = ledger.get("totals")
        if isinstance(given, dict) and isinstance(given.get("cost_usd"), (int, float)):
            totals["cost_usd"] = given["cost_usd"]  # summed unrounded, like the build's table
    elif isinstance(ledger.get("totals"), dict):
        totals = ledger["totals"]
    else:
        return ""
    parts = [f"{_num(totals[k])} {label}" for k, label in _SUMMARY_FIELDS if isinstance(totals.get(k), (int, float))]
    cached, given_input = totals.get("cached_input_tokens"), totals.get("input_tokens")
    if isinstance(cached, int) and isinstance(given_input, int) and given_input:
        parts.append(f"{cached / given_input:.1%} of the input served from the provider's prompt cache")
    if isinstance(totals.get("cost_usd"), (int, float)):
        parts.append(f"${totals['cost_usd']:,.4f} at the recipe's prices{_by_mode(ledger.get('by_mode'))}")
    return ", ".join(parts)


def _by_mode(modes: Any) -> str:
    """`` (batch: 40 calls $0.01; online: 2 calls $0.02)``: what was paid how, or "" without a mode table."""
    if not isinstance(modes, list) or not modes or not all(isinstance(m, dict) for m in modes):
        return ""
    shown = [
        f"{m.get('mode')}: {_num(m.get('calls', 0))} calls"
        + (f" ${m['cost_usd']:,.4f}" if isinstance(m.get("cost_usd"), (int, float)) else "")
        for m in modes
    ]
    return f" ({'; '.join(shown)})"


_SUMMARY_FIELDS = (("calls", "LLM calls"), ("input_tokens", "input tokens"), ("output_tokens", "output tokens"))


_SHOWN_ELSEWHERE = ("length_bias", "length_bias_before_filters", "retried_rows")
"""Build facts the card states in sentences of their own (``_length_bias``, ``_retried``)."""


def _ledger_sections(ledger: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ledger section as markdown lines: lists of records become tables (with a total row), dicts
    become bullet lists (nested dicts nested lists; empty ones left out). Unknown shapes still render."""
    sections = []
    order = [k for k in _SECTION_TITLES if k in ledger] + sorted(k for k in ledger if k not in _SECTION_TITLES)
    for key in order:
        value = ledger[key]
        title = _SECTION_TITLES.get(key, key.replace("_", " ").capitalize())
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            lines = _records_table(sorted(value, key=lambda r: (pipeline_rank(str(r.get("stage", ""))), str(r))))
        elif isinstance(value, dict):
            lines = _bullets(_without(value, _SHOWN_ELSEWHERE) if key == "build" else value)
        else:
            lines = [f"- {_num(value)}"]
        if lines:
            sections.append({"title": title, "lines": lines})
    return sections


def _without(section: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``section`` (and its one level of nested dicts) without ``keys``."""
    out = {}
    for key, value in section.items():
        if key in keys:
            continue
        out[key] = {k: v for k, v in value.items() if k not in keys} if isinstance(value, dict) else value
    return out


def _records_table(rows: list[dict[str, Any]]) -> list[str]:
    keys = {k for r in rows for k, v in r.items() if not isinstance(v, (dict, list))}
    columns = [c for c in _LEAD_COLUMNS if c in keys] + sorted(keys - set(_LEAD_COLUMNS))
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |"]
    lines.append("|" + "".join("---|" if c in _LEAD_COLUMNS else "---:|" for c in columns))
    lines += ["| " + " | ".join(_cell(_num(r.get(c, ""))) for c in columns) + " |" for r in rows]
    totals = _column_totals(rows)
    if len(rows) > 1 and totals:
        first = "**total**"
        cells = [first if i == 0 else _cell(_num(totals.get(c, ""))) for i, c in enumerate(columns)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _column_totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    totals: dict[str, Any] = {}
    for row in rows:
        for key, value in row.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if any(word in key for word in _NOT_SUMMED):
                continue
            totals[key] = totals.get(key, 0) + value
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in totals.items()}


def _bullets(section: dict[str, Any], depth: int = 0) -> list[str]:
    """A dict of scalars is one line per key; a dict of dicts nests (``-`` lists indented by 2)."""
    lines = []
    pad = "  " * depth
    for key, value in sorted(section.items()):
        if isinstance(value, dict):
            if not value:
                continue
            if all(not isinstance(v, (dict, list)) for v in value.values()):
                inner = ", ".join(f"{k} {_num(v)}" for k, v in sorted(value.items()))
                lines.append(f"{pad}- **{_cell(key)}:** {_cell(inner)}")
            else:
                nested = _bullets(value, depth + 1)
                if nested:
                    lines += [f"{pad}- **{_cell(key)}:**", *nested]
        elif not isinstance(value, list):
            lines.append(f"{pad}- **{_cell(key)}:** {_cell(_num(value))}")
    return lines


def _filter_facts(ledger: dict[str, Any]) -> dict[str, Any]:
    build = ledger.get("build")
    filters = build.get("filters") if isinstance(build, dict) else None
    return filters if isinstance(filters, dict) else {}


def _length_bias(ledger: dict[str, Any]) -> list[str]:
    """Sentences on how answer length relates to being chosen, after (and, if different, before) the filters."""
    facts = _filter_facts(ledger)
    after, before = facts.get("length_bias") or {}, facts.get("length_bias_before_filters") or {}
    lines = []
    for label, lb in (("In the released pairs", after), ("Before the pair filters", before)):
        if not lb.get("pairs") or (lb is before and before == after):
            continue
        lines.append(
            f"{label}, the chosen answer is the longer one in {100 * lb['chosen_longer_share']:.1f} % of "
            f"{lb['pairs']:,} pairs (mean {lb['mean_chars_chosen']:,.0f} vs {lb['mean_chars_rejected']:,.0f} "
            f"characters; point-biserial correlation of length with being chosen {lb['point_biserial']:.3f})."
        )
    return lines


def _reward_band(ledger: dict[str, Any]) -> list[str]:
    """Sentences on the reward band (recipe ``[stages.reward]``) and the reward gap between chosen and rejected;
    none for a build without the band."""
    build = ledger.get("build")
    band = build.get("reward_band") if isinstance(build, dict) else None
    if not isinstance(band, dict) or not band.get("pairs"):
        return []
    lines = [
        f"Every candidate answer was scored by the reward model `{band['model']}` (`/{band['route']}`); per question "
        f"only the {band['band']} candidates of comparable score ({band['band_position']} window of the ranked "
        f"scores) went on to the diversity selection. Mean spread of scores per question: "
        f"{band['mean_spread_all']:.4f} over all scored candidates, {band['mean_spread_band']:.4f} inside the band."
    ]
    lines.append(
        f"Reward gap between chosen and rejected over {band['pairs']:,} pairs: mean {band['mean_gap']:+.4f} "
        f"(mean absolute {band['mean_abs_gap']:.4f}; chosen {band['mean_chosen']:.4f} vs rejected "
        f"{band['mean_rejected']:.4f}); the chosen answer has the higher reward in "
        f"{100 * band['chosen_higher_share']:.1f} % of pairs. Scores are in the pairs' `chosen_reward` and "
        "`rejected_reward` columns."
    )
    return lines


_RETRY_NAMES = {"describe": ("description", "regenerated"), "judge": ("judgment", "re-judged")}
"""The one name of a redone row per stage (the build table says the same: stages/context.RETRY_LABELS)."""


def _retried(ledger: dict[str, Any]) -> list[str]:
    """'1 judgment re-judged' lines: rows produced again because the filters refused the first attempt."""
    out = []
    for stage, n in sorted(
        (_filter_facts(ledger).get("retried_rows") or {}).items(), key=lambda kv: pipeline_rank(kv[0])
    ):
        unit, verb = _RETRY_NAMES.get(stage, ("row", "redone"))
        out.append(f"{stage}: {n:,} {unit}{'' if n == 1 else 's'} {verb}")
    return out


def _persona_rows(personas: pa.Table, *, fictional: bool = False) -> list[dict[str, Any]]:
    """Table rows of the Personas section; for fictional people no link (their Wikipedia pages do not exist)."""
    rows = personas.select(
        ["persona_id", "name", "wiki_title", "wiki_revision_id", "wiki_url", "axes", "grounding_score", "persona_fold"]
    ).to_pylist()
    out = []
    for r in sorted(rows, key=lambda r: r["name"] or ""):
        axes = "; ".join(f"{a['axis']}: {a['category']}" for a in r["axes"] or [])
        if not r["wiki_revision_id"]:
            revision = "n/a"
        elif fictional:
            revision = str(r["wiki_revision_id"])
        else:
            revision = f"[{r['wiki_revision_id']}](https://en.wikipedia.org/w/index.php?oldid={r['wiki_revision_id']})"
        grounding = "n/a" if r["grounding_score"] is None else f"{r['grounding_score']:.2f}"
        name = _cell(r["name"])
        out.append(
            {
                "name": r["name"],
                "title": r["wiki_title"],
                "url": None if fictional else r["wiki_url"],
                "link": name if fictional or not r["wiki_url"] else f"[{name}]({r['wiki_url']})",
                "axes": axes or "none",
                "grounding": grounding,
                "revision": revision,
                "fold": r["persona_fold"],
            }
        )
    return out
