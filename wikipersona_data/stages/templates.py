"""Prompt templates: files in ``templates/``, rendered with jinja2, hashed for provenance.

Prompts live in files (not in code) so a reviewer can read them as prose and so the manifest can
record exactly which text produced the data: the sha256 of each template file goes into every row's
provenance and into the release manifest. A template has a ``<<<system>>>`` part and one or more
``<<<user>>>`` parts; each becomes a chat message, in order.

Prompt caching (docs/llm.md, "Prompt caching"): providers and vLLM reuse the work for a prompt's leading
tokens when an earlier request began the same way. So a template puts what many calls share first (the
system text, then the persona card or the article's sentences, each in a user message of its own) and the
per-call part (the question, the candidate answers, the batch number) in its last message; the stages issue
calls grouped by that shared part. ``tests/test_prompt_prefixes.py`` checks the order on rendered prompts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


@dataclass(frozen=True)
class Template:
    name: str
    text: str
    sha256: str

    def render(self, **values: Any) -> list[dict[str, str]]:
        """Chat messages (system, then one user message per ``<<<user>>>`` part) filled with ``values``."""
        rendered = _compiled(self.text).render(**values)
        system, *users = rendered.split("<<<user>>>")
        system = system.replace("<<<system>>>", "").strip()
        messages = [{"role": "system", "content": system}] if system else []
        parts = [part for part in (u.strip() for u in users) if part]  # a part may render empty (no card)
        messages += [{"role": "user", "content": part} for part in parts or [""]]
        return messages


@cache
def _compiled(text: str) -> jinja2.Template:
    """Compiling costs ~1 ms; a build renders thousands of prompts from a handful of templates."""
    return _ENV.from_string(text)


@cache
def load_template(name: str) -> Template:
    """The template ``templates/<name>.md``; cached because templates never change during a build."""
    path = TEMPLATE_DIR / f"{name}.md"
    raw = path.read_bytes()
    return Template(name=path.name, text=raw.decode("utf-8"), sha256=hashlib.sha256(raw).hexdigest())


def all_template_hashes() -> dict[str, str]:
    """File name -> sha256 of every template, for the manifest."""
    return {p.name: load_template(p.stem).sha256 for p in sorted(TEMPLATE_DIR.glob("*.md"))}
