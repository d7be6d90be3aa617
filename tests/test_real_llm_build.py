"""End to end on a real model: tiny builds against the ``real_llm`` servers (llama.cpp + SmolLM2-135M).

SmolLM2-135M is far too weak to write good data; what this proves is that the machinery holds on a real
server (issue 10):

* every stage's replies parse: no stage loses more than 20 % of its calls to ``length`` or invalid JSON
  (``MAX_LOST``; measured per stage in docs/llm.md "Real servers"), and every call was answered by the
  real model;
* the build ends in one of the two honest outcomes, never in "0 pairs, exit 0": a release that verifies
  and that ``datasets.load_dataset`` loads, or a non-zero exit with one ``no release written`` line naming
  the stage that lost the rows, no release folder, and every paid call kept in the work dir.

``local.toml`` runs every stage on the real model; its descriptions rarely pass the grounding filter, so
``local-mixed.toml`` (the simulator describes) is what makes questions, respond and judge meet the model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from wikipersona_data.cli import main
from wikipersona_data.llm.callstats import chat_calls_by_stage

ROOT = Path(__file__).resolve().parents[1]
MAX_LOST = 0.2
REAL_STAGES = {"local.toml": ("describe",), "local-mixed.toml": ("questions", "respond", "judge")}
"""Stages each recipe must bring to the real model (later ones run only if rows survive the filters)."""


def _cached_calls(work: Path) -> list[dict]:
    calls = []
    for part in sorted((work / "cache" / "calls").glob("*.jsonl")):
        calls += [json.loads(line) for line in part.read_text().splitlines() if line.strip()]
    return calls


@pytest.mark.real_llm
@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(REAL_STAGES))
def test_build_on_the_real_model_parses_and_ends_honestly(real_llm, recipe: str, tmp_path: Path, capsys) -> None:
    work, out = tmp_path / "work", tmp_path / "release"
    args = ["build", str(ROOT / "builders" / recipe), "--work", str(work), "--out", str(out), "--no-progress"]
    args += ["--endpoint-url", f"chat={real_llm.chat_url}", "--endpoint-url", f"embed={real_llm.embed_url}"]
    started = time.monotonic()
    code = main(args)
    seconds = time.monotonic() - started
    captured = capsys.readouterr()
    err_lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    by_stage = chat_calls_by_stage(work)
    print(f"real-model build {recipe}: exit {code} in {seconds:.0f} s; {by_stage}; {err_lines}")

    real_calls = [c for c in _cached_calls(work) if not c["spec"]["model"].startswith("sim-")]
    assert real_calls, "the build made no call to the real model"
    assert all(c["served_model"] == real_llm.model for c in real_calls)  # embeddings included
    for stage in REAL_STAGES[recipe]:
        assert by_stage.get(stage), f"stage {stage} made no call to the real model"
    for stage, figures in by_stage.items():
        assert figures.lost_share <= MAX_LOST, (stage, figures)

    if code == 0:
        from wikipersona_data.release.selftest import self_test

        counts = self_test(out)  # datasets.load_dataset, offline, counts checked against the manifest
        assert counts["pairs_train"] > 0 and counts["pairs_test"] > 0 and counts["personas"] == 2
        assert main(["verify", str(out)]) == 0
    else:
        assert code == 2, captured.err[-2000:]
        assert len(err_lines) == 1 and "no release written" in err_lines[0], captured.err[-2000:]
        assert "stage " in err_lines[0] and "top reasons" in err_lines[0]
        assert "Traceback" not in captured.err
        assert not out.exists()
