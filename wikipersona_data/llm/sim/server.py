"""The simulator's HTTP server (aiohttp) and a handle that runs it on a background thread.

One event loop serves every request, so state (stats, fault history, script) is touched by one
thread only; other threads read or change it by scheduling a coroutine on that loop.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.sim import batch_api
from wikipersona_data.llm.sim.chat import (
    ChatPlan,
    completion_body,
    generate_choice,
    parse_chat,
)
from wikipersona_data.llm.sim.config import FAULT_KINDS, SimConfig, is_loopback_host
from wikipersona_data.llm.sim.embeddings import embeddings_body
from wikipersona_data.llm.sim.faults import EMBEDDING_FAULTS, FaultPlanner
from wikipersona_data.llm.sim.prefix_cache import PrefixCache, prompt_sequence
from wikipersona_data.llm.sim.protocol import RequestError, request_hash
from wikipersona_data.llm.sim.responders import load_stage_responders
from wikipersona_data.llm.sim.reward import reward_body
from wikipersona_data.llm.sim.schema_fill import canonical

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATE_KEY = web.AppKey("sim_state", object)

PREFLIGHT_HEADER = "X-Wikipersona-Preflight"
"""Sent by ``llm/preflight.py``: counted as ``preflight_requests``, not in ``requests`` / ``requests_by_route``."""


class SimState:
    """Counters, fault planner and prompt-cache memory of one running simulator."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.planner = FaultPlanner(cfg)
        self.prefix_cache = PrefixCache(cfg.cache_block_tokens, cfg.cache_min_tokens)
        self.batch = batch_api.BatchBook()  # files and batches (llm/sim/batch_api.py), kept across resets
        self.reset_stats()

    def reset_stats(self) -> None:
        self.requests = 0
        self.by_status: Counter[int] = Counter()
        self.by_outcome: Counter[str] = Counter()
        self.by_schema: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.by_route: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self.in_flight = getattr(self, "in_flight", 0)
        self.peak = self.in_flight

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": dict(sorted(self.by_status.items())),
            "by_outcome": dict(sorted(self.by_outcome.items())),
            "peak_concurrency": self.peak,
            "in_flight": self.in_flight,
            "by_schema": dict(sorted(self.by_schema.items())),
            "by_model": dict(sorted(self.by_model.items())),
            "requests_by_route": dict(sorted(self.by_route.items())),
            "preflight_requests": self.counters["preflight_requests"],
            "responder_fallbacks": self.counters["responder_fallbacks"],
            "responder_errors": self.counters["responder_errors"],
            "schema_violations": self.counters["schema_violations"],
            "fill_invalid": self.counters["fill_invalid"],
            "script_left": list(self.planner.script_left),
            **self.batch.stats(),
        }

    def cached_tokens(self, plan: ChatPlan) -> int:
        """Leading prompt tokens already seen by this server (``prefix_cache.py`` states the rule)."""
        schema = canonical(plan.schema) if plan.schema is not None and plan.schema_enforced else None
        return self.prefix_cache.lookup_and_add(plan.model, prompt_sequence(plan.messages, schema))


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body, ensure_ascii=False), content_type="application/json", headers=headers
    )


def _error(err: RequestError) -> web.Response:
    return _json(err.status, err.body())


def _state(request: web.Request) -> SimState:
    return request.app[STATE_KEY]  # type: ignore[return-value]


