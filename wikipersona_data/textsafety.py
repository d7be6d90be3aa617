"""Text no row should carry, and text that hides what it says: shared by the stage filters and ``verify``.

* :func:`first_unsafe`: C0 control characters other than tab and newline (carriage return included),
  DEL and C1 controls, bidi embeddings/overrides/isolates (U+202A-U+202E, U+2066-U+2069: they reorder
  what a reader sees, "Trojan Source"), invisible characters (zero-width space U+200B, word joiner
  U+2060, BOM U+FEFF, Mongolian vowel separator U+180E, and the tag characters U+E0000-U+E007F used to
  smuggle hidden instructions). Zero-width joiner/non-joiner (U+200D/U+200C) are allowed only between
  two non-ASCII letters or symbols, where emoji sequences and Persian or Indic words need them; next to
  ASCII they only break up words (``Ada\\u200dLovelace``). Bidi *marks* (LRM/RLM) stay allowed: they
  are common in real names and reorder nothing by themselves.
* :func:`fold`: the form leak checks compare in: NFKC (fullwidth and mathematical letters become
  plain), invisible/format characters removed, then every character mapped to one representative of
  its confusable class (Unicode's UTS #39 confusables, from the ``confusable-homoglyphs`` package), so
  a Cyrillic "а" in a surname, or a zero-width space inside it, no longer hides the name. The classes
  come from the package's data: each character is joined with the characters the data lists as
  confusable with it (single characters only; "rn" vs "m" is not folded), and the class's
  representative is its ASCII letter if it has one (``I``, ``l``, ``1`` and ``|`` all fold to ``l``).
* :func:`injection`: phrases that try to steer a model reading the text ("ignore all previous
  instructions", "disregard the above", chat-template and system-prompt markers).
"""

from __future__ import annotations

import functools
import re
import unicodedata

_ALWAYS_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b\u2060\ufeff\u180e\U000e0000-\U000e007f]"
)
_JOINERS = re.compile("[\u200c\u200d]")


def first_unsafe(text: str) -> tuple[int, str] | None:
    """(position, 'U+XXXX NAME') of the first character no row should carry, or None."""
    match = _ALWAYS_UNSAFE.search(text)
    found = match.start() if match else None
    for joiner in _JOINERS.finditer(text):
        i = joiner.start()
        if found is not None and i > found:
            break
        before, after = text[i - 1 : i], text[i + 1 : i + 2]
        if not (before and after and _joinable(before) and _joinable(after)):
            found = i
            break
    if found is None:
        return None
    char = text[found]
    return found, f"U+{ord(char):04X} {unicodedata.name(char, 'control character')}"


def _joinable(char: str) -> bool:
    return not char.isascii() and not char.isspace() and unicodedata.category(char)[0] in "LMS"


@functools.cache
def _confusable_map() -> dict[int, str]:
    """Character -> representative of its confusable class (see the module docstring)."""
    from confusable_homoglyphs import confusables

    parent: dict[str, str] = {}

    def find(c: str) -> str:
        parent.setdefault(c, c)
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for char, homoglyphs in confusables.confusables_data.items():
        if len(char) != 1:
            continue
        for h in homoglyphs:
            other = h.get("c", "")
            if len(other) == 1:
                parent[find(char)] = find(other)
    classes: dict[str, list[str]] = {}
    for char in list(parent):
        classes.setdefault(find(char), []).append(char)
    table: dict[int, str] = {}
    for members in classes.values():
        rep = min(members, key=lambda c: (not c.isascii(), not c.isalpha(), not c.islower(), ord(c)))
        for c in members:
            if c != rep:
                table[ord(c)] = rep
    return table


def fold(text: str) -> str:
    """NFKC, invisible characters removed, confusables mapped to one representative (module docstring)."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf") if not text.isascii() else text
    return text.translate(_confusable_map())


INJECTION_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(?:ignore|disregard|forget|override)\s+(?:(?:all|any)\s+(?:of\s+)?)?(?:(?:the|your|my|these)\s+)?"
        r"(?:previous|prior|above|preceding|earlier|foregoing|former|original|system|initial)\s+(?:\w+\s+)?"
        r"(?:instructions?|prompts?|messages?|rules|directions|guidelines|context|commands?)\b",
        r"\b(?:ignore|disregard|forget)\s+(?:all\s+(?:of\s+)?)?your\s+(?:instructions|rules|guidelines|programming)\b",
        r"\b(?:ignore|disregard)\s+(?:all\s+(?:of\s+)?)?(?:the|everything)\s+(?:above|before)\b",
        r"\b(?:new|updated|real|actual) (?:system )?instructions?\s*:",
        r"\b(?:reveal|print|show|repeat|output) (?:your|the) (?:system|hidden|initial) (?:prompt|instructions?)\b",
        r"\byou are now (?:in )?(?:DAN|developer mode|jailbroken|unrestricted)\b",
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|>",
        r"\[/?INST\]|<<\s*/?SYS\s*>>|</?\s*system\s*>",
        r"(?:^|\n)\s*#{2,}\s*(?:system|instruction)s?\s*:",
        r"\b(?:BEGIN|END) (?:SYSTEM PROMPT|INSTRUCTIONS)\b",
    )
)


_TRIGGERS = (
    "ignore",
    "disregard",
    "forget",
    "override",
    "instruction",
    "prompt",
    "system",
    "you are now",
    "<|",
    "inst]",
    "<<",
)
"""Every pattern needs one of these (lower case): a cheap test before the regexes."""


def injection(text: str) -> str | None:
    """The first prompt-injection phrase in ``text``, or None; non-ASCII text is also tried case-folded then
    folded (casefold first: fold maps capital I to l, lower-case i stays), so look-alikes do not hide it."""
    for candidate in (text, fold(text.casefold())) if not text.isascii() else (text,):
        lower = candidate.lower()
        if not any(trigger in lower for trigger in _TRIGGERS):
            continue
        for pattern in INJECTION_PATTERNS:
            match = pattern.search(candidate)
            if match:
                return match.group(0)
    return None
