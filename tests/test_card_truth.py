"""The card tells the truth: fictional people are called fictional and linked nowhere real, the recipe's
description reaches it, every build fact it shows has a value, the length bias, the redone rows and the
ledger totals are the manifest's numbers, stages are listed in pipeline order, charts inform."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image
from release_fixtures import RECIPE_TEXT, make_manifest, make_rows

from wikipersona_data.release.charts import grounding_threshold
from wikipersona_data.release.writer import write_release

FILTER_FACTS = {
    "length_bias": {
        "pairs": 44,
        "chosen_longer_share": 0.613636,
        "mean_chars_chosen": 101.25,
        "mean_chars_rejected": 60.5,
        "point_biserial": 0.412345,
    },
    "length_bias_before_filters": {
        "pairs": 46,
        "chosen_longer_share": 0.652174,
        "mean_chars_chosen": 104.0,
        "mean_chars_rejected": 59.0,
        "point_biserial": 0.456789,
    },
    "retried_rows": {"judge": 3, "describe": 1},
    "flags": {"split": {"non_divergent": 2}},
    "divergence": {},
}


def _release(tmp_path: Path, name: str, recipe_text: str = RECIPE_TEXT, **overrides) -> tuple[str, Path]:
    pairs, personas = make_rows()
    manifest = make_manifest(**overrides)
    ledger = {**manifest.data.ledger}
    ledger["build"] = {**ledger["build"], "filters": FILTER_FACTS}
    ledger["by_stage_model"] = [
        *ledger["by_stage_model"],
        {
            "stage": "describe",
            "model": "sim-judge",
            "calls": 4,
            "input_tokens": 10,
            "output_tokens": 5,
            "cost_usd": 0.01,
        },
    ]
    data = manifest.data.model_copy(update={"ledger": ledger})
    data = data.model_copy(update={"recipe": data.recipe.model_copy(update={"text": recipe_text})})
    out = write_release(
        tmp_path / name, pairs=pairs, personas=personas, manifest=manifest.model_copy(update={"data": data})
    )
    return (out / "README.md").read_text(encoding="utf-8"), out


@pytest.fixture(scope="module")
def fictional(tmp_path_factory) -> str:
    card, _ = _release(
        tmp_path_factory.mktemp("fictional"),
        "release",
        fictional_people=True,
        description="A tiny build on invented people; not a dataset to train on.",
    )
    return card


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> tuple[str, Path]:
    return _release(tmp_path_factory.mktemp("real"), "release")


def _body(card: str) -> str:
    return card.split("\n---\n", 1)[1]


def test_fictional_people_are_called_fictional_and_linked_nowhere_real(fictional: str) -> None:
    body = _body(fictional)
    assert "en.wikipedia.org" not in body
    assert "oldid=" not in body
    assert "real, living public figures" not in body
    assert "famous living people" not in body
    assert "The personas are **fictional**" in body
    assert "**4 invented people**" in body
    for name, _title, rev, _axes in (("Ada Quill", "", 101, {}), ("Dora Halvorsen", "", 104, {})):
        assert re.search(rf"^\| {name} \| .* \| {1_200_000 + rev} \| \d \|$", body, re.M), name  # plain, no link


def test_the_recipe_description_reaches_the_card(fictional: str) -> None:
    assert "\n> A tiny build on invented people; not a dataset to train on.\n" in fictional


def test_real_people_keep_their_pinned_revision_links(real: tuple[str, Path]) -> None:
    body = _body(real[0])
    assert "The personas are **real, living public figures**." in body
    assert "[Ada Quill](https://en.wikipedia.org/wiki/Ada_Quill)" in body
    assert "[1200101](https://en.wikipedia.org/w/index.php?oldid=1200101)" in body
    assert "**fictional**" not in body and "invented people" not in body


def test_build_facts_have_no_blank_line(real: tuple[str, Path]) -> None:
    lines = _body(real[0]).split("#### Build facts")[1].split("\n![")[0].strip().splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(r"\s*- \*\*[^*]+:\*\*\s*", line):  # no value: only a group whose items follow, indented
            depth = len(line) - len(line.lstrip())
            assert i + 1 < len(lines) and len(lines[i + 1]) - len(lines[i + 1].lstrip()) > depth, line
    assert "- **filters:**\n  - **flags:**\n    - **split:** non_divergent 2" in "\n".join(lines)


def test_length_bias_figures_are_on_the_card(real: tuple[str, Path]) -> None:
    body = _body(real[0])
    assert (
        "In the released pairs, the chosen answer is the longer one in 61.4 % of 44 pairs "
        "(mean 101 vs 60 characters; point-biserial correlation of length with being chosen 0.412)."
    ) in body
    assert "Before the pair filters, the chosen answer is the longer one in 65.2 % of 46 pairs" in body


def test_redone_rows_have_one_name(real: tuple[str, Path]) -> None:
    body = _body(real[0])
    assert "describe: 1 description regenerated; judge: 3 judgments re-judged." in body
    assert "rejudged" not in body


def test_ledger_total_is_the_manifest_total_and_stages_in_pipeline_order(real: tuple[str, Path]) -> None:
    body = _body(real[0])
    # 104 + 156 + 4 calls; 0.25 + 0.5 + 0.01 dollars, 4 decimals like the build table
    assert "In total: 264 LLM calls, 12,010 input tokens, 5,005 output tokens, $0.7600 at the recipe's prices." in body
    table = body.split("#### Calls, tokens and cost per stage and model")[1]
    stages = re.findall(r"^\| (describe|respond|judge) \|", table, re.M)
    assert stages == ["describe", "respond", "judge"]
    filters = body.split("### Filters")[1].split("###")[0]
    assert re.findall(r"^\| (questions|judge) \|", filters, re.M) == ["questions", "judge"]
    models = body.split("### Models")[1].split("###")[0]
    assert re.findall(r"^\| (respond|judge) \|", models, re.M) == ["respond", "judge"]


def test_grounding_chart_marks_the_threshold(real: tuple[str, Path]) -> None:
    assert grounding_threshold("[filters]\nmin_grounding_score = 0.85\n") == 0.85
    assert grounding_threshold("not toml [") is None
    default = grounding_threshold(RECIPE_TEXT)
    assert default is not None and 0 < default < 1
    # a dashed red vertical line: the chart's pixels hold the threshold colour (#C44E52) only with a threshold
    img = Image.open(real[1] / "charts" / "grounding.png").convert("RGB")
    assert (0xC4, 0x4E, 0x52) in {c for _, c in img.getcolors(1 << 20)}


def test_answer_lengths_chart_starts_at_the_shortest_answer(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    from wikipersona_data.release import charts

    rows = [{"chosen_words": 40 + i, "rejected_words": 50 + i} for i in range(10)]
    fig: Figure = charts._answer_lengths(rows)
    ax = fig.axes[0]
    assert ax.get_xlim() == (40, 59)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["chosen", "rejected"]
    colors = {p.get_facecolor()[:3] for p in ax.patches}
    assert len(colors) == 2  # side by side: no third (overlap) colour outside the legend
