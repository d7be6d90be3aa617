"""End to end on a real model: ``wikipersona build builders/local.toml`` against the ``real_llm`` servers.

SmolLM2-135M is far too weak to write good data; what this proves is that the machinery holds on a real
server: the prompts and schemas are followed well enough to parse, nothing runs into the context or
timeouts, and the build ends in one of the two honest outcomes, never in "0 pairs, exit 0":

* a release that verifies and that ``datasets.load_dataset`` loads, with > 0 pairs, or
* a non-zero exit with one ``no release written`` line naming the stage that lost the rows, no release
  folder, and every paid call kept in the work dir.

``EXPECTED`` says which of the two the code on main gives today with this recipe (measured, see
docs/llm.md "Real servers"); the test fails if the outcome changes, so a change is noticed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from wikipersona_data.cli import main

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / "builders" / "local.toml"
EXPECTED = "release"  # or "no-data"


def _cached_calls(work: Path) -> list[dict]:
    calls = []
    for part in sorted((work / "cache" / "calls").glob("*.jsonl")):
        calls += [json.loads(line) for line in part.read_text().splitlines() if line.strip()]
    return calls


@pytest.mark.real_llm
@pytest.mark.slow
@pytest.mark.xfail(
    strict=False,
    reason="until bounded stage schemas and the no-data refusal land on main, describe runs into 'length' "
    "and the build still writes an empty release with exit 0 (issue 10)",
)
def test_build_on_the_real_model_ends_honestly(real_llm, tmp_path: Path, capsys) -> None:
    work, out = tmp_path / "work", tmp_path / "release"
    args = ["build", str(LOCAL), "--work", str(work), "--out", str(out), "--no-progress"]
    args += ["--endpoint-url", f"chat={real_llm.chat_url}", "--endpoint-url", f"embed={real_llm.embed_url}"]
    started = time.monotonic()
    code = main(args)
    seconds = time.monotonic() - started
    captured = capsys.readouterr()
    err_lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    calls = _cached_calls(work)
    print(f"real-model build: exit {code} in {seconds:.0f} s, {len(calls)} calls; {err_lines}")

    assert calls, "the build made no LLM call"
    assert all(c["served_model"] == real_llm.model for c in calls)  # embeddings included
    if EXPECTED == "release":
        assert code == 0, captured.err[-2000:]
        from wikipersona_data.release.selftest import self_test

        counts = self_test(out)  # datasets.load_dataset, offline, counts checked against the manifest
        assert counts["pairs_train"] > 0 and counts["pairs_test"] > 0 and counts["personas"] == 2
        assert main(["verify", str(out)]) == 0
    else:
        assert code != 0
        assert len(err_lines) == 1 and "no release written" in err_lines[0], captured.err[-2000:]
        assert "stage " in err_lines[0] or "split" in err_lines[0]
        assert not out.exists()
