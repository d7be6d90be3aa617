"""Calls that wait for a batch: the client's side of batch and offline mode (issue 13).

In ``online`` mode an uncached call is sent at once. On an endpoint in ``batch`` or ``offline`` mode, an
uncached call of a *deferrable* stage (``stages/registry.py``) is not sent: the client hands its request
record to the :class:`Collector` and raises :class:`Deferred`. The stage's unit stops there, is neither a
failure nor a reject, and is not journaled; the runner (``stages/rounds.py``) collects every deferred
request of the round, has them answered as a batch (``llm/batch_api.py``) or exported for ``vllm run-batch``
(``llm/batch_offline.py``), imports the replies into the call cache, and runs the stages again: the units
now replay their calls from the cache and go on to their next calls (a re-ask, a top-up, the next knockout
round), which is the next round.

The pending set is a dict keyed by ``custom_id`` (the call's cache key), so a request is in at most one
file of a round by construction. A request whose batch attempts failed ``max_attempts`` times is no longer
deferred: the call fails with ``batch_failed: <reason>`` and becomes the stage's reject.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wikipersona_data.llm.transport import CHAT_URL, EMBEDDINGS_URL, RequestRecord

MODES: tuple[str, ...] = ("online", "batch", "offline")
DEFAULT_MAX_ATTEMPTS = 3
BATCHABLE_URLS = frozenset({CHAT_URL, EMBEDDINGS_URL})
"""What the batch APIs and ``vllm run-batch`` answer; other calls (reward models) are sent online."""


class Deferred(Exception):
    """This call's reply comes in a later round (a batch); the unit that made it is not done yet."""

    def __init__(self, key: str = "", what: str = "call") -> None:
        super().__init__(f"{what} {key[:12]} waits for batch replies".replace("  ", " "))
        self.key = key


@dataclass(frozen=True)
class PendingCall:
    """One request waiting for a batch reply, with what the cache and the ledger need to file its reply."""

    record: RequestRecord
    spec: dict[str, Any]
    """The call's cache spec (``call_key(spec) == record.custom_id``)."""
    stage: str
    model: str
    endpoint: str
    prompt_tokens: int
    max_out: int

    @property
    def key(self) -> str:
        return self.record.custom_id

    def as_json(self) -> dict[str, Any]:
        """The line of ``<work>/batch/pending.jsonl`` (request and the facts to file its reply)."""
        return {
            "custom_id": self.key,
            "request": self.record.batch_line(),
            "spec": self.spec,
            "stage": self.stage,
            "model": self.model,
            "endpoint": self.endpoint,
            "prompt_tokens": self.prompt_tokens,
            "max_out": self.max_out,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PendingCall:
        line = data["request"]
        record = RequestRecord(
            custom_id=str(line["custom_id"]), url=str(line["url"]), body=dict(line["body"]), method=str(line["method"])
        )
        if record.custom_id != data["custom_id"]:
            raise ValueError("custom_id of the request differs from the line's")
        return cls(
            record=record,
            spec=dict(data["spec"]),
            stage=str(data["stage"]),
            model=str(data["model"]),
            endpoint=str(data["endpoint"]),
            prompt_tokens=int(data["prompt_tokens"]),
            max_out=int(data["max_out"]),
        )


class Collector:
    """Which calls wait for a batch, and the requests of the current round.

    ``modes`` maps endpoint names to ``online``/``batch``/``offline``; ``stages`` are the deferrable stages
    (ledger stage names). Failed batch attempts are counted per ``custom_id`` for this process: a rerun of
    the build tries a failed request again, as an online rerun retries a call whose retries ran out.
    """

    def __init__(self, modes: dict[str, str], stages: frozenset[str], max_attempts: int = DEFAULT_MAX_ATTEMPTS):
        self.modes = dict(modes)
        self.stages = stages
        self.max_attempts = max_attempts
        self.pending: dict[str, PendingCall] = {}
        self.failures: dict[str, list[str]] = {}

    def wants(self, endpoint: str, stage: str, url: str = CHAT_URL) -> bool:
        """Whether an uncached call of ``stage`` to ``endpoint`` waits for a batch (else it is sent now)."""
        return self.modes.get(endpoint, "online") != "online" and stage in self.stages and url in BATCHABLE_URLS

    def defer(self, call: PendingCall) -> None:
        """Add ``call`` to this round and raise :class:`Deferred`; or raise :class:`BatchRequestFailed`
        when its batch attempts are used up."""
        reasons = self.failures.get(call.key, [])
        if len(reasons) >= self.max_attempts:
            raise BatchRequestFailed(f"batch_failed: {reasons[-1]} (after {len(reasons)} batch attempts)")
        self.pending.setdefault(call.key, call)
        raise Deferred(call.key)

    def take(self) -> list[PendingCall]:
        """This round's requests, in key order (deterministic files), and an empty set for the next round."""
        calls = [self.pending[k] for k in sorted(self.pending)]
        self.pending = {}
        return calls

    def failed(self, key: str, reason: str) -> None:
        """One batch attempt of ``key`` failed (error line, expired, missing from the output)."""
        self.failures.setdefault(key, []).append(reason)

    def attempts_left(self, key: str) -> int:
        return self.max_attempts - len(self.failures.get(key, []))


class BatchRequestFailed(Exception):
    """A request failed in every batch attempt it had: the call fails with ``reason`` (a reject, not a crash)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
