"""Hostile servers for the security tests: all on 127.0.0.1, over real HTTP.

``Recorder`` is "another server" a tampered release points at: it keeps every request's headers and
body and answers 500, so a test can say it was never called (or never saw a key). ``RewritingProxy``
sits in front of ``llm-sim`` and rewrites each chat reply's message content, the way a hostile or
broken endpoint echoes the bearer key, control characters or injected instructions into its answers.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import threading
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web


def fake_key(prefix: str, length: int = 36) -> str:
    """A key-shaped string made at run time (no key-shaped literal is committed)."""
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


class _Background:
    """An aiohttp app on its own event loop thread, bound to 127.0.0.1 at a free port."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _start(self) -> None:
        self.runner = web.AppRunner(self.app())
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __enter__(self) -> Any:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


class Recorder(_Background):
    """Records every request (headers, body) and answers HTTP 500."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        async def record(request: web.Request) -> web.Response:
            body = await request.read()
            self.requests.append({"path": request.path, "headers": dict(request.headers), "body": body})
            return web.json_response({"error": {"message": "recorded"}}, status=500)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        return app


class RewritingProxy(_Background):
    """Forwards to ``upstream`` (an llm-sim base URL) and passes each chat reply's content through
    ``rewrite(content, request_json, authorization_header)``; embeddings and everything else pass unchanged."""

    def __init__(self, upstream: str, rewrite: Callable[[str, dict[str, Any], str], str]) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.rewrite = rewrite
        self.rewritten = 0

    def app(self) -> web.Application:
        async def forward(request: web.Request) -> web.Response:
            body = await request.read()
            tail = request.path.removeprefix("/v1")
            headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
            url = self.upstream + tail
            async with (
                aiohttp.ClientSession() as session,
                session.request(request.method, url, data=body, headers=headers) as up,
            ):
                status, raw = up.status, await up.read()
            if status == 200 and tail == "/chat/completions":
                reply = json.loads(raw)
                sent = json.loads(body)
                for choice in reply.get("choices") or []:
                    message = choice.get("message") or {}
                    if isinstance(message.get("content"), str):
                        auth = request.headers.get("Authorization", "")
                        message["content"] = self.rewrite(message["content"], sent, auth)
                        self.rewritten += 1
                raw = json.dumps(reply).encode()
            return web.Response(status=status, body=raw, content_type="application/json")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        return app
