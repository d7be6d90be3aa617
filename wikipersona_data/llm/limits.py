"""How hard we push one endpoint: bounded concurrency that adapts to 429s, plus RPM/TPM budgets.

* :class:`AdaptiveLimiter`: a semaphore whose size follows AIMD (as TCP congestion control does).
  A 429 halves the limit (never below 1); each ``increase_every`` successes (default: the current
  limit, i.e. about one "window") add one slot back, up to the configured maximum. One 429 burst must
  count as one signal, not as N halvings, so a 429 only shrinks the limit if its request was admitted
  after the previous decrease (each slot remembers the limiter's epoch).
* :class:`TokenBucket`: continuous refill at ``per_minute / 60`` per second with a one-minute burst.
  Used for requests per minute and for tokens per minute (prompt estimate + ``max_tokens`` reserved up
  front, corrected with the real usage when the reply arrives).

Waiting for the RPM/TPM budget happens *before* taking a concurrency slot, so a throttled call never
holds a slot that another could use.

* Admission (:meth:`EndpointLimits.admit`, held by the client around a whole logical call): at most
  ``2 x max_concurrency`` logical calls are past the door at once. A stage hands the client thousands of
  calls at once (``asyncio.gather`` over its rows); without a door every one of them builds its request
  and cache key before the first reply is read, so the replies of the first round wait behind that work
  (measured: the first reply of 2,000 calls was handled after 0.6 s instead of 0.2 s) and every prepared
  request sits in memory. Behind the door a call costs one queued future; in front of it there is always
  a prepared call ready for a freed slot.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class AdaptiveLimiter:
    """At most ``limit`` holders at once; ``limit`` moves between 1 and ``max_concurrency`` (AIMD).

    A FIFO of futures rather than ``asyncio.Condition``: a released slot is handed straight to the oldest
    waiter, so thousands of queued calls cost one wake-up each instead of a lock round-trip per check.
    """

    def __init__(self, max_concurrency: int, *, increase_every: int | None = None) -> None:
        self.max_concurrency = max_concurrency
        self.limit = max_concurrency
        self.increase_every = increase_every
        self.in_flight = 0
        self.peak = 0
        self.epoch = 0
        self.decreases = 0
        self._successes = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def _admit(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    async def acquire(self) -> int:
        """Wait for a slot; returns the epoch to pass to :meth:`on_rate_limited`."""
        if self.in_flight < self.limit and not self._waiters:
            self._admit()
            return self.epoch
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # release() admits us before resolving the future
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # we were handed a slot but will not use it
            raise
        return self.epoch

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._admit()
                waiter.set_result(None)

    def on_rate_limited(self, epoch: int) -> None:
        """Multiplicative decrease, once per burst (requests admitted before the last cut are ignored)."""
        if epoch != self.epoch:
            return
        self.epoch += 1
        self.decreases += 1
        self.limit = max(1, self.limit // 2)
        self._successes = 0

    def on_success(self) -> None:
        """Additive increase: one more slot per window of successes."""
        if self.limit >= self.max_concurrency:
            return
        self._successes += 1
        if self._successes >= (self.increase_every or self.limit):
            self._successes = 0
            self.limit += 1
            self._wake()


class TokenBucket:
    """``per_minute`` units per minute, bursting up to one minute's worth."""

    def __init__(self, per_minute: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()  # FIFO: a big request is not starved by small ones

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, amount: float = 1.0) -> None:
        # a request larger than the whole bucket would wait forever; let it through on a full bucket
        amount = min(amount, self.capacity)
        async with self._lock:
            self._refill()
            while self.tokens < amount:
                await asyncio.sleep((amount - self.tokens) / self.rate)
                self._refill()
            self.tokens -= amount

    def adjust(self, delta: float) -> None:
        """Correct an earlier reservation (positive = used more than reserved; the bucket may go into debt)."""
        self._refill()
        self.tokens = min(self.capacity, self.tokens - delta)


class EndpointLimits:
    """All limits of one endpoint; ``async with limits.slot(tokens) as epoch: ...`` around each request."""

    def __init__(self, max_concurrency: int, rpm: float | None = None, tpm: float | None = None) -> None:
        self.concurrency = AdaptiveLimiter(max_concurrency)
        self.admission_window = 2 * max_concurrency
        self.admitted = 0
        self.peak_admitted = 0
        self._admission = asyncio.Semaphore(self.admission_window)
        self.rpm = TokenBucket(rpm) if rpm else None
        self.tpm = TokenBucket(tpm) if tpm else None

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Around one whole logical call (cache lookup, HTTP attempts, re-asks, parsing)."""
        async with self._admission:
            self.admitted += 1
            self.peak_admitted = max(self.peak_admitted, self.admitted)
            try:
                yield
            finally:
                self.admitted -= 1

    @asynccontextmanager
    async def slot(self, estimated_tokens: int) -> AsyncIterator[int]:
        if self.rpm is not None:
            await self.rpm.acquire(1)
        if self.tpm is not None:
            await self.tpm.acquire(estimated_tokens)
        epoch = await self.concurrency.acquire()
        try:
            yield epoch
        finally:
            self.concurrency.release()

    def settle_tokens(self, estimated: int, actual: int | None) -> None:
        """Replace the TPM reservation by the real count once the server reports it."""
        if self.tpm is not None and actual is not None:
            self.tpm.adjust(actual - estimated)
