"""The one retry policy: which HTTP failures are worth repeating, and how long to wait.

The openai SDK is built with ``max_retries=0`` so this tenacity policy is the only retry owner: layered
retries multiply (attempts x (1 + SDK retries)) and hide the 429s the limiter must see. Retried:
408, 409, 429, 5xx, timeouts and dropped connections, with exponential backoff plus jitter, or the
server's ``retry-after-ms`` / ``Retry-After`` when it sends one (capped, so a hostile header cannot
park the run). Bounded twice: by attempt count and by total time. Everything else (400, 401, 403,
404, 422) is a request or configuration error that repeating cannot fix, so it fails at once.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exception,
)

RETRY_STATUSES = frozenset({408, 409, 429})
MAX_RETRY_AFTER_S = 120.0  # the SDK's own ceiling; longer hints mean "come back much later"
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0


@dataclass(frozen=True)
class ErrorInfo:
    """What went wrong with one HTTP attempt: a stable ``kind`` for the ledger and whether to retry."""

    kind: str  # "http_429", "http_503", "timeout", "connection", "http_401", ...
    status: int | None
    retryable: bool


class RetryableCallError(Exception):
    """A failure tenacity should retry; carries the classification and the server's wait hint."""

    def __init__(
        self, info: ErrorInfo, retry_after_s: float | None, detail: str, attempt: int, backoff_base_s: float = 0.5
    ) -> None:
        super().__init__(f"{info.kind}: {detail}")
        self.info = info
        self.retry_after_s = retry_after_s
        self.detail = detail
        self.attempt = attempt  # 1-based number of the HTTP attempt that failed (drives the backoff)
        self.backoff_base_s = backoff_base_s


def _dropped(exc: BaseException) -> bool:
    """Whether the connection was closed under us, looking through the exception chain.

    The aiohttp transport reports a server that closed the connection as ``httpx.ConnectTimeout``, which
    the SDK turns into ``APITimeoutError``; the original aiohttp/OS error is still on ``__cause__``.
    """
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 8:
        if isinstance(cause, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, ConnectionError)):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


def _refused(exc: BaseException) -> bool:
    """Whether nothing listens at the address (ECONNREFUSED somewhere in the exception chain)."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 8:
        if isinstance(cause, ConnectionRefusedError):
            return True
        if isinstance(cause, aiohttp.ClientConnectorError) and isinstance(cause.os_error, ConnectionRefusedError):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


def classify(exc: BaseException) -> ErrorInfo:
    """Map an openai exception onto our error kinds (anything unknown is not retried).

    A refused connection is its own kind (``connection_refused``), not "timed out": the aiohttp transport
    reports it as a connect timeout, which sent users looking for a slow server instead of a wrong URL.
    """
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)) and _refused(exc):
        return ErrorInfo("connection_refused", None, True)
    if isinstance(exc, openai.APITimeoutError):
        return ErrorInfo("connection" if _dropped(exc) else "timeout", None, True)
    if isinstance(exc, openai.APIConnectionError):
        return ErrorInfo("connection", None, True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return ErrorInfo(f"http_{status}", status, status in RETRY_STATUSES or status >= 500)
    return ErrorInfo(type(exc).__name__, None, False)


def retry_after_seconds(headers: Any, *, cap: float = MAX_RETRY_AFTER_S, now: float | None = None) -> float | None:
    """The server's wait hint in seconds (``retry-after-ms`` wins over ``Retry-After``), capped, or None."""
    if headers is None:
        return None
    value: float | None = None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = None
    if value is None:
        raw = headers.get("retry-after")
        if raw is not None:
            try:
                value = float(raw)
            except ValueError:
                try:
                    parsed = email.utils.parsedate_to_datetime(raw)  # the HTTP-date form
                except (TypeError, ValueError):
                    parsed = None
                if parsed is not None:
                    value = parsed.timestamp() - (time.time() if now is None else now)
    if value is None or value != value:  # missing or NaN
        return None
    return min(max(value, 0.0), cap)


def backoff_seconds(attempt: int, base: float = BACKOFF_BASE_S, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": uniform in [c/2, c], c = min(max, base * 2**(n-1)).

    Jitter spreads the retries of calls that failed together (one 429 burst) so they do not collide
    again; keeping half of the ceiling guarantees the wait still grows.
    """
    ceiling = min(BACKOFF_MAX_S, base * 2 ** max(attempt - 1, 0))
    return (rng or random).uniform(ceiling / 2, ceiling)


def _wait_for(exc: BaseException) -> float:
    # wait_exception hands us only the exception, so the attempt number travels on it
    assert isinstance(exc, RetryableCallError)
    if exc.retry_after_s is not None:
        return exc.retry_after_s
    return backoff_seconds(exc.attempt, exc.backoff_base_s)


def retrying(
    *, max_attempts: int, max_seconds: float, before_sleep: Callable[[RetryCallState], Awaitable[None] | None] | None
) -> AsyncRetrying:
    """Tenacity policy: retry only :class:`RetryableCallError`, stop on attempts or total time.

    ``stop_before_delay`` (not ``stop_after_delay``) gives up *before* a wait that would overrun the time
    budget, instead of sleeping first and then giving up.
    """
    return AsyncRetrying(
        retry=retry_if_exception(lambda e: isinstance(e, RetryableCallError)),
        wait=wait_exception(_wait_for),
        stop=stop_after_attempt(max_attempts) | stop_before_delay(max_seconds),
        before_sleep=before_sleep,
        reraise=True,
    )
