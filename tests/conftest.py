"""Shared fixtures. ``real_llm``: ONE real llama.cpp chat server (2 slots) + ONE embeddings server + ONE /rerank
server per session.

They run as ``wikipersona llm-local --embeddings --rerank`` in a child process (so the command users run is the
one tested, and a hung server can be killed without taking pytest down), on 127.0.0.1 with ephemeral
ports, serving SmolLM2-135M-Instruct from the model cache folder (``make model`` puts it there).

A missing model or ``xllamacpp`` FAILS the tests that use the fixture: these tests are meant to run in CI.
Only ``WIKIPERSONA_SKIP_REAL_LLM=1`` turns that into a skip, for a machine that cannot have the model.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class RealLLM:
    chat_url: str  # OpenAI base URL (ends in /v1) of the chat server
    embed_url: str  # same, of the embeddings server
    rerank_url: str  # same, of the /rerank server (rank pooling: the reward band's llama.cpp route)
    model: str  # the model id both servers report
    stderr_path: Path


def _unavailable(reason: str) -> None:
    if os.environ.get("WIKIPERSONA_SKIP_REAL_LLM") == "1":
        pytest.skip(f"real model not available ({reason}); WIKIPERSONA_SKIP_REAL_LLM=1")
    pytest.fail(f"real model not available: {reason} (or set WIKIPERSONA_SKIP_REAL_LLM=1 to skip)", pytrace=False)


@pytest.fixture(scope="session")
def real_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealLLM]:
    from wikipersona_data.llm.local import (
        FETCH_HINT,
        INSTALL_HINT,
        MODEL_NAME,
        LocalModelError,
        default_model_path,
        llm_local_process,
    )

    model = default_model_path()
    if importlib.util.find_spec("xllamacpp") is None:
        _unavailable(f"xllamacpp is not installed; run: {INSTALL_HINT}")
    if not model.is_file():
        _unavailable(f"{model} is missing; run: make model (or {FETCH_HINT})")
    stderr = tmp_path_factory.mktemp("real_llm") / "llm-local.stderr"
    args = ["--embeddings", "--rerank", "--slots", "2", "--ctx", "2048", "--threads", "2", "--model", str(model)]
    try:
        with llm_local_process(args, lines=3, stderr=stderr) as urls:
            yield RealLLM(chat_url=urls[0], embed_url=urls[1], rerank_url=urls[2], model=MODEL_NAME, stderr_path=stderr)
    except LocalModelError as err:
        pytest.fail(str(err), pytrace=False)
