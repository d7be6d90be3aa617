"""Secrets out of everything we write: the one place that knows what a credential looks like.

An endpoint can echo what it was sent (the bearer key, or a masked form of it such as
``sk-S3CAN****cdef`` in a 401 body) into its answers and error messages; a recipe author can paste
``https://user:password@host`` into a URL. None of it may reach a cache record, ``errors.jsonl``, a
journal, a reject, an error line or a dataset row. Three things count as a secret:

* the value of an API-key variable: every endpoint's ``api_key_env`` (the client registers them) and a
  fixed list of well-known token variables (``HF_TOKEN``, ``OPENAI_API_KEY``, ...), read from the
  environment when scrubbing, so the value never needs to be stored anywhere; values shorter than
  8 characters (``EMPTY``, ``dummy``: the placeholders local servers take) are not secrets, and
  scrubbing them would wreck ordinary text;
* a fragment of such a value: 11 or more consecutive characters of it (checked as 8-character pieces
  at every 4th position, plus its first and last 8), or a masked form whose visible head or tail
  (3+ characters) is the value's start or end (``sk-S3CAN****cdef``);
* anything key-shaped whatever its origin: ``sk-...``, ``hf_...``, GitHub/Slack/AWS/Google token
  shapes, ``Bearer <token>``, masked forms of those prefixes, and URL userinfo (``user:pass@``).

What is found is replaced by :data:`MARKER`; the stage filters then drop any row carrying a secret or
the marker (``verify/safety.py``), and ``wikipersona verify`` scans every string cell for them.

Not defended: a secret the endpoint transforms (base64, reversed, spelled out letter by letter), and a
key variable that is neither an endpoint's ``api_key_env`` nor in :data:`WELL_KNOWN_KEY_VARIABLES`.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

MARKER = "[secret-removed]"
MIN_SECRET_LEN = 8
FRAGMENT_LEN = 8
FRAGMENT_STRIDE = 4
MIN_MASKED_PART = 3

WELL_KNOWN_KEY_VARIABLES: tuple[str, ...] = (
    "OPENAI_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "MISTRAL_API_KEY",
    "TOGETHER_API_KEY",
    "GROQ_API_KEY",
    "OPENROUTER_API_KEY",
    "DEEPSEEK_API_KEY",
    "FIREWORKS_API_KEY",
)
"""Variables whose values are treated as secrets even when no endpoint names them."""

NOT_SECRETS = frozenset({"sk-no-key-required", "sk-read-from-env-per-request"})
"""The client's own placeholders (sent to key-less local servers, or held by the SDK object)."""

