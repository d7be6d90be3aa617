"""The package's one way to write files atomically, spell canonical JSON and read/write JSON Lines.

Why one place: reproducible bytes (pinned by the golden tests) depend on every writer spelling JSON the same
way, and crash safety depends on every writer using temp file + fsync + rename. Eight hand-rolled copies
drifted apart (one forgot the fsync, one the clean-up on failure); this module is what they all call now.

``jsonlines`` was declared and never used; it is dropped: our rows need one exact byte spelling (sorted keys,
no ASCII escaping, redaction) that the standard ``json`` module gives directly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wikipersona_data.errors import InputError


def canonical_json(value: Any, *, default: Callable[[Any], Any] | None = None, allow_nan: bool = True) -> str:
    """Sorted keys, compact separators, no ASCII escaping: equal values give equal bytes (hashes, rows, keys)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default, allow_nan=allow_nan
    )


@contextmanager
def atomic_path(path: Path, *, mode: int | None = None, fsync: bool = True) -> Iterator[Path]:
    """Yield a temp path beside ``path``; when the block succeeds the temp file is fsynced and renamed over
    ``path`` (readers never see half a file), when it raises the temp file is removed.

    ``mode`` sets the file's permissions (a temp file from ``mkstemp`` would be 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        if fsync and tmp.exists():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes, *, mode: int | None = None) -> None:
    """Write ``data`` (text as UTF-8, ``\\n`` line ends) to ``path`` atomically."""
    with atomic_path(path, mode=mode) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            with tmp.open("w", encoding="utf-8", newline="\n") as handle:
                handle.write(data)


def write_jsonl(path: Path, lines: Iterable[str]) -> int:
    """Write already-encoded JSON lines (one per item, ``\\n``-terminated) atomically; returns the count.

    Lines are streamed: a writer never needs all rows in memory."""
    count = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line + "\n")
            count += 1
    return count


def iter_jsonl_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line, streamed."""
    with Path(path).open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if line.strip():
                yield line_no, line


def iter_jsonl(path: Path, *, skip_invalid: bool = False) -> Iterator[Any]:
    """Parsed values of a JSON Lines file, streamed. A line that is not JSON raises one ``InputError`` naming
    the file and line, or is skipped with ``skip_invalid`` (an append-only journal's torn last line)."""
    for line_no, line in iter_jsonl_lines(path):
        try:
            yield json.loads(line)
        except json.JSONDecodeError as err:
            if skip_invalid:
                continue
            raise InputError(f"{path} line {line_no}: not JSON ({err.msg})") from None
