"""Reading a release folder's files: regular files only, never a FIFO, device or symlink.

Why: a release is data someone else made. A FIFO in place of a parquet makes ``open()`` block forever
(``verify`` and ``publish --dry-run`` hung); a symlink can point anywhere on the machine. Every file
``verify`` and ``publish`` read is opened here with ``O_NOFOLLOW | O_NONBLOCK`` (opening a FIFO
without a writer returns at once instead of blocking) and checked with ``fstat`` on the open file
descriptor, so a file swapped after a directory listing is still caught.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from wikipersona_data.errors import InputError

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
)


class NotRegularFile(InputError):
    """A release path that is not a regular file (the message names it and what it is)."""


def kind_of(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | Path) -> BinaryIO:
    """Open ``path`` for reading if, and only if, it is a regular file (not through a symlink)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise NotRegularFile(f"{path}: is a symbolic link, not a regular file (refusing to follow it)") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"{path}: is {kind_of(mode)}, not a regular file (refusing to read it)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path) -> bytes:
    with open_regular(path) as fh:
        return fh.read()


def read_text(path: str | Path) -> str:
    return read_bytes(path).decode("utf-8")


def special_entries(root: Path) -> list[tuple[str, str]]:
    """``(relative path, kind)`` of every entry under ``root`` that is neither a regular file nor a directory."""
    found: list[tuple[str, str]] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                found.append((path.relative_to(root).as_posix(), kind_of(mode)))
    return sorted(found)


def refuse_special(root: Path) -> None:
    """One line for the first entry of ``root`` that is not a regular file or a directory."""
    found = special_entries(root)
    if found:
        rel, kind = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise NotRegularFile(f"{root / rel}: is {kind}, not a regular file{more}; a release holds only regular files")
