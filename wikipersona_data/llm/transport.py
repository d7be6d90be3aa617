"""How a request travels: the one seam between the client's policy and the wire.

A stage builds messages and parses replies; :class:`~wikipersona_data.llm.client.LLMClient` turns them into
:class:`RequestRecord` objects and wraps any :class:`Transport` with the call cache, in-flight dedup, the
budget, the ledger, rate and concurrency limits and retries. A transport only executes one record and hands
back the raw reply body; it never parses, caches or retries.

A request record *is* a line of an OpenAI batch input file (``custom_id``, ``method``, ``url``, ``body``), with
``custom_id`` the call's content-addressed cache key. So a batch transport (issue 13: write records to files,
submit, import results by ``custom_id``) or an offline one plugs in here without touching a stage. In the
style of curator's ``request_processor/_factory.py``: online, batch or offline is a choice made in one place.

:class:`OnlineTransport` is the default: the openai SDK's raw POST over aiohttp, the body streamed and capped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
import openai

from wikipersona_data.llm.config import EndpointConfig, normalise_base_url

CHAT_URL = "/v1/chat/completions"
EMBEDDINGS_URL = "/v1/embeddings"


@dataclass(frozen=True)
class RequestRecord:
    """One request, as one line of an OpenAI batch input file."""

    custom_id: str
    """The call's cache key (sha256 of its canonical spec): replies are matched back by it."""
    url: str
    """``/v1/chat/completions`` or ``/v1/embeddings`` (the batch API's endpoint names), or a route of the
    server root such as vLLM's ``/classify`` and ``/pooling`` (reward models; no batch API has them)."""
    body: dict[str, Any]
    method: str = "POST"

    def batch_line(self) -> dict[str, Any]:
        """The JSON object of this record in a batch input file (``vllm run-batch``, the OpenAI Batch API)."""
        return {"custom_id": self.custom_id, "method": self.method, "url": self.url, "body": self.body}


@dataclass(frozen=True)
class Delivery:
    """What came back for one record: the raw body (parsed and checked by the client, then cached)."""

    content: bytes
    status: int = 200
    request_id: str | None = None


class ReplyTooLarge(Exception):
    """The reply body outgrew ``max_reply_bytes`` (declared or read): retryable, never stored."""

    def __init__(self, size: int, status: int | None = None) -> None:
        super().__init__(f"reply larger than allowed ({size} bytes)")
        self.size = size
        self.status = status


class Transport(Protocol):
    """Executes one request record for an endpoint. ``headers`` carry the authorization the client read from
    the environment for this attempt. Failures are raised: ``openai.APIError`` (HTTP status, connection),
    ``TimeoutError``, :class:`ReplyTooLarge`; the client classifies them and decides on retries."""

    async def send(self, record: RequestRecord, endpoint: EndpointConfig, headers: dict[str, str]) -> Delivery: ...

    async def aclose(self) -> None: ...


async def read_capped(raw: httpx2.Response, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes (declared or read): a hostile server's 100 MB or
    endless chunked body is cut off here instead of filling memory (the caller's deadline bounds the time)."""
    declared = raw.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ReplyTooLarge(int(declared), raw.status_code)
    chunks: list[bytes] = []
    size = 0
    async for chunk in raw.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ReplyTooLarge(size, raw.status_code)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _CappedStream(httpx2.AsyncByteStream):
    """A response body that refuses to yield more than ``limit`` bytes (declared or read)."""

    def __init__(self, inner: Any, limit: int, declared: str | None, status: int) -> None:
        self._inner, self._limit, self._declared, self._status = inner, limit, declared, status

    async def __aiter__(self) -> Any:
        if self._declared is not None and self._declared.isdigit() and int(self._declared) > self._limit:
            raise ReplyTooLarge(int(self._declared), self._status)
        size = 0
        async for chunk in self._inner:
            size += len(chunk)
            if size > self._limit:
                raise ReplyTooLarge(size, self._status)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def capping_hook(limit: int) -> Any:
    """httpx response hook bounding *every* body an endpoint's client reads, before anyone reads it.

    Our own read of a reply is capped by :func:`read_capped`, but on a 4xx/5xx the SDK reads the error
    body itself (to build its exception), with no limit: a hostile server's 100 MiB error page was read
    whole. Wrapping the response stream caps that read too; ``ReplyTooLarge`` then escapes ``sdk.post``.
    """

    async def hook(response: httpx2.Response) -> None:
        response.stream = _CappedStream(
            response.stream, limit, response.headers.get("content-length"), response.status_code
        )

    return hook


class OnlineTransport:
    """Today's path: one request per record over the endpoint's pooled SDK client (``sdk_for``)."""

    def __init__(self, sdk_for: Callable[[EndpointConfig], openai.AsyncOpenAI]) -> None:
        self._sdk_for = sdk_for

    async def send(self, record: RequestRecord, endpoint: EndpointConfig, headers: dict[str, str]) -> Delivery:
        # the SDK's documented raw-request path: same auth, errors and transport as chat.completions.create,
        # minus its per-call TypedDict transform of the whole body (~1 ms of CPU per call for a long prompt +
        # schema); stream=True: the body is read by us, bounded in size (read_capped) and time (the caller)
        path = record.url.removeprefix("/v1")  # the SDK's base URL already ends in /v1
        if not record.url.startswith("/v1/"):  # a route of the server root (vLLM's /classify, /pooling)
            path = normalise_base_url(endpoint.base_url).removesuffix("/v1") + record.url
        raw = await self._sdk_for(endpoint).post(
            path, cast_to=httpx2.Response, body=record.body, options={"headers": headers}, stream=True
        )
        try:
            content = await read_capped(raw, endpoint.max_reply_bytes)
        finally:
            await raw.aclose()
        return Delivery(content, raw.status_code, raw.headers.get("x-request-id"))

    async def aclose(self) -> None:
        """The SDK clients belong to the LLM client (it also probes endpoints with them) and close with it."""