KEY_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI-style (sk-, sk-proj-, sk-ant-)
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),  # Hugging Face tokens
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"),  # Google API keys
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack
    # a bearer token: 12+ characters with a digit, or 20+ (so "Bearer instruments" in prose is not one)
    re.compile(r"\b[Bb]earer\s+(?:(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{12,}|[A-Za-z0-9._~+/=-]{20,})"),
    # masked forms of the shapes above: sk-S3CAN****cdef, hf_****abcd, sk-...cdef
    re.compile(
        r"\b(?:sk-|hf_|gh[pousr]_|github_pat_|AKIA|AIza|xox[abprs]-)[A-Za-z0-9_-]*(?:[*•]{2,}|\.{3}|…)[A-Za-z0-9_-]*"
    ),
)
_USERINFO = re.compile(r"(?<=://)[^\s/@:]+:[^\s/@]*@")
_TOKEN_CHARS = r"[A-Za-z0-9._~+/=-]"
_MASKED_TOKEN = re.compile(rf"{_TOKEN_CHARS}*?(?:[*•]{{3,}}|\.{{3}}|…){_TOKEN_CHARS}*")
_MASK_RUN = re.compile(r"[*•]{3,}|\.{3}|…")
_FRAGMENT_TOKEN = re.compile(r"[A-Za-z0-9._~+/=*•…-]+")  # a fragment takes its whole token, masks included
_STAR_MASKED = re.compile(rf"{_TOKEN_CHARS}*[*•]{{3,}}{_TOKEN_CHARS}*")
# cheap pre-check (substring tests, ~5x faster than one regex): text without any of these cannot hold a
# key shape, URL userinfo or a mask
_MAYBE = ("sk-", "hf_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "AKIA", "AIza", "xox", "earer")
_MAYBE += ("://", "**", "••", "...", "…")


def _maybe(text: str) -> bool:
    return any(token in text for token in _MAYBE)


class Redactor:
    """Finds and removes secrets (see the module docstring) in text and in JSON-like values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s.strip() for s in secrets if s and len(s.strip()) >= MIN_SECRET_LEN}
        self.secrets: tuple[str, ...] = tuple(sorted(values - NOT_SECRETS, key=lambda s: (-len(s), s)))
        # 8-character fragments at every 4th position: any 11+ characters of a value contain one, and so
        # does a masked form's 8-character head (4x fewer substring tests than every position)
        fragments = {
            s[i : i + FRAGMENT_LEN]
            for s in self.secrets
            for i in [*range(0, len(s) - FRAGMENT_LEN + 1, FRAGMENT_STRIDE), len(s) - FRAGMENT_LEN]
        }
        self._fragments = tuple(sorted(fragments))

    def __repr__(self) -> str:  # never the values
        return f"Redactor({len(self.secrets)} secret value(s))"

    # ------------------------------------------------------------------ finding
    def find(self, text: str) -> str | None:
        """What kind of secret ``text`` carries (never the secret itself), or None."""
        if MARKER in text:
            return "a secret removed earlier"
        for fragment in self._fragments:
            if fragment in text:
                return "the value (or part) of an API-key variable"
        if not _maybe(text):
            return None
        for pattern in KEY_PATTERNS:
            match = pattern.search(text)
            if match:
                return f"a key-shaped string ({match.group(0)[:3]}…)"
        if _USERINFO.search(text):
            return "credentials in a URL"
        if self.secrets and any(self._secret_masked(m.group(0)) for m in _MASKED_TOKEN.finditer(text)):
            return "a masked form of an API key"
        return None

    def _secret_masked(self, token: str) -> bool:
        """``token`` (with a mask run) shows 3+ characters of the start or the end of a known secret."""
        parts = _MASK_RUN.split(token)
        head = parts[0] if len(parts[0]) >= MIN_MASKED_PART else None
        tail = parts[-1] if len(parts) > 1 and len(parts[-1]) >= MIN_MASKED_PART else None
        return any((head and s.startswith(head)) or (tail and s.endswith(tail)) for s in self.secrets)

    # ------------------------------------------------------------------ removing
    def scrub(self, text: str, *, aggressive: bool = False) -> str:
        """``text`` with every secret replaced by :data:`MARKER`.

        ``aggressive`` (error messages, never data) also removes every masked token (``abc****xyz``)
        whether or not it matches a known value: an error line loses nothing useful with it.
        """
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MARKER)
        if any(fragment in text for fragment in self._fragments):
            text = _FRAGMENT_TOKEN.sub(lambda m: self._fragment_token(m.group(0)), text)
        if not _maybe(text):
            return text
        for pattern in KEY_PATTERNS:
            text = pattern.sub(MARKER, text)
        text = _USERINFO.sub(MARKER + "@", text)
        if aggressive:
            text = _STAR_MASKED.sub(lambda m: MARKER if m.group(0).strip("*•") else m.group(0), text)
        elif self.secrets:
            text = _MASKED_TOKEN.sub(lambda m: MARKER if self._secret_masked(m.group(0)) else m.group(0), text)
        return text

    def _fragment_token(self, token: str) -> str:
        return MARKER if any(fragment in token for fragment in self._fragments) else token

    def scrub_value(self, value: Any, *, aggressive: bool = False) -> Any:
        """A JSON-like value (a copy) with every string, keys included, scrubbed."""
        if isinstance(value, str):
            return self.scrub(value, aggressive=aggressive)
        if isinstance(value, dict):
            return {
                self.scrub_value(k, aggressive=aggressive): self.scrub_value(v, aggressive=aggressive)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.scrub_value(v, aggressive=aggressive) for v in value]
        return value

    def needs_scrub(self, text: str) -> bool:
        """True when ``text`` may hold a secret (a fast test for a whole serialized record)."""
        return self.find(text) is not None


_registered: set[str] = set(WELL_KNOWN_KEY_VARIABLES)
_active: tuple[tuple[str, ...], Redactor] | None = None


def register_key_variable(name: str) -> None:
    """Treat the value of environment variable ``name`` as a secret from now on (an endpoint's key)."""
    _registered.add(name)


def _env_values() -> tuple[str, ...]:
    names = sorted(_registered)
    data = getattr(os.environ, "_data", None)  # POSIX: the raw bytes dict, ~10x faster than environ.get
    if isinstance(data, dict) and os.name == "posix":
        raw = [data.get(os.fsencode(n)) for n in names]
        return tuple(os.fsdecode(v) if v is not None else "" for v in raw)
    return tuple(os.environ.get(n, "") for n in names)


def active() -> Redactor:
    """The redactor for the current environment (rebuilt when a registered variable's value changes)."""
    global _active
    values = _env_values()
    if _active is None or _active[0] != values:
        _active = (values, Redactor(values))
    return _active[1]


def scrub(text: str, *, aggressive: bool = False) -> str:
    """:meth:`Redactor.scrub` with the current environment's secrets."""
    return active().scrub(text, aggressive=aggressive)


def safe_url(url: str) -> str:
    """``url`` without its userinfo (``user:password@``), for messages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return _USERINFO.sub(MARKER + "@", url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit((parts.scheme, f"{MARKER}@{host}", parts.path, parts.query, parts.fragment))
