"""The offline round trip on a real server: request files exported for ``vllm run-batch`` are answered by a
real llama.cpp (SmolLM2-135M) line by line, as ``vllm run-batch`` would, imported, and the build goes on.

The simulator answers the same files in tests/test_batch.py; this shows the exported lines are requests a
real OpenAI-compatible server takes as they are (model, messages joined for a chat template that wants
alternating roles, ``response_format`` json_schema, ``max_tokens``, ``seed``), and that its replies pass
the import's envelope check into the call cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_batch import _answer

from wikipersona_data.api import build
from wikipersona_data.cli import main
from wikipersona_data.llm import batch_files
from wikipersona_data.llm.batch_offline import export, pending_path
from wikipersona_data.llm.batches import RepliesPending
from wikipersona_data.llm.cache import CallCache

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.real_llm
@pytest.mark.slow
def test_exported_requests_answered_by_a_real_server_import_and_the_build_goes_on(
    real_llm, tmp_path: Path, capsys
) -> None:
    text = (ROOT / "builders" / "local-mixed.toml").read_text(encoding="utf-8")
    anchor = "max_concurrency = 2      # llm-local's default slots\n"
    assert anchor in text
    recipe = tmp_path / "offline.toml"
    recipe.write_text(text.replace(anchor, anchor + 'mode = "offline"\nalias = "smollm2"\n'), encoding="utf-8")
    work = tmp_path / "work"
    urls = {"embed": real_llm.embed_url}
    with pytest.raises(RepliesPending, match=r"\(stage questions\)"):
        build(recipe, work=work, progress=False, endpoint_urls=urls)  # the simulator described, online
    first = batch_files.read_pending(pending_path(work))
    files = export(work, 2)
    bodies = [json.loads(line)["body"] for f in files for line in f.read_text().splitlines()]
    assert bodies and {b["model"] for b in bodies} == {"SmolLM2-135M-Instruct"}
    assert all(b["response_format"]["type"] == "json_schema" for b in bodies)
    results = tmp_path / "results.jsonl"
    _answer(real_llm.chat_url, files, results, timeout=300)  # as `vllm run-batch` would
    capsys.readouterr()
    assert main(["batch", "import", str(work), str(results)]) == 0
    said = capsys.readouterr().out
    assert f"{len(first)} replies imported" in said, said
    cache = CallCache(work / "cache")
    entries = [cache.peek(key) for key in first]
    cache.close()
    assert all(e is not None and e["mode"] == "offline" and e["served_model"] == real_llm.model for e in entries)
    with pytest.raises(RepliesPending) as again:  # the next round: top-ups, re-asks or the next stage
        build(recipe, work=work, progress=False, endpoint_urls=urls)
    assert "wait for offline replies" in str(again.value)
    assert not set(batch_files.read_pending(pending_path(work))) & set(first)  # nothing answered is asked again
