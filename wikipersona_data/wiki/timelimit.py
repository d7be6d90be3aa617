"""A per-page parse time limit (SIGALRM), shared by ``scan``, ``show`` and the build's persona lookup.

Why a signal: mwparserfromhell has pages that take minutes (quadratic cases, wikipedia.md section 9)
and no cancellation of its own. ``setitimer`` interrupts the parse between Python bytecodes, which is
where its tree builder spends its time. Signals only reach the main thread, so elsewhere (a test
running a stage in a worker thread) the parse runs without a limit rather than failing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class PageTimeout(Exception):
    """The parse of one page took longer than its limit."""


def _on_alarm(signum: int, frame: object) -> None:
    raise PageTimeout


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`PageTimeout` in the block after ``seconds`` (no limit if ``None`` or off the main thread)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
