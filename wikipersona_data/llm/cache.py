"""Content-addressed cache of raw LLM responses: nothing paid for is ever lost or paid twice.

Key: ``sha256`` of the canonical JSON (sorted keys, compact separators, ``ensure_ascii=False``, NFC
normalised strings) of the call spec ``{api, endpoint, model, messages|input, params, schema,
sample_idx, attempt}``. The spec holds only what changes the answer: never the API key, timeouts,
retries or concurrency. ``attempt`` is bumped only when a reply fails validation, so a re-ask is a new
call while a rerun replays the same attempts.

Store: append-only JSON Lines shards ``<dir>/calls/<key[:2]>.jsonl`` plus ``<dir>/errors.jsonl`` for
HTTP failures (which are never served as hits). Why JSONL and not SQLite (WAL):

* crash safety falls out of the format: each record is one ``os.write`` on an ``O_APPEND`` descriptor,
  so SIGKILL at any moment leaves complete lines plus at most one torn last line, which the loader
  skips and reports; before a process first appends to a shard whose last byte is not a newline it
  writes one, so a torn line never swallows the next record;
* several processes can share one cache: on Linux local filesystems an ``O_APPEND`` write is placed
  atomically at the end of the file, and a reader that misses a key tails the shard from where it last
  looked, so keys written meanwhile by another process are found (NFS does not give this guarantee);
* the files are greppable, diffable and trivially exportable, and need no locks or schema migration.

Lookup is O(1): a per-shard in-memory ``key -> offset`` index, built lazily the first time a shard is
touched by scanning it once (the key is read from the line prefix, not by parsing the whole record).
Durability: ``flush`` is implicit (unbuffered ``os.write``, so a killed process loses nothing it
wrote); ``fsync`` every ``fsync_every`` records on a helper thread (so a slow disk never stalls the event
loop) and on ``close``.

Modes: ``use`` (read and write), ``refresh`` (ignore entries written before this run, write new ones),
``only`` (offline replay: the client raises on a miss), ``off`` (neither read nor write).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wikipersona_data import fileio, redact
from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.config import PRICE_MODES

log = logging.getLogger(__name__)

CacheMode = Literal["use", "refresh", "only", "off"]
MODES: tuple[str, ...] = ("use", "refresh", "only", "off")
_KEY_PREFIX = b'{"key":"'
_KEY_LEN = 64


def _nfc(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {_nfc(k): _nfc(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nfc(v) for v in value]
    return value


def _dumps(value: Any) -> str:
    return fileio.canonical_json(value, allow_nan=False)


def canonical_json(value: Any) -> str:
    """The one serialisation keys are computed from (stable across runs, platforms and dict order).

    Strings are NFC-normalised. Almost every request already is, so the text is checked as a whole
    first (quotes and separators never combine with a neighbour, so an NFC text has NFC strings and
    keys) and the value is walked only when it is not: the same key, without a walk of every message
    and schema node on the hot path of each call."""
    text = _dumps(value)
    return text if unicodedata.is_normalized("NFC", text) else _dumps(_nfc(value))


def call_key(spec: dict[str, Any]) -> str:
    """sha256 hex of the canonical call spec."""
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()


def record_mode(record: dict[str, Any]) -> str:
    """How a cached reply was bought (``online``, ``batch``, ``offline``): its price mode."""
    mode = record.get("mode")
    return mode if isinstance(mode, str) and mode in PRICE_MODES else "online"


def _record_line(record: dict[str, Any], *, aggressive: bool = False) -> bytes:
    """One JSONL line, with any secret replaced by a marker (the client scrubs replies already; this
    is the last door before the disk, for requests and error messages too)."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    redactor = redact.active()
    if "\\u" in text or redactor.needs_scrub(text):
        clean = redactor.scrub_value(record, aggressive=aggressive)
        text = json.dumps(clean, ensure_ascii=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


@dataclass
class _Shard:
    path: Path
    index: dict[str, int]
    scanned_to: int = 0  # bytes of the file already indexed (always at a line boundary)
    torn_at: int = -1  # offset of an unterminated tail already reported
    write_fd: int | None = None
    read_file: Any = None


class CallCache:
    """Append-only, multi-process-safe store of raw responses keyed by :func:`call_key`.

    ``CallCache(path, mode="use")``; ``get(key)`` returns the latest stored record or ``None``;
    ``put(key, spec, response, ...)`` stores a successful raw response before anyone parses it;
    ``put_error`` logs a failure to ``errors.jsonl``. ``hits``/``misses``/``torn_lines`` count what
    happened; ``close()`` fsyncs.
    """

    def __init__(self, path: Path | str, mode: CacheMode = "use", *, fsync_every: int = 64) -> None:
        if mode not in MODES:
            raise ConfigError(f"cache mode {mode!r} is not one of {', '.join(MODES)}")
        self.path = Path(path)
        self.mode: CacheMode = mode
        self.fsync_every = max(1, fsync_every)
        self.hits = 0
        self.misses = 0
        self.torn_lines = 0
        self.writes = 0
        self._shards: dict[str, _Shard] = {}
        self._fresh: set[str] = set()  # keys written by this process (the only valid hits in refresh mode)
        self._unsynced = 0
        self._errors_fd: int | None = None
        self._fsync_lock = threading.Lock()  # descriptors are not closed while the syncer uses them
        self._fsync_wanted = threading.Event()
        self._fsync_thread: threading.Thread | None = None
        self._closing = False
        if mode != "off":
            (self.path / "calls").mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"CallCache({self.path.name!r}, mode={self.mode!r}, hits={self.hits}, misses={self.misses})"

    # ---------------------------------------------------------------- reading
    def _shard(self, key: str) -> _Shard:
        name = key[:2]
        shard = self._shards.get(name)
        if shard is None:
            shard = _Shard(self.path / "calls" / f"{name}.jsonl", {})
            self._shards[name] = shard
        return shard

    def _scan(self, shard: _Shard) -> None:
        """Index lines appended since the last scan (by us or by another process)."""
        try:
            size = shard.path.stat().st_size
        except FileNotFoundError:
            return
        if size <= shard.scanned_to:
            return
        with open(shard.path, "rb") as fh:
            fh.seek(shard.scanned_to)
            offset = shard.scanned_to
            for line in fh:
                if not line.endswith(b"\n"):
                    # a torn tail (killed writer) or a write in flight: report once, look again next time
                    if shard.torn_at != offset:
                        shard.torn_at = offset
                        self.torn_lines += 1
                        log.warning("call cache %s: unterminated last line at byte %d skipped", shard.path.name, offset)
                    break
                key = self._line_key(line)
                if key is None:
                    if offset != shard.torn_at:  # a sealed torn tail was already reported
                        self.torn_lines += 1
                        log.warning("call cache %s: skipped an unreadable line at byte %d", shard.path.name, offset)
                else:
                    shard.index[key] = offset
                offset += len(line)
            shard.scanned_to = offset

    @staticmethod
    def _line_key(line: bytes) -> str | None:
        if line.startswith(_KEY_PREFIX) and line[len(_KEY_PREFIX) + _KEY_LEN : len(_KEY_PREFIX) + _KEY_LEN + 1] == b'"':
            if line.rstrip().endswith(b"}"):
                return line[len(_KEY_PREFIX) : len(_KEY_PREFIX) + _KEY_LEN].decode("ascii", "replace")
            return None
        if line.strip() == b"":
            return None
        try:
            record = json.loads(line)
        except ValueError:
            return None
        key = record.get("key") if isinstance(record, dict) else None
        return key if isinstance(key, str) else None

    def _read_at(self, shard: _Shard, offset: int) -> dict[str, Any] | None:
        if shard.read_file is None:
            shard.read_file = open(shard.path, "rb")  # noqa: SIM115 - kept open for O(1) lookups
        shard.read_file.seek(offset)
        line = shard.read_file.readline()
        try:
            record = json.loads(line)
        except ValueError:
            self.torn_lines += 1
            log.warning("call cache %s: corrupt record at byte %d ignored", shard.path.name, offset)
            return None
        return record if isinstance(record, dict) else None

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record for ``key`` (``response`` is the raw JSON body), or ``None`` on a miss."""
        if self.mode == "off" or (self.mode == "refresh" and key not in self._fresh):
            self.misses += 1
            return None
        shard = self._shard(key)
        offset = shard.index.get(key)
        if offset is None:
            self._scan(shard)
            offset = shard.index.get(key)
        record = self._read_at(shard, offset) if offset is not None else None
        if record is None:
            self.misses += 1
            return None
        self.hits += 1
        return record

    def peek(self, key: str) -> dict[str, Any] | None:
        """The stored record regardless of mode (except ``off``), without counting a hit or miss.

        For reports built from the cache (per-row provenance, release usage): reading them must not
        inflate the hit rate of the run.
        """
        if self.mode == "off":
            return None
        shard = self._shard(key)
        if key not in shard.index:
            self._scan(shard)
        offset = shard.index.get(key)
        return self._read_at(shard, offset) if offset is not None else None

    def contains(self, key: str) -> bool:
        """Whether ``key`` is stored (ignores the mode; does not count as a hit or miss)."""
        if self.mode == "off":
            return False
        shard = self._shard(key)
        if key not in shard.index:
            self._scan(shard)
        return key in shard.index

    def keys(self) -> set[str]:
        """Every stored key (scans all shards; for reports, export and tests, not the hot path)."""
        if self.mode == "off":
            return set()
        found: set[str] = set()
        for path in sorted((self.path / "calls").glob("*.jsonl")):
            shard = self._shard(path.stem + "0" * (_KEY_LEN - 2))
            self._scan(shard)
            found.update(shard.index)
        return found

    # ---------------------------------------------------------------- writing
    def _append(self, path: Path, fd: int | None, payload: bytes) -> int:
        if fd is None:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            size = os.fstat(fd).st_size
            if size:
                with open(path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        os.write(fd, b"\n")  # seal a torn tail so it cannot swallow our record
        os.write(fd, payload)
        return fd

    def put(
        self,
        key: str,
        spec: dict[str, Any],
        response: Any,
        *,
        served_model: str | None = None,
        usage: dict[str, Any] | None = None,
        finish_reason: str | None = None,
        latency_s: float | None = None,
        http_attempts: int | None = None,
        request_id: str | None = None,
        mode: str = "online",
    ) -> None:
        """Store one successful raw response (before parsing, so a parser fix re-parses for free).

        ``mode`` says how it was bought (``batch``, ``offline``; stored only when not ``online``), so the
        cost behind the data is priced as it was paid."""
        if self.mode == "off":
            return
        record = {
            "key": key,
            "spec": spec,
            "response": response,
            "served_model": served_model,
            "usage": usage,
            "finish_reason": finish_reason,
            "latency_s": latency_s,
            "http_attempts": http_attempts,
            "request_id": request_id,
            "created": time.time(),
        }
        if mode != "online":
            record["mode"] = mode
        payload = _record_line(record)
        shard = self._shard(key)
        shard.write_fd = self._append(shard.path, shard.write_fd, payload)
        # with O_APPEND the descriptor's position is the end of our own write
        shard.index[key] = os.lseek(shard.write_fd, 0, os.SEEK_CUR) - len(payload)
        self._fresh.add(key)
        self.writes += 1
        self._unsynced += 1
        if self._unsynced >= self.fsync_every:
            self._unsynced = 0
            self._request_fsync()

    def is_fresh(self, key: str) -> bool:
        """Whether ``key`` was written by this process (this run)."""
        return key in self._fresh

    def mark_fault(self, key: str, reason: str) -> None:
        """Re-store ``key``'s record with a content-fault mark (refusal, length cut, bad JSON...).

        The paid reply stays on disk as evidence, but the client does not replay a marked record in a later
        ``use`` run: it asks again, so a bad period of the server does not make its faults permanent.
        """
        if self.mode == "off":
            return
        record = self.peek(key)
        if record is None or record.get("fault") == reason:
            return
        record = {**record, "fault": reason, "created": time.time()}
        payload = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        shard = self._shard(key)
        shard.write_fd = self._append(shard.path, shard.write_fd, payload)
        shard.index[key] = os.lseek(shard.write_fd, 0, os.SEEK_CUR) - len(payload)
        self._fresh.add(key)
        self.writes += 1

    def put_error(self, key: str, spec: dict[str, Any], kind: str, message: str, *, status: int | None = None) -> None:
        """Log a failed call; failures are evidence for debugging, never served as cached answers."""
        if self.mode == "off":
            return
        record = {"key": key, "kind": kind, "status": status, "message": message, "spec": spec, "created": time.time()}
        payload = _record_line(record, aggressive=True)
        self._errors_fd = self._append(self.path / "errors.jsonl", self._errors_fd, payload)

    def _request_fsync(self) -> None:
        """fsync on a helper thread: it can take 10-100 ms on a busy disk and must not stall the event loop.

        (SIGKILL loses nothing that was written, the kernel has it; fsync only bounds the loss on an OS
        crash or power cut.)
        """
        if self._fsync_thread is None:
            self._fsync_thread = threading.Thread(target=self._fsync_loop, name="call-cache-fsync", daemon=True)
            self._fsync_thread.start()
        self._fsync_wanted.set()

    def _fsync_loop(self) -> None:
        while True:
            self._fsync_wanted.wait()
            self._fsync_wanted.clear()
            if self._closing:
                return
            self.sync()

    def sync(self) -> None:
        """fsync every descriptor this cache has written to (blocking)."""
        with self._fsync_lock:
            fds = [shard.write_fd for shard in list(self._shards.values()) if shard.write_fd is not None]
            if self._errors_fd is not None:
                fds.append(self._errors_fd)
            for fd in fds:
                os.fsync(fd)

    def close(self) -> None:
        """fsync and release descriptors; safe to call twice."""
        if self._fsync_thread is not None:
            self._closing = True
            self._fsync_wanted.set()
            self._fsync_thread.join()
            self._fsync_thread = None
            self._closing = False
        self.sync()
        with self._fsync_lock:
            for shard in self._shards.values():
                if shard.write_fd is not None:
                    os.close(shard.write_fd)
                    shard.write_fd = None
                if shard.read_file is not None:
                    shard.read_file.close()
                    shard.read_file = None
            if self._errors_fd is not None:
                os.close(self._errors_fd)
                self._errors_fd = None

    def stats(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "hits": self.hits,
            "misses": self.misses,
            "writes": self.writes,
            "torn_lines": self.torn_lines,
        }

    def __enter__(self) -> CallCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
