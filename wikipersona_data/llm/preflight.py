"""Before stage 1: is every endpoint there, does it take our key, serve our models and embeddings?

A build against a wrong URL used to run for 20 s of retries and then write an empty release. The preflight
asks each endpoint, in seconds, what the stages will need, and stops with ONE line naming what is wrong:

* ``GET /models`` answers (else: ``connection refused <url>``, never with userinfo, or a timeout);
* the key is accepted (HTTP 401/403: names the environment variable to fix);
* every stage model is listed (else: the models the server does serve); llama.cpp serves one model
  whatever the name, so there the name is not checked;
* one tiny chat call (``max_tokens=1``) per stage model, one embeddings call if embeddings are used
  (a chat-only llama.cpp server answers 501: "embeddings not served").

The calls are not cached; their cost goes to a ``preflight`` line of the ledger. llama.cpp's context size
(``/props``) is read here too, so stages can trim prompts to :meth:`LLMClient.context_budget`.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from collections.abc import Iterable
from typing import Any

import httpx2
import openai

from wikipersona_data.errors import LLMError
from wikipersona_data.llm.client import LLMClient
from wikipersona_data.llm.config import EndpointConfig, normalise_base_url
from wikipersona_data.llm.envelope import EnvelopeError, decode_body, reliable_usage
from wikipersona_data.llm.retry import classify
from wikipersona_data.llm.reward import request_body as reward_request
from wikipersona_data.llm.transport import ReplyTooLarge, read_capped

PREFLIGHT_TIMEOUT_S = 30.0  # one tiny call; a cold local CPU server may need a few seconds for it
STAGE = "preflight"
PREFLIGHT_TRIES = 3


def safe_url(url: str) -> str:
    """``url`` without userinfo (a ``user:password@`` is never printed)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def preflight(client: LLMClient, uses: Iterable[tuple[str, str, str]]) -> None:
    """Check every endpoint for its ``(endpoint, model, api)`` uses (api: ``chat``, ``embed`` or
    ``reward:<route>``).

    Raises :class:`LLMError` (one line) on the first problem found.
    """
    by_endpoint: dict[str, list[tuple[str, str]]] = {}
    for endpoint, model, api in uses:
        pair = (model, api)
        if pair not in by_endpoint.setdefault(endpoint, []):
            by_endpoint[endpoint].append(pair)
    for endpoint, wanted in sorted(by_endpoint.items()):
        await _check_endpoint(client, client.endpoints[endpoint], wanted)


async def _check_endpoint(client: LLMClient, ep: EndpointConfig, wanted: list[tuple[str, str]]) -> None:
    listing = await _request(client, ep, "GET", "/models", None, "list models")
    data = listing.get("data")
    served = sorted({str(m.get("id")) for m in data if isinstance(m, dict)}) if isinstance(data, list) else []
    if ep.profile != "llamacpp" and served:
        for model, _api in wanted:
            if model not in served:
                raise LLMError(
                    f"endpoint {ep.name!r} ({safe_url(ep.base_url)}) does not serve model {model!r}; "
                    f"it serves: {', '.join(served[:20])}"
                )
    if ep.profile == "llamacpp":
        await client.server_context(ep.name)
    for model, api in wanted:
        if api == "embed":
            body = await _request(
                client, ep, "POST", "/embeddings", {"model": model, "input": ["ping"]}, f"embeddings ({model})"
            )
        elif api.startswith("reward:"):  # /classify, /pooling, /rerank: routes of the server root, not under /v1
            route = api.removeprefix("reward:")
            url = normalise_base_url(ep.base_url).removesuffix("/v1") + f"/{route}"
            ping = [{"role": "user", "content": "Say OK."}, {"role": "assistant", "content": "OK."}]
            request = reward_request(model, ping, route)
            body = await _request(client, ep, "POST", url, request, f"a /{route} call ({model})")
        else:
            request = {"model": model, "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 1}
            if ep.profile == "openai":
                request["max_completion_tokens"] = request.pop("max_tokens")
            body = await _request(client, ep, "POST", "/chat/completions", request, f"a tiny chat call ({model})")
        served_model = body.get("model")
        if isinstance(served_model, str):
            client._saw(model, served_model)
        client.ledger.record_call(STAGE, model, usage=reliable_usage(body.get("usage")), latency_s=None, cached=False)


async def _request(
    client: LLMClient, ep: EndpointConfig, method: str, path: str, body: dict[str, Any] | None, what: str
) -> dict[str, Any]:
    """One preflight request; a transient failure (429, 5xx, dropped connection) is tried up to 3 times."""
    for attempt in range(PREFLIGHT_TRIES):
        try:
            return await _request_once(client, ep, method, path, body, what)
        except _Transient as err:
            if attempt + 1 == PREFLIGHT_TRIES:
                raise LLMError(str(err)) from None
            await asyncio.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


class _Transient(Exception):
    pass


async def _request_once(
    client: LLMClient, ep: EndpointConfig, method: str, path: str, body: dict[str, Any] | None, what: str
) -> dict[str, Any]:
    where = f"endpoint {ep.name!r} ({safe_url(ep.base_url)})"
    key = os.environ.get(ep.api_key_env, "").strip() or "sk-no-key-required"
    sdk = client._sdk_for(ep)
    # the header lets a server (our simulator) count these checks apart from the build's own calls
    options: Any = {"headers": {"Authorization": f"Bearer {key}", "X-Wikipersona-Preflight": "1"}}
    if body is not None:
        client.ledger.record_request(STAGE, str(body.get("model")))
    try:
        async with asyncio.timeout(min(PREFLIGHT_TIMEOUT_S, ep.timeout_s or PREFLIGHT_TIMEOUT_S)):
            if method == "GET":
                raw = await sdk.get(path, cast_to=httpx2.Response, options=options, stream=True)
            else:
                raw = await sdk.post(path, cast_to=httpx2.Response, body=body, options=options, stream=True)
            try:
                content = await read_capped(raw, 1 << 22)
            finally:
                await raw.aclose()
    except ReplyTooLarge:
        raise LLMError(f"{where}: the reply to {what} is over 4 MiB") from None
    except TimeoutError:
        raise LLMError(f"{where}: no answer to {what} within {PREFLIGHT_TIMEOUT_S:g} s") from None
    except openai.APIError as exc:
        info = classify(exc)
        if info.kind == "connection_refused":
            raise LLMError(f"{where}: connection refused {safe_url(ep.base_url)}") from None
        if info.status == 401:
            state = "is set" if os.environ.get(ep.api_key_env) else "is not set"
            raise LLMError(f"{where} rejected the API key (HTTP 401): check {ep.api_key_env} ({state})") from None
        if info.status == 403:
            raise LLMError(
                f"{where} denied access (HTTP 403) for {what}: check {ep.api_key_env}'s permissions"
            ) from None
        if path == "/embeddings" and info.status in (404, 405, 501):
            raise LLMError(
                f"{where} does not serve embeddings (HTTP {info.status}): point the embed stage at an "
                "endpoint started with embeddings on"
            ) from None
        if info.status == 404 and body is not None:
            raise LLMError(f"{where} has no model {body.get('model')!r} (HTTP 404) for {what}") from None
        if info.status == 404:
            return {}  # a server without /models: the tiny calls still check the models
        if info.retryable:
            raise _Transient(f"{where}: {what} failed ({info.kind})") from None
        raise LLMError(f"{where}: {what} failed ({info.kind})") from None
    try:
        return decode_body(content)
    except EnvelopeError as err:
        raise _Transient(f"{where}: {what} gave an unusable reply ({err.kind})") from None
