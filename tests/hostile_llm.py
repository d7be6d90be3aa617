"""A hostile OpenAI-compatible server for tests: real HTTP on 127.0.0.1, replies chosen by the test.

    with HostileServer(lambda req: chat(content="[" * 100_000)) as srv:
        EndpointConfig(name="h", base_url=srv.base_url, profile="vllm", ...)

The ``reply`` function gets each request (``path``, ``json`` body, ``headers``, ``n`` = its number for that
path) and returns an aiohttp response, a dict (sent as JSON with status 200), or a :class:`Stream`
(a chunked body written piece by piece: a huge or endless body). ``requests`` records every request.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Stream:
    """A chunked body: ``chunk`` repeated ``count`` times (None = forever) with ``pause_s`` between chunks."""

    chunk: bytes
    count: int | None
    pause_s: float = 0.0
    sent: int = 0
    status: int = 200


@dataclass
class Request:
    path: str
    json: Any
    headers: dict[str, str]
    n: int


@dataclass
class HostileServer:
    reply: Callable[[Request], Any]
    requests: list[Request] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.base_url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        n = sum(1 for r in self.requests if r.path == request.path)
        req = Request(request.path, body, dict(request.headers), n)
        self.requests.append(req)
        out = self.reply(req)
        if isinstance(out, web.StreamResponse):
            return out
        if isinstance(out, Stream):
            self.streams.append(out)
            resp = web.StreamResponse(status=out.status, headers={"Content-Type": "application/json"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            try:
                while out.count is None or out.sent < out.count:
                    await resp.write(out.chunk)
                    out.sent += 1
                    if out.pause_s:
                        await asyncio.sleep(out.pause_s)
                await resp.write_eof()
            except (ConnectionError, asyncio.CancelledError):
                pass  # the client hung up: what we want it to do
            return resp
        return web.json_response(out)

    async def _start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}/v1"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        self.base_url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]


def chat(
    content: Any = '{"name": "a", "size": 1}',
    *,
    finish: Any = "stop",
    usage: Any = "default",
    model: str = "hostile-model",
    **extra: Any,
) -> dict[str, Any]:
    """A chat completion body, any part of which a test may make wrong."""
    body: dict[str, Any] = {
        "id": "x",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        **extra,
    }
    if usage == "default":
        body["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    elif usage is not None:
        body["usage"] = usage
    return body


def models(*names: str) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": name, "object": "model"} for name in names]}


def embeddings(n: int, model: str = "hostile-embed") -> dict[str, Any]:
    return {
        "object": "list",
        "model": model,
        "data": [{"index": i, "embedding": [0.1 * (i + 1), 0.2, 0.3]} for i in range(n)],
        "usage": {"prompt_tokens": n, "total_tokens": n},
    }


def raw(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def error(status: int, message: str) -> web.Response:
    return web.Response(
        body=json.dumps({"error": {"message": message, "type": "x"}}).encode(),
        status=status,
        content_type="application/json",
    )
