"""A deterministic OpenAI-compatible server on loopback, for tests and the demo.

It speaks the real protocol over real HTTP (chat completions with structured outputs, embeddings,
models), with injectable latency and faults, so the client is exercised exactly as against a
production endpoint, yet every reply is a function of (seed, request body).

Not supported: streaming (``stream=true`` gets a 400 "streaming not supported by the simulator"),
tools/function calling, logprobs, the Batch and Files APIs.
"""

from wikipersona_data.llm.sim.config import FAULT_KINDS, SimConfig
from wikipersona_data.llm.sim.responders import ResponderRequest, register_responder, unregister_responder
from wikipersona_data.llm.sim.server import SimServer

__all__ = ["FAULT_KINDS", "ResponderRequest", "SimConfig", "SimServer", "register_responder", "unregister_responder"]
