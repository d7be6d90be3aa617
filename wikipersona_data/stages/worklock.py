"""An exclusive lock on a work dir, so two builds never share one (each would pay for every call twice).

Why ``flock`` on ``<work>/.lock``: the kernel releases it when the holder's process ends, however it
ends (SIGKILL, OOM kill, power loss of the process), so there is no stale lock to clean up and no
"is that pid still alive?" guess. The file also says who holds it (pid, host, start time, command),
written after the lock is taken, so a second build can name the holder in its one-line error.
The file is never deleted: deleting it while another process waits on it would let two builds
lock two different files of the same name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from wikipersona_data.errors import InputError

LOCK_NAME = ".lock"


def holder(path: Path) -> str:
    """Who holds the lock at ``path``, as written by :func:`work_lock` (best effort)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or not info:
        return "another process"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')} since {info.get('started', '?')}"


def try_lock(path: Path) -> int | None:
    """An open fd holding an exclusive ``flock`` on ``path``, or ``None`` if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def work_lock(work: Path, what: str = "build") -> Iterator[Path]:
    """Hold the exclusive lock of ``work`` for the block; refuse in one line if another run holds it."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / LOCK_NAME
    try:
        fd = try_lock(path)
    except OSError as err:
        raise InputError(f"{path}: cannot lock the work dir ({err.strerror})") from None
    if fd is None:
        raise InputError(
            f"work dir {work} is in use by another run ({holder(path)}): wait for it to finish or use another --work"
        )
    try:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": what,
            "argv0": Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "",
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info, sort_keys=True) + "\n").encode(), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
