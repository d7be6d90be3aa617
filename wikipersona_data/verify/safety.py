"""Text-safety filter (every stage that makes text): no row may carry a secret.

An endpoint that echoes the bearer key (or a masked form of it) into its answers would otherwise put
it into released cells. The client already replaces what it recognises with a marker before a reply
is cached (``wikipersona_data/redact.py``); this filter drops, with the reason ``carries_secret``, any
row with a string field (nested ones too) that holds a secret, a key-shaped string or that marker, so
no such row reaches a later stage or the release. The detail names the field, never the value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from wikipersona_data import redact
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
    """Drops a row whose any text field carries a secret (see the module docstring)."""

    name = "text_safety"
    reasons = ("carries_secret",)

    def check(self, row: Any, context: dict[str, Any]) -> FilterResult:
        redactor = redact.active()
        for where, text in row_strings(row):
            if redactor.find(text) is not None:
                return self.drop("carries_secret", f"{where}: holds a secret or key-shaped string (not shown)")
        return FilterResult.keep()
