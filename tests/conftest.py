"""Shared fixtures. ``real_llm``: ONE real llama.cpp chat server (2 slots) + ONE embeddings server per session.

They run as ``wikipersona llm-local --embeddings`` in a child process (so the command users run is the
one tested, and a hung server can be killed without taking pytest down), on 127.0.0.1 with ephemeral
ports, serving SmolLM2-135M-Instruct from the model cache folder (``make model`` puts it there).

A missing model or ``xllamacpp`` FAILS the tests that use the fixture: these tests are meant to run in CI.
Only ``WIKIPERSONA_SKIP_REAL_LLM=1`` turns that into a skip, for a machine that cannot have the model.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class RealLLM:
    chat_url: str  # OpenAI base URL (ends in /v1) of the chat server
    embed_url: str  # same, of the embeddings server
    model: str  # the model id both servers report
    stderr_path: Path


def _unavailable(reason: str) -> None:
    if os.environ.get("WIKIPERSONA_SKIP_REAL_LLM") == "1":
        pytest.skip(f"real model not available ({reason}); WIKIPERSONA_SKIP_REAL_LLM=1")
    pytest.fail(f"real model not available: {reason} (or set WIKIPERSONA_SKIP_REAL_LLM=1 to skip)", pytrace=False)


def _read_lines(stream, n: int, timeout: float) -> list[str]:
    """The first ``n`` stdout lines of the child, or fewer if it exits or the deadline passes."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for _ in range(n):
            line = stream.readline()
            lines.put(line.strip() if line else None)
            if not line:
                return

    threading.Thread(target=pump, daemon=True).start()
    out: list[str] = []
    for _ in range(n):
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            break
        if line is None:
            break
        out.append(line)
    return out


@pytest.fixture(scope="session")
def real_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealLLM]:
    from wikipersona_data.llm.local import FETCH_HINT, INSTALL_HINT, MODEL_NAME, default_model_path

    model = default_model_path()
    if importlib.util.find_spec("xllamacpp") is None:
        _unavailable(f"xllamacpp is not installed; run: {INSTALL_HINT}")
    if not model.is_file():
        _unavailable(f"{model} is missing; run: make model (or {FETCH_HINT})")
    stderr_path = tmp_path_factory.mktemp("real_llm") / "llm-local.stderr"
    cmd = [sys.executable, "-m", "wikipersona_data.cli", "llm-local", "--embeddings", "--slots", "2"]
    cmd += ["--ctx", "2048", "--threads", "2", "--model", str(model)]
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        urls = _read_lines(proc.stdout, 2, START_TIMEOUT_S)
        if len(urls) != 2:
            pytest.fail(f"llm-local printed {urls!r}; stderr: {stderr_path.read_text()[-500:]}", pytrace=False)
        yield RealLLM(chat_url=urls[0], embed_url=urls[1], model=MODEL_NAME, stderr_path=stderr_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
