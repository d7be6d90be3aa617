"""The one way stages talk to an LLM: cache -> budget -> limits -> retries -> HTTP -> cache -> parse.

Usage (every stage uses exactly this)::

    client = LLMClient(endpoints={"local": EndpointConfig(name="local", base_url=url, profile="vllm")},
                       cache=CallCache(work / "cache", mode="use"), ledger=Ledger(prices), max_usd=None)
    r = await client.chat_json(stage="describe", endpoint="local", model="m", messages=[...],
                               schema=Description, schema_name="description",
                               params={"temperature": 0.0, "max_tokens": 800, "seed": 7},
                               sample_idx=0, max_reasks=2)
    if r.ok: use(r.value)            # a validated pydantic instance
    else: reject(r.failure)          # "invalid_json", "schema_violation: ...", "length", "refusal: ...",
                                     # "exhausted_retries: 503", "http_400: ..."
    await client.aclose()            # or: async with LLMClient(...) as client:

Why it is built this way:

* **One retry owner.** The openai SDK runs with ``max_retries=0``; :mod:`retry` (tenacity) decides, so
  429s are seen by the adaptive limiter and attempts are bounded once, not multiplied.
* **Nothing paid is lost, nothing failed is stored as data.** The raw JSON body is written to the cache
  *before* it is parsed; a rerun replays it (``cached=True``) and re-parses. A reply that fails
  validation is re-asked as a new call (``attempt`` + 1 in the key, plus a message saying what was
  wrong), and after ``max_reasks`` the result is ``ok=False`` with the reason: never a default.
* **The key never leaves the environment.** It is read from ``EndpointConfig.api_key_env`` at each
  request and sent only as the ``Authorization`` header; the SDK object holds a placeholder, and server
  messages are scrubbed of the key before they reach a log, error record or exception.
* **Raised vs returned.** Problems every call would hit raise :class:`LLMError` at once (401 bad key,
  403, 404 unknown model/URL, cache miss in ``only`` mode, missing key for the ``openai`` profile);
  spending past ``max_usd`` raises :class:`BudgetExceeded` once in-flight calls have finished. Problems
  of one request are *returned* as ``ok=False`` (400/422 for that prompt, retries exhausted, a reply
  that never validated) so one bad row cannot abort a build of thousands.
* **Identical concurrent calls are made once**: a second caller of an in-flight key waits for the first
  and is served as a cache hit.

Different samples of one prompt: ``sample_idx`` separates their cache entries, but a deterministic
server (the simulator, or ``temperature=0``) answers an identical request identically, so stages that
want distinct samples should also vary ``seed`` (or the prompt) per sample.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx2
import openai
import pydantic
from tenacity import RetryCallState

from wikipersona_data import redact
from wikipersona_data.errors import BudgetExceeded, ConfigError, LLMError
from wikipersona_data.llm.cache import CallCache, call_key, record_mode
from wikipersona_data.llm.config import EndpointConfig, normalise_base_url
from wikipersona_data.llm.deferral import BatchRequestFailed, Collector, PendingCall
from wikipersona_data.llm.envelope import EnvelopeError, check_chat, check_embed, decode_body, reliable_usage
from wikipersona_data.llm.ledger import Ledger, estimate_tokens
from wikipersona_data.llm.limits import EndpointLimits
from wikipersona_data.llm.profiles import Profile, get_profile
from wikipersona_data.llm.retry import ErrorInfo, RetryableCallError, classify, retry_after_seconds, retrying
from wikipersona_data.llm.reward import URLS as REWARD_URLS
from wikipersona_data.llm.reward import check_reward, score_of
from wikipersona_data.llm.reward import request_body as reward_request
from wikipersona_data.llm.structured import (
    Reply,
    parse_json_reply,
    reask_messages,
    reply_failure,
    schema_instruction,
    strict_schema,
)
from wikipersona_data.llm.transport import (
    CHAT_URL,
    EMBEDDINGS_URL,
    Delivery,
    OnlineTransport,
    ReplyTooLarge,
    RequestRecord,
    Transport,
    capping_hook,
    read_capped,
)

log = logging.getLogger(__name__)

SEMANTIC_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "stop",
        "seed",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "reasoning_effort",
    }
)
# values equal to the API default that mean "not set" (temperature/top_p are kept: servers differ on defaults)
_NEUTRAL = {"n": 1, "presence_penalty": 0, "frequency_penalty": 0, "logprobs": False}
DUMMY_KEY = "sk-no-key-required"  # local servers want *a* bearer token, not a real one
PLACEHOLDER_KEY = "sk-read-from-env-per-request"  # what the SDK object holds instead of the real key
DEFAULT_OUTPUT_TOKENS = 1024  # budget projection for a call without max_tokens
SEED_STRIDE = 1000  # re-ask n sends seed + 1000 * n: a deterministic server must be able to answer differently
LENGTH_GROWTH = 1.5  # a re-ask after a `length` cut may use this many times the tokens (within the context)
LENGTH_FREQUENCY_PENALTY = 0.5
"""``frequency_penalty`` of a re-ask after a ``length`` cut (at least; a recipe's own higher one is kept). A reply
that runs out of tokens is most often a loop on a small model ("2.2.2.2...", one emoji repeated: SmolLM2-135M
under a schema that still had room), which more tokens only lengthen; a penalty on repeated tokens breaks it.
Every server we support takes it (OpenAI, vLLM, llama.cpp, Ollama)."""
CONTEXT_MARGIN_TOKENS = 32  # room for the chat template's own tokens around the messages


@dataclass(frozen=True)
class JsonResult:
    """Outcome of :meth:`LLMClient.chat_json`.

    ``value`` is the validated pydantic instance when ``ok``; otherwise ``failure`` says why. ``call_keys``
    lists every attempt's cache key (provenance for the row), ``raw_text`` is the last reply's text,
    ``cached`` is True when every attempt was replayed, ``usage`` sums the attempts' reported tokens
    (``None`` when the server reported none).
    """

    ok: bool
    value: Any
    failure: str | None
    call_keys: tuple[str, ...]
    raw_text: str | None
    served_model: str | None
    cached: bool
    usage: dict[str, int] | None


@dataclass(frozen=True)
class TextResult:
    """Outcome of :meth:`LLMClient.chat_text` (``text`` only when ``ok``; see :class:`JsonResult`)."""

    ok: bool
    text: str | None
    failure: str | None
    call_keys: tuple[str, ...]
    served_model: str | None
    cached: bool
    usage: dict[str, int] | None
    finish_reason: str | None


@dataclass(frozen=True)
class RewardResult:
    """Outcome of :meth:`LLMClient.reward`: ``score`` (a finite float) only when ``ok``; else ``failure``."""

    ok: bool
    score: float | None
    failure: str | None
    call_keys: tuple[str, ...]
    served_model: str | None
    cached: bool


@dataclass
class _Fetched:
    response: dict[str, Any]
    cached: bool


@dataclass
class _Run:
    """What the attempt loop of one logical chat call ended with."""

    value: Any = None
    failure: str = "no_attempt"
    keys: tuple[str, ...] = ()
    reply: Reply | None = None
    cached: bool = True
    usage: dict[str, int] | None = None


class _CallFailed(Exception):
    """A failure of this one request (returned to the stage as ``ok=False``, not raised)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def semantic_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The sampling params that enter the cache key: known names only, unset/neutral values dropped."""
    out: dict[str, Any] = {}
    for name, value in (params or {}).items():
        if name not in SEMANTIC_PARAMS:
            raise ConfigError(f"unknown LLM param {name!r}; allowed: {', '.join(sorted(SEMANTIC_PARAMS))}")
        if value is None or (name in _NEUTRAL and value == _NEUTRAL[name]) or (name == "stop" and not value):
            continue
        out[name] = value
    if out.get("n", 1) != 1:
        raise ConfigError("LLM param n must be 1: ask for several samples with sample_idx (one cached call each)")
    return out


def embed_spec(identity: str, model: str, texts: Sequence[str]) -> dict[str, Any]:
    """The cache spec of one embedding call; its ``call_key`` is what a row cites to account for the call."""
    return {"api": "embed", "endpoint": identity, "model": model, "input": list(texts), "attempt": 0}


def reward_spec(identity: str, model: str, route: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The cache spec of one reward call. The score index is not in it: it is read from the cached reply,
    so changing it re-parses without a call."""
    return {"api": "reward", "endpoint": identity, "model": model, "route": route, "messages": list(messages)}


def _check_body(spec: dict[str, Any], body: dict[str, Any]) -> None:
    """The envelope check of a reply to ``spec``'s kind of call (chat, embeddings, reward)."""
    api = spec.get("api")
    if api == "embed":
        check_embed(body)
    elif api == "reward":
        check_reward(body, str(spec.get("route")))
    else:
        check_chat(body)


def _sum_usage(total: dict[str, int] | None, usage: dict[str, Any] | None) -> dict[str, int] | None:
    usage = reliable_usage(usage)
    if not usage:
        return total
    total = dict(total or {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0})
    total["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
    total["completion_tokens"] += int(usage.get("completion_tokens") or 0)
    total["cached_tokens"] += int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return total


_T = TypeVar("_T")
_P = ParamSpec("_P")


def _admitted(
    method: Callable[Concatenate[LLMClient, _P], Awaitable[_T]],
) -> Callable[Concatenate[LLMClient, _P], Awaitable[_T]]:
    """Hold the endpoint's admission slot around a whole public call, taken before any other work.

    Taken first so that the calls a stage queues beyond the window cost one waiting future each, and
    the replies of calls already sent are handled without waiting behind their preparation (see
    :mod:`wikipersona_data.llm.limits`).
    """

    @functools.wraps(method)
    async def gated(self: LLMClient, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        name = kwargs.get("endpoint")  # the public calls take keywords only
        if not isinstance(name, str):
            return await method(self, *args, **kwargs)  # let the call itself report the bad arguments
        self._active += 1
        try:
            async with self._limits_for(self._endpoint(name)[0]).admit():
                return await method(self, *args, **kwargs)
        finally:
            self._active -= 1

    return gated


class LLMClient:
    """Chat (JSON or text) and embeddings over any OpenAI-compatible endpoint; see the module docstring."""

    def __init__(
        self,
        endpoints: Mapping[str, EndpointConfig],
        cache: CallCache | None = None,
        ledger: Ledger | None = None,
        max_usd: float | None = None,
        transport: Transport | None = None,
    ) -> None:
        """``transport`` executes request records (default: :class:`OnlineTransport`, HTTP now); the cache,
        dedup, budget, ledger, limits and retries here wrap whichever it is (``llm/transport.py``)."""
        if not endpoints:
            raise ConfigError("LLMClient needs at least one endpoint")
        if max_usd is not None and not max_usd >= 0:
            raise ConfigError(f"max_usd must be >= 0, got {max_usd}")
        self.endpoints = dict(endpoints)
        for ep in self.endpoints.values():
            redact.register_key_variable(ep.api_key_env)  # its value is scrubbed from all we write
        self.cache = cache if cache is not None else CallCache(".", mode="off")
        self.ledger = ledger if ledger is not None else Ledger()
        self.max_usd = max_usd
        self._sdk: dict[str, openai.AsyncOpenAI] = {}
        self.transport: Transport = transport if transport is not None else OnlineTransport(self._sdk_for)
        self._limits: dict[str, EndpointLimits] = {}
        self._pending: dict[str, asyncio.Future[_Fetched]] = {}
        self._reserved_usd = 0.0
        self._paid_in_flight = 0
        self._idle: asyncio.Event | None = None
        self._refused: str | None = None
        self._context: dict[str, int | None] = {}
        self.served: dict[str, set[str]] = {}
        """requested model -> model names the server said it used (every reply, cache hits included)"""
        self.collector: Collector | None = None
        """Set in batch/offline mode: uncached calls of deferrable stages wait for a batch (``llm/deferral.py``)."""
        self._bought: dict[str, str] = {}  # key -> mode of a reply imported from a batch, not yet replayed
        self._active = 0  # public calls in progress (``settle``)
        self._counted: set[str] = set()  # batch mode: keys the ledger has counted in this run (rounds replay them)
        self.checks_before_first_send: dict[str, Callable[[], Awaitable[None]]] = {}
        """endpoint -> its preflight, when the recipe defers it to the first request sent there (``preflight =
        "first_use"``): a server a later stage needs (a reward model's GPU) is checked when it is needed, and
        not at all in a run that finds that stage's calls in the cache."""
        self._checks: dict[str, asyncio.Future[None]] = {}

    def __repr__(self) -> str:
        return f"LLMClient(endpoints={sorted(self.endpoints)}, cache={self.cache!r}, max_usd={self.max_usd})"

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transport and HTTP connections, and fsync the cache (the cache's owner closes it)."""
        await self.transport.aclose()
        for sdk in self._sdk.values():
            await sdk.close()
        self._sdk.clear()
        self.cache.sync()

    async def settle(self) -> None:
        """Wait until no public call is in progress.

        After a stage stopped on a deferred call, calls its sibling tasks started (``asyncio.gather`` keeps
        running the others) still reach the collector; the round's requests are complete only after this."""
        while True:
            for _ in range(3):
                await asyncio.sleep(0)
            if not self._active:
                return
            await asyncio.sleep(0.001)

    def limits(self, endpoint: str) -> EndpointLimits:
        """The live limiter of an endpoint (peak concurrency, current AIMD limit) for reports and tests."""
        ep, _ = self._endpoint(endpoint)
        return self._limits_for(ep)

    # ------------------------------------------------------------------ public calls
    @_admitted
    async def chat_json(
        self,
        *,
        stage: str,
        endpoint: str,
        model: str,
        messages: Sequence[dict[str, Any]],
        schema: type[pydantic.BaseModel],
        schema_name: str,
        params: Mapping[str, Any] | None = None,
        sample_idx: int = 0,
        max_reasks: int = 2,
    ) -> JsonResult:
        """One validated JSON object, re-asking up to ``max_reasks`` times when a reply is unusable."""
        ep, profile = self._endpoint(endpoint)
        json_schema = profile.sendable_schema(strict_schema(schema))
        base = [dict(m) for m in messages]
        extra: dict[str, Any] = {}
        if ep.enforces_json_schema:
            extra["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": json_schema, "strict": True},
            }
        else:
            base = _with_instruction(base, schema_instruction(schema_name, json_schema))
        run = await self._attempts(
            stage=stage,
            endpoint=endpoint,
            model=model,
            base=base,
            params=params,
            schema={"name": schema_name, "json": json_schema},
            extra=extra,
            sample_idx=sample_idx,
            max_reasks=max_reasks,
            accept=lambda reply: parse_json_reply(reply, schema),
            reask=lambda reply, why: base + reask_messages(reply.content, why),
        )
        reply = run.reply
        return JsonResult(
            run.value is not None,
            run.value,
            None if run.value is not None else run.failure,
            run.keys,
            reply.content if reply else None,
            reply.served_model if reply else None,
            run.cached,
            run.usage,
        )

    @_admitted
    async def chat_text(
        self,
        *,
        stage: str,
        endpoint: str,
        model: str,
        messages: Sequence[dict[str, Any]],
        params: Mapping[str, Any] | None = None,
        sample_idx: int = 0,
        max_reasks: int = 0,
        keep_truncated: bool = False,
    ) -> TextResult:
        """Free text; truncated (``length``), refused or empty replies are failures, re-asked if allowed.

        ``keep_truncated``: a reply cut at ``max_tokens`` is the answer (``finish_reason`` says ``length``), as
        when a policy under evaluation answers at its token limit."""

        def accept(reply: Reply) -> tuple[str | None, str | None]:
            why = reply_failure(reply)
            if why == "length" and keep_truncated and reply.content and reply.content.strip():
                why = None
            return (reply.content, None) if why is None else (None, why)

        run = await self._attempts(
            stage=stage,
            endpoint=endpoint,
            model=model,
            base=[dict(m) for m in messages],
            params=params,
            schema=None,
            extra={},
            sample_idx=sample_idx,
            max_reasks=max_reasks,
            accept=accept,
            reask=None,
        )
        reply = run.reply
        ok = run.value is not None
        return TextResult(
            ok,
            run.value,
            None if ok else run.failure,
            run.keys,
            reply.served_model if reply else None,
            run.cached,
            run.usage,
            reply.finish_reason if reply else None,
        )

    async def _attempts(
        self,
        *,
        stage: str,
        endpoint: str,
        model: str,
        base: list[dict[str, Any]],
        params: Mapping[str, Any] | None,
        schema: dict[str, Any] | None,
        extra: dict[str, Any],
        sample_idx: int,
        max_reasks: int,
        accept: Callable[[Reply], tuple[Any, str | None]],
        reask: Callable[[Reply, str], list[dict[str, Any]]] | None,
    ) -> _Run:
        """The one attempt loop of chat calls: each attempt has its own cache key (``attempt``); an
        unusable reply is recorded as an error and asked again (with ``reask``'s conversation, or the
        same one), up to ``max_reasks`` times. An HTTP failure ends the loop at once."""
        ep, profile = self._endpoint(endpoint)
        first = semantic_params(params)
        sem = first
        run = _Run()
        conversation = base
        context = await self._context_size(ep)
        for attempt in range(max_reasks + 1):
            if attempt:
                sem = _reask_params(first, sem, attempt, run.failure, context, estimate_tokens(conversation))
            if context is not None:
                allowed = context - int(sem.get("max_tokens") or DEFAULT_OUTPUT_TOKENS) - CONTEXT_MARGIN_TOKENS
                if estimate_tokens(conversation) > allowed:
                    self.ledger.record_error(stage, model, "prompt_too_long")
                    run.failure = (
                        f"prompt_too_long: about {estimate_tokens(conversation)} tokens, context {context} "
                        f"minus max_tokens leaves {max(allowed, 0)}"
                    )
                    run.cached = False
                    return run
            spec = {
                "api": "chat",
                "endpoint": ep.identity,
                "model": model,
                "messages": conversation,
                "params": sem,
                "schema": schema,
                "sample_idx": sample_idx,
                "attempt": attempt,
            }
            key = call_key(spec)
            run.keys += (key,)
            try:
                fetched = await self._chat(stage, ep, profile, model, key, spec, conversation, sem, extra)
            except _CallFailed as err:
                run.failure, run.reply, run.cached = err.reason, None, False
                return run
            run.cached = run.cached and fetched.cached
            run.reply = Reply.from_response(fetched.response)
            run.usage = _sum_usage(run.usage, run.reply.usage)
            self._saw(model, run.reply.served_model)
            value, why = accept(run.reply)
            if value is not None:
                run.value = value
                return run
            run.failure = why or "invalid"
            self.ledger.record_error(stage, model, run.failure.split(":", 1)[0])
            if not fetched.cached or self.cache.mode == "use":
                # a content fault (refusal, length, bad JSON) may be a bad moment of the server: marked, the
                # cached reply is asked again on the next --cache use run instead of failing forever
                self.cache.mark_fault(key, run.failure)
            if reask is not None:
                conversation = reask(run.reply, run.failure)
        return run

    @_admitted
    async def embed(self, *, stage: str, endpoint: str, model: str, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order. Failures raise :class:`LLMError` (there is no row to reject)."""
        ep, _profile = self._endpoint(endpoint)
        if not texts:
            return []
        spec = embed_spec(ep.identity, model, texts)
        key = call_key(spec)
        request = {"model": model, "input": list(texts), "encoding_format": "float"}
        prompt_tokens = sum(estimate_tokens(t) for t in texts)
        record = RequestRecord(custom_id=key, url=EMBEDDINGS_URL, body=request)
        try:
            fetched = await self._fetch(stage, ep, model, record, spec, prompt_tokens, 0)
        except _CallFailed as err:
            raise LLMError(f"embedding call of stage {stage} (model {model}) failed: {err.reason}") from None
        data = sorted(fetched.response["data"], key=lambda item: item["index"])
        if len(data) != len(texts) or [item["index"] for item in data] != list(range(len(texts))):
            raise LLMError(f"embedding endpoint {ep.name!r} returned {len(data)} vectors for {len(texts)} texts")
        served = fetched.response.get("model")
        self._saw(model, served if isinstance(served, str) else None)
        return [[float(x) for x in item["embedding"]] for item in data]

    @_admitted
    async def reward(
        self,
        *,
        stage: str,
        endpoint: str,
        model: str,
        messages: Sequence[dict[str, Any]],
        route: str = "classify",
        score_index: int = 0,
    ) -> RewardResult:
        """A reward model's score of one conversation (vLLM ``/classify`` or ``/pooling``, or a reranker's
        ``/rerank``; ``llm/reward.py``).

        The same policies as chat: content-addressed cache, in-flight dedup, budget, ledger, limits and
        retries. A malformed reply (not exactly one result, a number that is not finite) is retried and never
        cached; a request the server refuses (400/422), retries exhausted or a ``score_index`` past the
        model's outputs come back as ``ok=False``, not raised."""
        ep, profile = self._endpoint(endpoint)
        if route not in profile.reward_routes:
            raise ConfigError(
                f"endpoint {ep.name!r} (profile {ep.profile}) serves no /{route} reward route; "
                "reward models need a vllm endpoint (/classify, /pooling, /rerank) or a llama.cpp rank server (/rerank)"
            )
        spec = reward_spec(ep.identity, model, route, messages)
        key = call_key(spec)
        body = reward_request(model, list(messages), route)
        record = RequestRecord(custom_id=key, url=REWARD_URLS[route], body=body)
        try:
            fetched = await self._fetch(stage, ep, model, record, spec, estimate_tokens(list(messages)), 0)
        except _CallFailed as err:
            return RewardResult(False, None, err.reason, (key,), None, False)
        served = fetched.response.get("model")
        served = served if isinstance(served, str) else None
        self._saw(model, served)
        score, why = score_of(fetched.response, route, score_index)
        if score is None:
            self.ledger.record_error(stage, model, "score_index")
            return RewardResult(False, None, why, (key,), served, fetched.cached)
        return RewardResult(True, score, None, (key,), served, fetched.cached)

    # ------------------------------------------------------------------ context window
    def context_budget(self, endpoint: str, max_tokens: int) -> int | None:
        """Prompt tokens a call with ``max_tokens`` may use on this endpoint, or None when no limit is known.

        Stages trim their prompts (fewer article sentences) to this; a prompt still over it fails with
        ``prompt_too_long`` instead of being sent. The context size is the server's own (llama.cpp's
        ``/props`` n_ctx, read on the first call or at preflight) or the recipe's ``context_tokens``.
        """
        ep, _ = self._endpoint(endpoint)
        context = self._context.get(ep.name, ep.context_tokens)
        if context is None:
            return None
        return max(context - max_tokens - CONTEXT_MARGIN_TOKENS, 0)

    async def _context_size(self, ep: EndpointConfig) -> int | None:
        if ep.name not in self._context:
            self._context[ep.name] = ep.context_tokens  # also guards against asking twice concurrently
            if ep.profile == "llamacpp" and self.cache.mode != "only":
                served = await self.server_context(ep.name)
                if served is not None:
                    self._context[ep.name] = served
        return self._context[ep.name]

    async def server_context(self, endpoint: str) -> int | None:
        """The context size the server reports (llama.cpp ``GET /props``: ``n_ctx``), or None."""
        ep, _ = self._endpoint(endpoint)
        root = normalise_base_url(ep.base_url).removesuffix("/v1")
        try:
            async with asyncio.timeout(min(ep.timeout_s or 10.0, 10.0)):
                raw = await self._sdk_for(ep).get(f"{root}/props", cast_to=httpx2.Response, stream=True)
                body = decode_body(await read_capped(raw, 1 << 20))
                await raw.aclose()
        except (openai.APIError, TimeoutError, ReplyTooLarge, EnvelopeError):
            return None
        settings = body.get("default_generation_settings")
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
        n_ctx = n_ctx if n_ctx is not None else body.get("n_ctx")
        if type(n_ctx) is int and n_ctx >= 16:
            self._context[ep.name] = n_ctx
            return n_ctx
        return None

    # ------------------------------------------------------------------ plumbing
    def _saw(self, model: str, served: str | None) -> None:
        if served:
            self.served.setdefault(model, set()).add(served)

    def _usable_record(self, record: dict[str, Any] | None, spec: dict[str, Any]) -> dict[str, Any] | None:
        """A cached record worth replaying: its body passes the same envelope check as a fresh reply, and
        it carries no content-fault mark from an earlier run (those are asked again in ``use`` mode)."""
        if record is None:
            return None
        response = record.get("response")
        try:
            if not isinstance(response, dict):
                raise EnvelopeError("invalid_envelope", "response is not an object")
            _check_body(spec, response)
        except EnvelopeError as err:
            log.warning("call cache: record %s is not a valid reply (%s): asking again", record.get("key"), err)
            return None
        # (a reply bought in a batch keeps its fault: asking again would only make another batch round)
        if (
            record.get("fault")
            and self.cache.mode == "use"
            and not self.cache.is_fresh(str(record.get("key")))
            and record_mode(record) == "online"
        ):
            log.info("call cache: %s had a content fault (%s) last run: asking again", record["key"], record["fault"])
            return None
        return record

    def _endpoint(self, name: str) -> tuple[EndpointConfig, Profile]:
        ep = self.endpoints.get(name)
        if ep is None:
            raise ConfigError(f"unknown endpoint {name!r}; configured: {', '.join(sorted(self.endpoints))}")
        return ep, get_profile(ep.profile)

    def _limits_for(self, ep: EndpointConfig) -> EndpointLimits:
        limits = self._limits.get(ep.name)
        if limits is None:
            limits = EndpointLimits(ep.max_concurrency, ep.rpm, ep.tpm)
            self._limits[ep.name] = limits
        return limits

    def _sdk_for(self, ep: EndpointConfig) -> openai.AsyncOpenAI:
        sdk = self._sdk.get(ep.name)
        if sdk is None:
            # aiohttp transport (the SDK's own `DefaultAioHttpClient`): httpcore's pool costs ~1 ms of CPU per
            # request at 64 connections (it re-checks every connection on each request), aiohttp a fraction
            http_client = openai.DefaultAioHttpClient(
                timeout=ep.timeout_s,
                limits=httpx2.Limits(max_connections=ep.max_concurrency, max_keepalive_connections=ep.max_concurrency),
                event_hooks={"response": [capping_hook(ep.max_reply_bytes)]},
            )
            sdk = openai.AsyncOpenAI(
                api_key=PLACEHOLDER_KEY,
                base_url=ep.base_url,
                max_retries=0,
                timeout=ep.timeout_s,
                http_client=http_client,
            )
            self._sdk[ep.name] = sdk
        return sdk

    def _api_key(self, ep: EndpointConfig, profile: Profile) -> str:
        value = os.environ.get(ep.api_key_env, "").strip()
        if value:
            return value
        if profile.requires_key:
            raise LLMError(
                f"endpoint {ep.name!r} ({ep.profile}) needs an API key: set the environment variable {ep.api_key_env}"
            )
        return DUMMY_KEY

    def _scrub(self, text: str, ep: EndpointConfig) -> str:
        """One line, bounded, with secrets removed: the key, its fragments and masked forms, anything
        key-shaped (servers echo what they were sent; see :mod:`wikipersona_data.redact`)."""
        text = redact.scrub(" ".join(text.split()), aggressive=True)
        return text if len(text) <= 300 else text[:299] + "…"

    async def _chat(
        self,
        stage: str,
        ep: EndpointConfig,
        profile: Profile,
        model: str,
        key: str,
        spec: dict[str, Any],
        messages: list[dict[str, Any]],
        sem: dict[str, Any],
        extra: dict[str, Any],
    ) -> _Fetched:
        sent = alternating(messages) if profile.alternates_roles else messages
        request = {"model": model, "messages": sent, **profile.request_params(sem), **extra}
        record = RequestRecord(custom_id=key, url=CHAT_URL, body=request)
        max_out = int(sem.get("max_tokens") or DEFAULT_OUTPUT_TOKENS)
        return await self._fetch(stage, ep, model, record, spec, estimate_tokens(messages), max_out)

    async def _fetch(
        self,
        stage: str,
        ep: EndpointConfig,
        model: str,
        request: RequestRecord,
        spec: dict[str, Any],
        prompt_tokens: int,
        max_out: int,
    ) -> _Fetched:
        """Cache, in-flight dedup and budget around one request record; then limits and retries."""
        key = request.custom_id
        record = self._usable_record(self.cache.get(key), spec)
        if record is not None:
            bought = self._bought.pop(key, None)
            usage = reliable_usage(record.get("usage"))
            if bought is not None:  # imported from a batch in this run: paid now, at the batch's price
                self._counted.add(key)
                self.ledger.record_request(stage, model)
                local = (prompt_tokens, _reply_tokens(record["response"]))
                self.ledger.record_call(
                    stage, model, usage=usage, latency_s=None, cached=False, local_tokens=local, mode=bought
                )
                return _Fetched(record["response"], cached=False)
            if self.collector is not None:  # batch rounds replay what earlier rounds of this run counted
                if key in self._counted:
                    return _Fetched(record["response"], cached=True)
                self._counted.add(key)
            self.ledger.record_call(stage, model, usage=usage, latency_s=None, cached=True, mode=record_mode(record))
            return _Fetched(record["response"], cached=True)
        pending = self._pending.get(key)
        if pending is not None:  # the same call is in flight: share its answer instead of paying twice
            fetched = await asyncio.shield(pending)
            self.ledger.record_call(stage, model, usage=None, latency_s=None, cached=True)
            return _Fetched(fetched.response, cached=True)
        if self.cache.mode == "only":
            raise LLMError(
                f"cache miss in --cache only mode for stage {stage} (model {model}, call {key[:12]}): "
                "rerun with --cache use to make this call"
            )
        if self.collector is not None and self.collector.wants(ep.name, stage, request.url):
            try:  # batch/offline mode: the request waits for this round's batch (raises Deferred)
                self.collector.defer(PendingCall(request, spec, stage, model, ep.name, prompt_tokens, max_out))
            except BatchRequestFailed as err:
                self.cache.put_error(key, spec, "batch_failed", err.reason)
                self.ledger.record_error(stage, model, "batch_failed")
                raise _CallFailed(err.reason) from None
        future: asyncio.Future[_Fetched] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            await self._checked(ep.name)
            reserved = await self._reserve(stage, model, prompt_tokens, max_out)
            try:
                fetched = await self._send_with_retries(
                    stage, ep, model, request, spec, prompt_tokens + max_out, prompt_tokens
                )
            finally:
                self._unreserve(reserved)
        except asyncio.CancelledError:
            future.cancel()  # waiters see the cancellation, then make the call themselves on rerun
            raise
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # mark retrieved: nobody may be waiting
            raise
        else:
            future.set_result(fetched)
            return fetched
        finally:
            self._pending.pop(key, None)

    async def _checked(self, endpoint: str) -> None:
        """Run the endpoint's deferred preflight once, before the first request sent to it (concurrent first
        calls wait for the same check; a failed check fails every one of them with its line)."""
        check = self.checks_before_first_send.get(endpoint)
        if check is None:
            return
        running = self._checks.get(endpoint)
        if running is None:
            running = self._checks[endpoint] = asyncio.ensure_future(check())
        await asyncio.shield(running)
        self.checks_before_first_send.pop(endpoint, None)

    async def _send_with_retries(
        self,
        stage: str,
        ep: EndpointConfig,
        model: str,
        request: RequestRecord,
        spec: dict[str, Any],
        estimated_tokens: int,
        prompt_tokens: int = 0,
    ) -> _Fetched:
        """The transport's attempts under the endpoint's limits, retried by the one retry owner."""
        key = request.custom_id
        profile = get_profile(ep.profile)
        limits = self._limits_for(ep)
        attempts = 0

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info(
                "stage %s model %s: %s, retrying in %.2fs (attempt %d/%d)",
                stage, model, getattr(getattr(exc, "info", None), "kind", exc), state.upcoming_sleep,
                state.attempt_number + 1, ep.max_attempts,
            )  # fmt: skip

        try:
            async for attempt in retrying(
                max_attempts=ep.max_attempts, max_seconds=ep.max_retry_seconds, before_sleep=before_sleep
            ):
                with attempt:
                    attempts += 1
                    headers = {"Authorization": f"Bearer {self._api_key(ep, profile)}"}
                    # the slot is held until the answer is on disk, so a crash loses at most the calls
                    # holding slots (<= max_concurrency), never an answer already received
                    async with limits.slot(estimated_tokens) as epoch:
                        self.ledger.record_request(stage, model)
                        started = time.perf_counter()
                        try:
                            async with asyncio.timeout(ep.timeout_s):
                                delivery = await self.transport.send(request, ep, headers)
                        except openai.APIError as exc:
                            raise self._failure(stage, ep, model, key, spec, exc, epoch, attempts) from None
                        except TimeoutError:
                            self.ledger.record_error(stage, model, "timeout")
                            detail = f"no complete reply within timeout_s={ep.timeout_s:g} s"
                            info = ErrorInfo("timeout", None, True)
                            raise RetryableCallError(info, None, detail, attempts, ep.backoff_base_s) from None
                        except ReplyTooLarge as big:
                            self.ledger.record_error(stage, model, "reply_too_large")
                            detail = f"reply body over max_reply_bytes={ep.max_reply_bytes} ({big.size} bytes read)"
                            info = ErrorInfo("reply_too_large", big.status, True)
                            raise RetryableCallError(info, None, detail, attempts, ep.backoff_base_s) from None
                        latency = time.perf_counter() - started
                        body = self._store(stage, ep, model, key, spec, delivery, latency, attempts)
                    limits.concurrency.on_success()
                    # Let the call waiting for this slot send its request before this one is parsed and
                    # validated: when many replies land at once, requests go out first and the CPU work
                    # of the finished calls overlaps the next round trip instead of delaying it.
                    await asyncio.sleep(0)
        except RetryableCallError as err:
            kind = err.info.kind.removeprefix("http_")
            self.cache.put_error(
                key, spec, "exhausted_retries", f"{err.info.kind}: {err.detail}", status=err.info.status
            )
            self.ledger.record_error(stage, model, "exhausted_retries")
            raise _CallFailed(f"exhausted_retries: {kind}") from None
        usage = reliable_usage(body.get("usage"))
        limits.settle_tokens(estimated_tokens, (usage or {}).get("total_tokens"))
        local = (prompt_tokens, _reply_tokens(body))
        self.ledger.record_call(stage, model, usage=usage, latency_s=latency, cached=False, local_tokens=local)
        return _Fetched(body, cached=False)

    def _store(
        self,
        stage: str,
        ep: EndpointConfig,
        model: str,
        key: str,
        spec: dict[str, Any],
        delivery: Delivery,
        latency: float,
        attempts: int,
    ) -> dict[str, Any]:
        """Decode the HTTP body, check its envelope, and append it to the cache before anyone parses its
        content. A body that is not a well-formed reply (or is an error object sent with HTTP 200) is a
        retryable failure and never reaches the cache."""
        try:
            body = _checked_body(spec, delivery.content)
        except EnvelopeError as err:
            self.ledger.record_error(stage, model, err.kind)
            info = ErrorInfo(err.kind, delivery.status, True)
            raise RetryableCallError(info, None, self._scrub(err.detail, ep), attempts, ep.backoff_base_s) from None
        usage = reliable_usage(body.get("usage"))
        choices = body.get("choices")
        finish = choices[0].get("finish_reason") if choices else None
        served = body.get("model")
        self.cache.put(
            key,
            spec,
            body,
            served_model=served if isinstance(served, str) else None,
            usage=usage,
            finish_reason=finish,
            latency_s=round(latency, 6),
            http_attempts=attempts,
            request_id=delivery.request_id,
        )
        return body

    def accept_reply(
        self, call: PendingCall, content: bytes, *, mode: str, request_id: str | None = None
    ) -> str | None:
        """File one reply that came from a batch output file (``mode`` ``batch`` or ``offline``): see
        :func:`file_reply`. A reply filed here is charged to the ledger, at ``mode``'s price, when its stage
        replays it."""
        refused = file_reply(self.cache, call, content, mode=mode, request_id=request_id)
        if refused is not None:
            self.ledger.record_error(call.stage, call.model, refused.split(":", 1)[0])
        else:
            self._bought[call.key] = mode
        return refused

    def _failure(
        self,
        stage: str,
        ep: EndpointConfig,
        model: str,
        key: str,
        spec: dict[str, Any],
        exc: openai.APIError,
        epoch: int,
        attempt: int,
    ) -> Exception:
        """Turn one failed HTTP attempt into: a retry, a returned per-request failure, or a raised LLMError."""
        info = classify(exc)
        self.ledger.record_error(stage, model, info.kind)
        response = getattr(exc, "response", None)
        if info.status in (401, 403):  # servers echo (masked) key fragments in these: keep none of it
            detail = f"authentication failed (HTTP {info.status})"
        elif info.kind == "connection_refused":
            from wikipersona_data.llm.preflight import safe_url

            detail = f"connection refused {safe_url(ep.base_url)}"
        else:
            detail = self._scrub(_server_message(exc), ep)
        if info.status == 429:
            self._limits_for(ep).concurrency.on_rate_limited(epoch)
        if info.retryable:
            wait = retry_after_seconds(response.headers if response is not None else None)
            return RetryableCallError(info, wait, detail, attempt, ep.backoff_base_s)
        self.cache.put_error(key, spec, info.kind, detail, status=info.status)
        where = f"endpoint {ep.name!r}"
        if info.status == 401:
            state = "is set" if os.environ.get(ep.api_key_env) else "is not set, a dummy key was sent"
            return LLMError(
                f"{where} rejected the API key (HTTP 401): check the key in the environment variable "
                f"{ep.api_key_env} ({state})"
            )
        if info.status == 403:
            return LLMError(
                f"{where} denied access to model {model!r} (HTTP 403): check {ep.api_key_env}'s permissions"
            )
        if info.status == 404:
            return LLMError(f"{where} has no model {model!r} or no such path (HTTP 404): {detail}")
        if info.status in (400, 422):
            return _CallFailed(f"{info.kind}: {detail}")
        return LLMError(f"{where} failed for stage {stage} (model {model}): {info.kind}: {detail}")

    # ------------------------------------------------------------------ budget
    async def _reserve(self, stage: str, model: str, prompt_tokens: int, max_out: int) -> float:
        """Project the spend of one more paid call; refuse (after draining in-flight calls) past ``max_usd``."""
        if self.max_usd is None:
            return 0.0
        price = self.ledger.prices.get(model)
        if price is None:
            raise ConfigError(f"max_usd is set but the price table has no price for model {model!r}")
        estimate = price.cost(prompt_tokens, max_out)
        if self._refused is None and self.ledger.spent_usd + self._reserved_usd + estimate > self.max_usd:
            self._refused = f"a call of stage {stage} (model {model}, estimated ${estimate:.6f})"
        if self._refused is not None:
            await self._drained()
            raise BudgetExceeded(
                f"spending cap ${self.max_usd:.4f} reached: ${self.ledger.spent_usd:.6f} spent; refused "
                f"{self._refused} and every uncached call after it (completed calls are cached; raise --max-usd "
                "to continue)"
            )
        self._reserved_usd += estimate
        self._paid_in_flight += 1
        if self._idle is None:
            self._idle = asyncio.Event()
        self._idle.clear()
        return estimate

    def _unreserve(self, estimate: float) -> None:
        if self.max_usd is None:
            return
        self._reserved_usd -= estimate
        self._paid_in_flight -= 1
        if self._paid_in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def _drained(self) -> None:
        if self._paid_in_flight and self._idle is not None:
            await self._idle.wait()


def file_reply(
    cache: CallCache, call: PendingCall, content: bytes, *, mode: str, request_id: str | None = None
) -> str | None:
    """Check one reply from a batch result file as an online reply is checked (bounded decoding, the
    chat/embeddings envelope, no error object, echoed secrets replaced), then cache it with its price
    ``mode``. Returns None when cached, else the one-line reason it was refused: a refused reply is never
    cached as a success (its failure goes to ``errors.jsonl``) and the request counts as failed."""
    try:
        body = _checked_body(call.spec, content)
    except EnvelopeError as err:
        detail = f"{err.kind}: {redact.scrub(' '.join(err.detail.split()), aggressive=True)[:300]}"
        cache.put_error(call.key, call.spec, err.kind, detail)
        return detail
    usage = reliable_usage(body.get("usage"))
    choices = body.get("choices")
    served = body.get("model")
    cache.put(
        call.key,
        call.spec,
        body,
        served_model=served if isinstance(served, str) else None,
        usage=usage,
        finish_reason=choices[0].get("finish_reason") if choices else None,
        latency_s=None,
        http_attempts=1,
        request_id=request_id,
        mode=mode,
    )
    return None


def _checked_body(spec: dict[str, Any], content: bytes) -> dict[str, Any]:
    """A reply body decoded (bounded), shape-checked for its API and with echoed secrets replaced; or
    :class:`EnvelopeError`. The one check of every reply, online or from a batch file."""
    body = decode_body(content)
    _check_body(spec, body)
    return _without_secrets(body, content)


def _without_secrets(body: dict[str, Any], content: bytes) -> dict[str, Any]:
    """The reply with every secret the endpoint echoed replaced by a marker, before it is cached or parsed.

    The raw text is tested first (one pass, no walk) unless it has JSON escapes, which could spell a
    key so that the text test misses it."""
    redactor = redact.active()
    text = content.decode("utf-8", "replace")
    if "\\u" not in text and not redactor.needs_scrub(text):
        return body
    return redactor.scrub_value(body)


def _reply_tokens(body: dict[str, Any]) -> int:
    """Locally counted output tokens of a checked reply (chars / 4 of the text; 0 for embeddings)."""
    choices = body.get("choices")
    if not choices:
        return 0
    content = choices[0]["message"].get("content")
    return estimate_tokens(content) if isinstance(content, str) else 0


RESAMPLE_TEMPERATURE = 0.7
"""Temperature of a re-ask or regeneration whose stage asks for greedy decoding (0 or unset)."""


def resample_temperature(temperature: float | None) -> float:
    """The temperature a *new sample* of a call needs: the stage's own, or ``RESAMPLE_TEMPERATURE`` when
    that is 0 (at temperature 0 a server decodes greedily and a new seed changes nothing)."""
    return float(temperature) if temperature else RESAMPLE_TEMPERATURE


def _reask_params(
    first: dict[str, Any], last: dict[str, Any], attempt: int, failure: str, context: int | None, prompt: int
) -> dict[str, Any]:
    """Sampling params of re-ask ``attempt``: a new seed (an identical request gets an identical answer
    from a deterministic server), a temperature above 0 (greedy decoding ignores the seed: llama.cpp gave
    byte-identical re-asks at temperature 0), and after a ``length`` cut a larger ``max_tokens``, bounded
    by the context left after the prompt, and a frequency penalty (:data:`LENGTH_FREQUENCY_PENALTY`)."""
    out = dict(last)
    out["seed"] = int(first.get("seed") or 0) + SEED_STRIDE * attempt
    out["temperature"] = resample_temperature(first.get("temperature"))
    if failure == "length" and last.get("max_tokens"):
        grown = int(last["max_tokens"] * LENGTH_GROWTH)
        if context is not None:
            grown = min(grown, context - prompt - CONTEXT_MARGIN_TOKENS)
        out["max_tokens"] = max(int(last["max_tokens"]), grown)
    if failure == "length":
        out["frequency_penalty"] = max(float(last.get("frequency_penalty") or 0.0), LENGTH_FREQUENCY_PENALTY)
    return out


def alternating(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as sent: consecutive text messages of one role joined into one, blank-line separated.

    A template may split its user part in two (the shared card or article first, the per-call question last:
    docs/llm.md, "Prompt caching"), but the chat templates of many open models (Gemma, Mistral, Llama 2, as
    served by vLLM, llama.cpp or Ollama) refuse two user messages in a row ("roles must alternate"). Joining
    keeps the shared text leading, which is all a prefix cache needs. Done for the profiles that serve open
    models (``Profile.alternates_roles``); OpenAI and the simulator take the messages as they are. The cache key
    is computed on the template's messages, so it does not depend on this.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        last = out[-1] if out else None
        if (
            last is not None
            and last.get("role") == message.get("role")
            and set(last) == set(message) == {"role", "content"}
            and isinstance(last["content"], str)
            and isinstance(message["content"], str)
        ):
            out[-1] = {"role": last["role"], "content": f"{last['content']}\n\n{message['content']}"}
        else:
            out.append(message)
    return out


def _with_instruction(messages: list[dict[str, Any]], instruction: str) -> list[dict[str, Any]]:
    """Append the schema instruction to the first system message (or add one)."""
    for index, message in enumerate(messages):
        if message.get("role") == "system" and isinstance(message.get("content"), str):
            out = list(messages)
            out[index] = {**message, "content": f"{message['content']}\n\n{instruction}"}
            return out
    return [{"role": "system", "content": instruction}, *messages]


def _server_message(exc: openai.APIError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        message = inner.get("message")
        if isinstance(message, str) and message:
            return message
    if isinstance(exc, openai.APITimeoutError):
        return "request timed out"
    if isinstance(exc, openai.APIConnectionError):
        return "connection failed or was closed"
    return str(exc.message if hasattr(exc, "message") else exc)
