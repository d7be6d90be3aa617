"""Describe trims the article to the endpoint's context before sending (issue 10 item 5).

A small local server has a small context (llm-local: 2,048 tokens per slot). Without trimming, a long
article's describe prompt is refused (``prompt_too_long``) and the persona is lost; with it, the least
relevant sentences are left out, the call fits, and the row says how many were left out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from lifecycle_fixtures import demo_build

from wikipersona_data.cli import main
from wikipersona_data.llm.ledger import estimate_tokens

DEMO = Path(__file__).resolve().parents[1] / "wikipersona_data" / "demo" / "recipe.toml"
CONTEXT = 2200  # describe's max_tokens is 1200 in the demo recipe: about 970 prompt tokens remain

BUDGET = CONTEXT - 1200 - 32


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _build(recipe: Path, tmp_path: Path, name: str) -> Path:
    work = tmp_path / name
    assert (
        main(["build", str(recipe), "--work", str(work), "--out", str(tmp_path / f"{name}-out"), "--no-progress"]) == 0
    )
    return work


def _shown(work: Path, budget: int | None = None) -> dict[str, int]:
    """persona_id -> article sentences shown in the prompt of its kept description."""
    specs = {}
    for part in sorted((work / "cache" / "calls").glob("*.jsonl")):
        specs.update({rec["key"]: rec["spec"] for rec in _rows(part)})
    shown = {}
    for row in _rows(work / "describe" / "rows.jsonl"):
        spec = specs[row["provenance"]["call_keys"][-1]]
        prompt = "\n".join(m["content"] for m in spec["messages"])
        shown[row["persona_id"]] = len(re.findall(r"^\[[0-9]+\.[0-9]+\] ", prompt, flags=re.M))
        if budget is not None:
            assert estimate_tokens(spec["messages"]) <= budget  # it fit before it was sent
    return shown


def test_describe_prompts_are_trimmed_to_the_context_and_the_trim_is_recorded(tmp_path: Path, tmp_path_factory) -> None:
    text = DEMO.read_text()
    anchor = 'profile = "sim"\n'
    assert anchor in text
    small = tmp_path / "recipe.toml"
    small.write_text(text.replace(anchor, anchor + f"context_tokens = {CONTEXT}\n", 1))

    full_work = demo_build(tmp_path_factory)["work"]  # the shared demo build: no context known, nothing trimmed
    small_work = _build(small, tmp_path, "small")
    full_rows = {r["persona_id"]: r for r in _rows(full_work / "describe" / "rows.jsonl")}
    small_rows = {r["persona_id"]: r for r in _rows(small_work / "describe" / "rows.jsonl")}
    assert all(r["sentences_left_out"] == 0 for r in full_rows.values())  # no context known: nothing trimmed
    rejects = _rows(small_work / "describe" / "rejects.jsonl")
    assert not [r for r in rejects if r["reason"] in ("prompt_too_long", "llm_failure")], rejects
    assert small_rows.keys() == full_rows.keys()  # no persona lost to the small context
    trimmed = [r for r in small_rows.values() if r["sentences_left_out"] > 0]
    assert trimmed, "the demo articles are long enough that some prompt must be trimmed at this context"

    full_shown, small_shown = _shown(full_work), _shown(small_work, BUDGET)
    assert max(full_shown.values()) > max(small_shown.values())
    for pid, row in small_rows.items():
        assert small_shown[pid] + row["sentences_left_out"] == full_shown[pid]
