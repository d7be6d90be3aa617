"""Text-safety filter, first in every stage that makes text: every string field of a row (nested too).

Three reasons, checked in this order over the whole row:

* ``carries_secret``: a secret, a key-shaped string or the redaction marker (an endpoint that echoes the
  bearer key into its answers would otherwise put it into released cells; the client already replaced
  what it recognised before caching, ``wikipersona_data/redact.py``). The detail names the field, never
  the value.
* ``unsafe_characters``: control characters, bidi overrides/isolates, invisible characters
  (``wikipersona_data/textsafety.py``). Dropped rather than cleaned: ids are content hashes of the text,
  and a silent rewrite would hide that the endpoint misbehaved.
* ``prompt_injection``: "ignore all previous instructions", chat-template markers and the like. Such a
  row would teach a preference model to follow injected orders; the rate per stage is in the manifest
  and the card.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from wikipersona_data import redact
from wikipersona_data.textsafety import first_unsafe, injection
from wikipersona_data.verify.base import Filter, FilterResult


def row_strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(field path, text) of every string in a row: model fields, lists and dicts, recursively."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from row_strings(getattr(value, name), f"{where}.{name}" if where else name)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from row_strings(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from row_strings(item, f"{where}[{i}]")


class TextSafetyFilter(Filter):
    """Drops a row with a secret, unsafe characters or prompt injection in any text field (module docstring)."""

    name = "text_safety"
    reasons = ("carries_secret", "unsafe_characters", "prompt_injection")

    def check(self, row: Any, context: dict[str, Any]) -> FilterResult:
        strings = list(row_strings(row))
        redactor = redact.active()
        for where, text in strings:
            if redactor.find(text) is not None:
                return self.drop("carries_secret", f"{where}: holds a secret or key-shaped string (not shown)")
        for where, text in strings:
            bad = first_unsafe(text)
            if bad is not None:
                return self.drop("unsafe_characters", f"{where}: {bad[1]} at character {bad[0]}")
        for where, text in strings:
            phrase = injection(text)
            if phrase is not None:
                return self.drop("prompt_injection", f"{where}: {phrase[:80]!r}")
        return FilterResult.keep()
