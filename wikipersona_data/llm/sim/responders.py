"""The responder registry: who writes the JSON for a given structured-output schema name.

Stage code teaches the simulator plausible answers (``stage_responders.py``) without touching the
server; names without a responder get valid random JSON from ``schema_fill``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wikipersona_data.llm.sim.textgen import message_text, user_text

SCHEMA_MARKER = re.compile(r'^\s*Respond with JSON for schema "([^"]+)"', re.MULTILINE)
"""The line a client puts in its system message when the endpoint has no ``response_format``."""


@dataclass
class ResponderRequest:
    """What a responder sees of one chat request (one choice of it when ``n`` > 1)."""

    model: str
    messages: list[dict[str, Any]]
    schema: dict[str, Any] | None
    schema_name: str | None
    rng: random.Random
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    choice_index: int = 0
    config: Any = None
    """The server's SimConfig, for responders with knobs of their own (e.g. ``position_bias_rate``)."""

    @property
    def user_text(self) -> str:
        """The user messages' text (blank-line separated), where the task is."""
        return user_text(self.messages)

    @property
    def system_text(self) -> str:
        return "\n".join(message_text(m) for m in self.messages if m.get("role") in ("system", "developer"))


Responder = Callable[[ResponderRequest], Any]

_REGISTRY: dict[str, Responder] = {}
_SHADOWED: dict[str, list[Responder]] = {}  # earlier registrations a later one replaced, newest last


def register_responder(schema_name: str) -> Callable[[Responder], Responder]:
    """Decorator: ``fn(req) -> dict`` answers chat requests for ``schema_name`` (a later registration wins)."""

    def decorate(fn: Responder) -> Responder:
        if schema_name in _REGISTRY:
            _SHADOWED.setdefault(schema_name, []).append(_REGISTRY[schema_name])
        _REGISTRY[schema_name] = fn
        return fn

    return decorate


def unregister_responder(schema_name: str) -> None:
    """Forget the latest responder for ``schema_name`` and bring back the one it replaced, if any, so a
    test that overrides a stage responder leaves the registry as it found it."""
    _REGISTRY.pop(schema_name, None)
    earlier = _SHADOWED.get(schema_name)
    if earlier:
        _REGISTRY[schema_name] = earlier.pop()


def get_responder(schema_name: str | None) -> Responder | None:
    return _REGISTRY.get(schema_name) if schema_name else None


def registered_names() -> list[str]:
    return sorted(_REGISTRY)


def find_schema_marker(messages: list[dict[str, Any]]) -> str | None:
    """The schema name from a ``Respond with JSON for schema "<name>"`` line of a system/developer message."""
    for message in messages:
        if message.get("role") in ("system", "developer"):
            match = SCHEMA_MARKER.search(message_text(message))
            if match:
                return match.group(1)
    return None


def load_stage_responders() -> None:
    """Register the stage responders (imported late: that module imports this one)."""
    import wikipersona_data.llm.sim.stage_responders  # noqa: F401
