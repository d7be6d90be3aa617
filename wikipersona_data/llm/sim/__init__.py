"""A deterministic OpenAI-compatible server on loopback, for tests and the demo.

It speaks the real protocol over real HTTP (chat completions with structured outputs, embeddings,
models), with injectable latency and faults, so the client is exercised exactly as against a
production endpoint, yet every reply is a function of (seed, request body, how often that body was seen).

Decisions clients can rely on:

* JSON is requested either with ``response_format={"type": "json_schema", ...}`` (the reply is bare JSON,
  valid for the schema unless ``enforce_schema=False``) or, for endpoints without it, with a system-message
  line ``Respond with JSON for schema "<name>"``, optionally followed by the schema as JSON; such replies are
  wrapped per ``json_style`` (plain / fenced / preamble), as is ``json_object`` mode.
* Tokens are words plus punctuation marks; ``max_tokens``/``max_completion_tokens`` cut at exactly that many
  and set ``finish_reason="length"``. The leading prompt tokens already seen for the same model are reported in
  ``usage.prompt_tokens_details.cached_tokens``: whole ``cache_block_tokens`` blocks, from ``cache_min_tokens``
  (OpenAI's rule by default; ``prefix_cache.py``).
* Faults: ``drop`` aborts the connection; ``slow`` stalls ``slow_s`` seconds, then answers; ``malformed`` cuts
  the JSON content of a JSON request, or the HTTP body itself otherwise (openai raises ``json.JSONDecodeError``
  then, not an ``APIError``); ``length`` halves the content; ``refusal`` sets ``message.refusal``. Embeddings
  only get the transport-level faults; scripted ``length``/``refusal`` are served as ``ok`` there.
* ``stats()`` keys: requests, by_status (int keys; strings over ``GET /sim/stats``), by_outcome, peak_concurrency,
  in_flight, by_schema, by_model, requests_by_route (route patterns), responder_fallbacks, responder_errors,
  schema_violations, fill_invalid, script_left. ``reset_stats`` keeps the fault history (retries stay reproducible).
* A responder that raises gives a 500 naming it; one that returns JSON invalid for the schema is replaced by
  ``schema_fill`` output and counted in ``responder_fallbacks``. A responder registered for the name ``"text"``
  (returning a ``str``) writes plain, non-JSON replies.

Not supported: streaming (``stream=true`` gets a 400 "streaming not supported by the simulator"),
tools/function calling, logprobs, the Batch and Files APIs.
"""

from wikipersona_data.llm.sim.config import FAULT_KINDS, SimConfig
from wikipersona_data.llm.sim.responders import (
    ResponderRequest,
    load_stage_responders,
    register_responder,
    unregister_responder,
)
from wikipersona_data.llm.sim.server import SimServer

# The stage responders register first, so a registration made later (a test's override) always wins
# until it is unregistered, whatever order servers are started in.
load_stage_responders()

__all__ = ["FAULT_KINDS", "ResponderRequest", "SimConfig", "SimServer", "register_responder", "unregister_responder"]
