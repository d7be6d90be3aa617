"""Prompt templates: files in ``templates/``, rendered with jinja2, hashed for provenance.

Prompts live in files (not in code) so a reviewer can read them as prose and so the manifest can
record exactly which text produced the data: the sha256 of each template file goes into every row's
provenance and into the release manifest. A template has a ``<<<system>>>`` part and a ``<<<user>>>``
part; both become chat messages.
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
        """Chat messages (system, user) of the template filled with ``values``."""
        rendered = _compiled(self.text).render(**values)
        system, _, user = rendered.partition("<<<user>>>")
        system = system.replace("<<<system>>>", "").strip()
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": user.strip()})
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
