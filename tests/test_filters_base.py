"""FilterStep counting and rejects, FiltersConfig strictness through load_recipe, the per-stage report."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from filters_fixtures import question

from wikipersona_data.errors import ConfigError
from wikipersona_data.stages.recipe import load_recipe
from wikipersona_data.verify.base import Filter, FilterResult, FilterStep
from wikipersona_data.verify.config import FiltersConfig
from wikipersona_data.verify.pipeline import apply_filters
from wikipersona_data.verify.report import (
    JOURNAL_NAME,
    LOG_NAME,
    StageLog,
    filter_counts,
    save_log,
    stage_log,
    stage_report,
)

DEMO = Path(__file__).resolve().parents[1] / "builders" / "demo.toml"


class Short(Filter):
    name = "short"
    reasons = ("too_short",)

    def check(self, row, context):
        return self.drop("too_short", f"{len(row.text)} chars") if len(row.text) < 10 else FilterResult.keep()


class Shout(Filter):
    name = "shout"
    reasons = ("shouting", "question_mark")
    flags = ("loud",)

    async def check(self, row, context):  # async checks are awaited
        if row.text.isupper():
            return self.drop("shouting")
        if row.text.endswith("??"):
            return self.drop("question_mark", "two of them")
        return FilterResult.keep(
            row.model_copy(update={"text": row.text.lower()}), flags=["loud"] if "!" in row.text else ()
        )


ROWS = [
    question("hi", qid="a"),
    question("WHAT IS THIS FOR?", qid="b"),
    question("Is this a question??", qid="c"),
    question("Quite fine, really!", qid="d"),
    question("Another Fine Question", qid="e"),
]


def test_step_counts_rejects_and_rewrites() -> None:
    result = asyncio.run(FilterStep("questions", [Short(), Shout()], "question_id").run(ROWS, {}))
    assert [r.question_id for r in result.kept] == ["d", "e"]
    assert [r.text for r in result.kept] == ["quite fine, really!", "another fine question"]  # rewritten rows
    assert result.counts["short"].kept == 4 and result.counts["short"].dropped == {"too_short": 1}
    assert result.counts["shout"].kept == 2
    assert result.counts["shout"].dropped == {"shouting": 1, "question_mark": 1}
    assert result.counts["shout"].flagged == {"loud": 1}
    assert [(r.id, r.reason, r.detail) for r in result.rejects] == [
        ("a", "too_short", "short: 2 chars"),
        ("b", "shouting", "shout: "),
        ("c", "question_mark", "shout: two of them"),
    ]
    assert all(r.stage == "questions" for r in result.rejects)
    assert result.decisions == {"a": "too_short", "b": "shouting", "c": "question_mark", "d": None, "e": None}
    assert result.flags == {"d": ["loud"]}


def test_reasons_are_unique_and_declared() -> None:
    class Twin(Short):
        name = "twin"

    with pytest.raises(ValueError, match="too_short"):
        FilterStep("questions", [Short(), Twin()], "question_id")
    with pytest.raises(ValueError, match="undeclared"):
        Short().drop("made_up")


def recipe_with(tmp_path: Path, filters: str) -> Path:
    """The demo recipe with its own [filters] table replaced by ``filters``."""
    text = re.sub(r"\n\[filters\]\n(?:(?!\[).*\n?)*", "\n", DEMO.read_text(encoding="utf-8"))
    text += "\n[filters]\n" + filters + "\n"
    path = tmp_path / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("min_grounding = 0.9", "filters.min_grounding: unknown key"),
        ("min_grounding_score = 1.5", "filters.min_grounding_score: Input should be less than or equal to 1"),
        ("question_min_chars = 500", "filters.question_min_chars: must be <= question_max_chars"),
        ("balance_length = 'yes'", "filters.balance_length: Input should be a valid boolean"),
    ],
)
def test_filters_table_is_strict(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_recipe(recipe_with(tmp_path, table))
    assert str(err.value).startswith(f"{tmp_path / 'recipe.toml'}: {message}")
    assert "\n" not in str(err.value)


def test_filters_table_defaults_and_values(tmp_path: Path) -> None:
    recipe = load_recipe(
        recipe_with(tmp_path, "min_grounding_score = 0.8\ncategory_aliases = { ketogenic = ['keto'] }")
    )
    cfg = FiltersConfig.model_validate(recipe.filters)
    assert cfg.min_grounding_score == 0.8 and cfg.category_aliases == {"ketogenic": ["keto"]}
    assert cfg.max_regenerations == FiltersConfig().max_regenerations  # defaults filled in


def test_apply_filters_logs_latest_verdicts_and_reports(tmp_path: Path) -> None:
    """Repeated calls on growing collections report each row once, with its latest verdict, and survive a restart."""
    stage_dir = tmp_path / "questions"
    context = {"recipe": SimpleNamespace(filters={}), "stage_dir": stage_dir}
    rows = [
        question("What is a good breakfast before a long run?", qid="a", position=0),
        question("What's a good breakfast before a long run?", qid="b", position=1),
        question("Hi?", qid="c", position=2),
    ]
    kept, rejects = asyncio.run(apply_filters("questions", rows[:2], context))
    assert [r.question_id for r in kept] == ["a"] and [r.reason for r in rejects] == ["near_duplicate"]
    kept, rejects = asyncio.run(apply_filters("questions", rows, context))  # the top-up call: one more row
    assert [r.question_id for r in kept] == ["a"]
    assert sorted(r.reason for r in rejects) == ["near_duplicate", "question_too_short"]
    counts = filter_counts(stage_log(stage_dir))
    assert counts["question_length"] == {"kept": 2, "dropped": {"question_too_short": 1}}
    assert counts["question_duplicate"] == {"kept": 1, "dropped": {"near_duplicate": 1}}
    assert counts["answerable"] == {"kept": 2, "dropped": {}}
    assert counts["text_safety"] == {"kept": 3, "dropped": {}}  # first in every text-making stage
    order = ["text_safety", "question_length", "answerable", "identity_leak", "category_leak", "question_duplicate"]
    assert list(counts) == order
    on_disk = StageLog.load(stage_dir / LOG_NAME)  # the stage has not finished: filters.json + its journal
    assert on_disk.decisions == {"a": None, "b": "near_duplicate", "c": "question_too_short"}
    # a resumed build (a new BuildContext, its own logs) reads the file
    stats = {"questions": SimpleNamespace(rows=1, drop_reasons={"short": 1, "near_duplicate": 1})}
    report = stage_report(tmp_path, stats)
    assert report["questions"]["question_duplicate"] == counts["question_duplicate"]
    assert report["questions"]["stage"] == {"kept": 1, "dropped": {"short": 1}}  # the stage's own reasons only


def test_filter_log_is_journaled_per_call_and_written_once_per_stage(tmp_path: Path) -> None:
    """Each call appends only its own verdicts (no rewrite of filters.json per call: quadratic on large builds);
    a killed stage's journal, torn last line included, replays to the same log; folding it gives the file the
    in-memory log would have written, and the journal goes."""
    stage_dir = tmp_path / "questions"
    logs: dict = {}
    context = {"recipe": SimpleNamespace(filters={}), "stage_dir": stage_dir, "filter_logs": logs}
    texts = [f"What do you eat before run number {i} of the week?" for i in range(30)]
    rows = [question(t, qid=f"q{i:02d}", position=i) for i, t in enumerate(texts)] + [question("Hi?", qid="short")]
    for row in rows:  # one call per row, as judge does per judgment
        asyncio.run(apply_filters("questions", [row], context))
    assert not (stage_dir / LOG_NAME).exists()
    journal = (stage_dir / JOURNAL_NAME).read_text(encoding="utf-8").splitlines()
    assert len(journal) == len(rows) and all(len(json.loads(line)["decisions"]) == 1 for line in journal)
    [live] = logs.values()
    with (stage_dir / JOURNAL_NAME).open("a", encoding="utf-8") as handle:
        handle.write('{"config": "torn')  # a kill mid-append
    assert StageLog.load(stage_dir / LOG_NAME).__dict__ == live.__dict__
    asyncio.run(apply_filters("questions", [question("Why?", qid="after-kill")], context))  # appends after the tear
    assert StageLog.load(stage_dir / LOG_NAME).decisions["after-kill"] == "question_too_short"
    save_log(stage_dir, live)
    assert not (stage_dir / JOURNAL_NAME).exists()
    expected = json.dumps(live.__dict__, sort_keys=True, indent=1, ensure_ascii=False)
    assert (stage_dir / LOG_NAME).read_text(encoding="utf-8") == expected
    assert live.decisions["short"] == "question_too_short" and live.decisions["q00"] is None


def test_changed_settings_start_a_fresh_log(tmp_path: Path) -> None:
    stage_dir = tmp_path / "questions"
    rows = [question("Hi?", qid="c")]
    asyncio.run(apply_filters("questions", rows, {"recipe": SimpleNamespace(filters={}), "stage_dir": stage_dir}))
    assert stage_log(stage_dir).decisions == {"c": "question_too_short"}
    loose = {
        "recipe": SimpleNamespace(filters={"question_min_chars": 2, "question_min_words": 1}),
        "stage_dir": stage_dir,
    }
    asyncio.run(apply_filters("questions", [question("Why now?", qid="d")], loose))
    assert stage_log(stage_dir).decisions == {"d": None}


def test_stages_without_filters_pass_rows_through() -> None:
    rows = [object(), object()]
    # (every stage of the build has filters now: personas gets the text-safety filter, tested in test_security_*)
    kept, rejects = asyncio.run(apply_filters("no-such-stage", rows, {"recipe": SimpleNamespace(filters={})}))
    assert kept == rows and rejects == []
