"""Text helpers shared by the filters: normalisation, tokens, char n-gram shingles, content words,
and the names / numbers / dates a claim must not invent.

Everything is deterministic and dependency-free: the filters must give the same verdict on every
machine, and these are a few regexes, not a linguistic library's job. The stemmer is deliberately
light (plural and common verb endings): it only has to make "advocates"/"advocated"/"advocacy" meet
"advocate", and an over-eager stemmer would make unrelated words meet, i.e. accept invented claims.
"""

from __future__ import annotations

import re
import unicodedata

STOP_WORDS = frozenset(
    """a about above after again against all also although am among an and another any are as at be because been
    before being below between both but by can could did do does doing down during each either even ever every few
    for from further had has have having he her here hers herself him himself his how however i if in into is it its
    itself just like likely many may me might more most much must my myself neither no nor not now of off often on
    once one only or other our ours ourselves out over own per perhaps quite rather same she should since so some
    such than that the their theirs them themselves then there these they this those though through thus to too
    under until up upon us very was we were what when where whether which while who whom whose why will with within
    without would yet you your yours yourself yourselves said says say known according well including part later
    became become becomes""".split()  # noqa: SIM905
)
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
NUMBER_WORDS = {
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "twenty": "20",
    "hundred": "100",
    "thousand": "1000",
}

_TOKEN = re.compile(r"[\w][\w'’-]*", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|[\"“(]\s*)$")


def normalise(text: str) -> str:
    """NFKC, lower case, punctuation to spaces, single spaces: the form duplicates are compared in."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text))


def stem(word: str) -> str:
    """A light suffix stripper (see the module docstring for why it is light)."""
    w = word.lower().replace("’", "'").removesuffix("'s")
    for suffix, repl, min_len in (
        ("ies", "y", 4),
        ("sses", "ss", 4),
        ("ness", "", 5),
        ("ments", "", 5),
        ("ment", "", 5),
        ("ings", "", 5),
        ("ing", "", 5),
        ("ied", "y", 4),
        ("ed", "", 5),
        ("acy", "ate", 5),
        ("es", "", 5),
        ("s", "", 4),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) + len(repl) >= min_len - 1:
            w = w[: len(w) - len(suffix)] + repl
            break
    return w.rstrip("e") if len(w) > 4 else w


def content_words(text: str) -> set[str]:
    """Stemmed lower-case words of 3+ letters that are not stop words (and not bare numbers)."""
    out = set()
    for tok in tokens(text):
        low = tok.lower()
        if len(low) < 3 or low in STOP_WORDS or low.isdigit():
            continue
        out.add(stem(low))
    return out


def overlap(claim: set[str], evidence: set[str]) -> float:
    """Share of ``claim`` found in ``evidence`` (1.0 for an empty claim: nothing to contradict)."""
    return len(claim & evidence) / len(claim) if claim else 1.0


def numbers(text: str) -> set[str]:
    """Numbers as written (thousands separators removed), plus spelled-out small numbers."""
    found = {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}
    found |= {NUMBER_WORDS[t.lower()] for t in tokens(text) if t.lower() in NUMBER_WORDS}
    return found


def months(text: str) -> set[str]:
    return {t.lower() for t in tokens(text) if t.lower() in MONTHS and t[:1].isupper()}


def names(text: str) -> set[str]:
    """Capitalised words that are not sentence-initial and not stop words or months: proper names.

    Sentence-initial words are skipped because capitalisation there says nothing. Hyphenated names
    ("Nigerian-British") count as one name.
    """
    out = set()
    for match in _TOKEN.finditer(unicodedata.normalize("NFKC", text)):
        tok = match.group(0)
        if not tok[:1].isupper() or tok.lower() in STOP_WORDS or tok.lower() in MONTHS:
            continue
        if _SENTENCE_START.search(text[: match.start()]):
            continue
        out.add(tok.removesuffix("'s").removesuffix("’s"))
    return out


def shingles(text: str, n: int) -> set[str]:
    """Character n-grams of the normalised text (the whole text if shorter than n)."""
    norm = normalise(text)
    if len(norm) <= n:
        return {norm} if norm else set()
    return {norm[i : i + n] for i in range(len(norm) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def word_pattern(phrase: str) -> re.Pattern[str]:
    """Case-insensitive whole-word match of a phrase, tolerant of spacing and hyphen variants."""
    parts = [re.escape(p) for p in re.split(r"[\s-]+", phrase.strip()) if p]
    return re.compile(r"(?<![\w])" + r"[\s-]+".join(parts) + r"(?![\w])", re.IGNORECASE)