@web.middleware
async def _accounting(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts, concurrency and auth for the API routes; /sim/* is loopback-only housekeeping."""
    state = _state(request)
    if request.path.startswith("/sim/"):
        if not is_loopback_host(request.remote or ""):
            return _json(
                403,
                {
                    "error": {
                        "message": "/sim/* is loopback only",
                        "type": "permission_error",
                        "param": None,
                        "code": None,
                    }
                },
            )
        return await handler(request)
    if request.headers.get(PREFLIGHT_HEADER):
        state.counters["preflight_requests"] += 1  # the client's preflight: apart from the work it checks
    else:
        state.requests += 1
        resource = request.match_info.route.resource
        # The route pattern, not the raw path: junk URLs must not grow the stats without bound.
        state.by_route[resource.canonical if resource is not None else "unmatched"] += 1
    state.in_flight += 1
    state.peak = max(state.peak, state.in_flight)
    try:
        if state.cfg.api_key is not None and request.headers.get("Authorization") != f"Bearer {state.cfg.api_key}":
            response: web.StreamResponse = _unauthorized()
            state.by_outcome["401"] += 1
        else:
            response = await handler(request)
        if not isinstance(response, _DroppedResponse):
            state.by_status[response.status] += 1
        return response
    finally:
        state.in_flight -= 1


def _unauthorized() -> web.Response:
    return _json(
        401,
        {
            "error": {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        },
    )


async def _read_json(request: web.Request) -> tuple[Any, str]:
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RequestError(400, f"request body is not valid JSON: {err}", "invalid_json") from err
    return body, request_hash(body)


async def _sleep_until(deadline: float) -> None:
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining > 0:
        await asyncio.sleep(remaining)


def _fault_reply(state: SimState, outcome: str) -> web.Response | None:
    """The answer of a fault that replaces the reply (a dropped connection is a :class:`_DroppedResponse`);
    None means "send the generated reply"."""
    cfg = state.cfg
    if outcome == "401":
        return _unauthorized()
    if outcome == "429":
        return _json(
            429,
            {
                "error": {
                    "message": "Rate limit reached (simulated). Please try again shortly.",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            headers={
                "Retry-After": f"{cfg.retry_after_s:g}",
                "retry-after-ms": str(round(cfg.retry_after_s * 1000)),
                "x-ratelimit-remaining-requests": "0",
            },
        )
    if outcome in ("500", "503"):
        message = (
            "The server had an error while processing your request (simulated)."
            if outcome == "500"
            else "The engine is currently overloaded (simulated)."
        )
        return _json(int(outcome), {"error": {"message": message, "type": "server_error", "param": None, "code": None}})
    if outcome == "drop":
        return _dropped_response()
    return None


def _headers(key: str, attempt: int) -> dict[str, str]:
    return {"x-request-id": f"req_{key[:16]}_{attempt}"}


async def chat_completions(request: web.Request) -> web.StreamResponse:
    arrived = asyncio.get_running_loop().time()
    state = _state(request)
    try:
        body, key = await _read_json(request)
        plan = parse_chat(body, state.cfg)
    except RequestError as err:
        state.by_outcome[str(err.status)] += 1
        return _error(err)
    state.by_model[plan.model] += 1
    if plan.schema_name:
        state.by_schema[plan.schema_name] += 1

    def build(outcome: str) -> str:
        choices = [generate_choice(plan, state.cfg, i, outcome, state.counters) for i in range(plan.n)]
        text = json.dumps(completion_body(plan, state.cfg, choices, state.cached_tokens(plan)), ensure_ascii=False)
        if outcome == "malformed" and not plan.wants_json:
            text = text[: len(text) // 2]  # a broken HTTP body: the JSON envelope itself is cut
        return text

    return await _serve(request, state, key, frozenset(FAULT_KINDS), build, arrived)


def _json_route(
    reply_for: Callable[[dict[str, Any], SimConfig], dict[str, Any]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A route answered with one JSON body built from the request (embeddings, reward models), under the
    embeddings' faults (a malformed reply is the body cut in half)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        arrived = asyncio.get_running_loop().time()
        state = _state(request)
        try:
            body, key = await _read_json(request)
            reply = reply_for(body, state.cfg)
        except RequestError as err:
            state.by_outcome[str(err.status)] += 1
            return _error(err)
        state.by_model[body["model"]] += 1

        def build(outcome: str) -> str:
            text = json.dumps(reply)
            return text[: len(text) // 2] if outcome == "malformed" else text

        return await _serve(request, state, key, EMBEDDING_FAULTS, build, arrived)

    return handler


embeddings = _json_route(embeddings_body)


def _reward_route(route: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """vLLM's ``/classify``, ``/pooling`` or ``/rerank`` with the simulated reward model (``sim/reward.py``)."""
    return _json_route(lambda body, cfg: reward_body(body, cfg, route))


async def _serve(
    request: web.Request,
    state: SimState,
    key: str,
    faults: frozenset[str],
    build: Callable[[str], str],
    arrived: float,
) -> web.StreamResponse:
    """Play the planned outcome (a fault, a delay, a dropped connection), then answer with ``build(outcome)``:
    the one fault path of every API route."""
    outcome, attempt = state.planner.decide(key, faults)
    deadline = arrived + state.planner.latency_s(key, attempt)
    state.by_outcome[outcome] += 1
    reply = _fault_reply(state, outcome)
    if reply is None:
        # Built while the latency runs, so ``latency_ms`` is the time from request to answer, as a server
        # with that latency would give: building after the wait would add this simulator's own CPU time,
        # queued behind every other reply of a burst, to each call the client makes.
        try:
            reply = web.Response(text=build(outcome), content_type="application/json", headers=_headers(key, attempt))
        except RequestError as err:
            reply = _error(err)
    await _sleep_until(deadline)
    if isinstance(reply, _DroppedResponse):
        if request.transport is not None:
            request.transport.abort()  # aiohttp discards the placeholder; the client sees a closed connection
    elif outcome == "slow":
        await asyncio.sleep(state.cfg.slow_s)
    return reply


class _DroppedResponse(web.Response):
    """Placeholder for a connection closed without an answer: never reaches the client, never counted."""


def _dropped_response() -> web.Response:
    # The transport is already aborted: aiohttp discards this, the client sees a closed connection.
    return _DroppedResponse(status=499)


async def list_models(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    state.by_outcome["ok"] += 1
    data = [
        {"id": m, "object": "model", "created": 1_795_651_200, "owned_by": "wikipersona-sim"} for m in state.cfg.models
    ]
    return _json(200, {"object": "list", "data": data})


async def get_model(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    name = request.match_info["model"]
    if name not in state.cfg.models:
        state.by_outcome["404"] += 1
        return _error(
            RequestError(
                404, f"The model `{name}` does not exist or you do not have access to it.", "model_not_found", "model"
            )
        )
    state.by_outcome["ok"] += 1
    return _json(200, {"id": name, "object": "model", "created": 1_795_651_200, "owned_by": "wikipersona-sim"})


async def sim_stats(request: web.Request) -> web.StreamResponse:
    return _json(200, _state(request).snapshot())


async def sim_reset(request: web.Request) -> web.StreamResponse:
    _state(request).reset_stats()
    return _json(200, {"ok": True})


async def _not_found(request: web.Request) -> web.StreamResponse:
    _state(request).by_outcome["404"] += 1
    return _error(RequestError(404, f"Unknown route {request.method} {request.path}", "not_found"))


def create_app(cfg: SimConfig) -> tuple[web.Application, SimState]:
    """The aiohttp application for ``cfg``; stage responders are imported here, once per server."""
    load_stage_responders()
    state = SimState(cfg)
    app = web.Application(middlewares=[_accounting], client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/classify", _reward_route("classify"))
    app.router.add_post("/pooling", _reward_route("pooling"))
    app.router.add_post("/rerank", _reward_route("rerank"))
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model}", get_model)
    batch_api.add_routes(app, _state)
    app.router.add_get("/sim/stats", sim_stats)
    app.router.add_post("/sim/reset", sim_reset)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app, state


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket; binding ourselves tells us the port when 0 (any free port) was asked."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1" if host == "localhost" else host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    return sock


def base_url_for(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


async def start_runner(cfg: SimConfig) -> tuple[web.AppRunner, SimState, str]:
    """Start serving ``cfg`` on the running loop; returns the runner (to clean up), state and base URL."""
    app, state = create_app(cfg)
    # handler_cancellation: a client that gives up on a "slow" reply frees its handler at once.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    sock = bind_socket(cfg.host, cfg.port)
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
    return runner, state, base_url_for(cfg.host, sock.getsockname()[1])


class SimServer:
    """The simulator on a background thread: ``with SimServer(cfg) as sim: sim.base_url``."""

    def __init__(self, cfg: SimConfig | None = None) -> None:
        self.cfg = cfg or SimConfig()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._state: SimState | None = None
        self._base_url: str | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("SimServer is not running; call start() or use it as a context manager")
        return self._base_url

    def start(self) -> SimServer:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._stopped = asyncio.Event()
                self._runner, self._state, self._base_url = loop.run_until_complete(start_runner(self.cfg))
            except BaseException as err:
                failure.append(err)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_until_complete(self._stopped.wait())
                loop.run_until_complete(self._runner.cleanup())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="llm-sim", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None or self._stopped is None:
            return
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=10)
        self._thread = None
        self._base_url = None

    def _call(self, fn: Callable[[SimState], Any]) -> Any:
        if self._loop is None or self._state is None or self._thread is None:
            raise RuntimeError("SimServer is not running")
        state = self._state

        async def run() -> Any:
            return fn(state)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def stats(self) -> dict[str, Any]:
        """Counters since start or the last reset (see ``SimState.snapshot`` for the keys)."""
        return self._call(lambda state: state.snapshot())

    def reset_stats(self) -> None:
        self._call(lambda state: state.reset_stats())

    def set_script(self, script: Iterable[str]) -> None:
        """Replace the forced-outcome queue: the next requests get these outcomes in order."""
        outcomes = tuple(script)
        self._call(lambda state: state.planner.set_script(outcomes))

    def release_batches(self) -> None:
        """Complete every waiting batch now (tests: a long ``batch_delay_s`` without waiting it out)."""
        self._call(lambda state: setattr(state.batch, "released", True))

    def batch_submissions(self) -> dict[str, int]:
        """custom_id -> how many created batches held it."""
        return self._call(lambda state: dict(state.batch.submissions))

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
