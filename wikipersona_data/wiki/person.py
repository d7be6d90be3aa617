"""Is this page about a person? Category and infobox signals (wikipedia.md section 6).

Two layers that must agree:

* :func:`looks_like_person` is the byte-level prefilter the scan runs on every page. It is a SUPERSET of the
  parser's decision: everything :func:`person_signals_from_categories` or :func:`is_person_infobox` can accept
  has a literal that the prefilter looks for (category words "births"/"deaths"/"living people"/"Year of birth"
  or any infobox-family template name from :data:`PERSON_INFOBOXES`, matched case-insensitively and with
  spaces/underscores interchangeable). It never parses.
* The parser (parse.py) decides ``is_person`` from categories (``Living people``, ``YYYY births/deaths``,
  ``Year of birth missing (living people)``, ...) OR a person infobox (not a band) found among the templates
  of the lead, including infoboxes embedded via ``| module = {{Infobox ... |embed=yes}}``.
"""

from __future__ import annotations

import re

# Names after the "infobox " prefix. Sources: the Template:Infobox person family and the redirects that point
# to it (actor, bio, celebrity, ...); occupation-specific person infoboxes.
_PERSON_INFOBOX_SUFFIXES = (
    "person",
    "person/wikidata",
    "actor",
    "actress",
    "adult biography",
    "architect",
    "artist",
    "astronaut",
    "athlete",
    "badminton player",
    "bandy biography",
    "baseball biography",
    "baseball player",
    "basketball biography",
    "basketball player",
    "bio",
    "biography",
    "bishop",
    "bodybuilder",
    "boxer",
    "boxer (amateur)",
    "businessperson",
    "business person",
    "cardinal",
    "celebrity",
    "chef",
    "chess biography",
    "chess player",
    "christian leader",
    "clergy",
    "college coach",
    "college football player",
    "comedian",
    "comics creator",
    "criminal",
    "cricketer",
    "cricketer biography",
    "curler",
    "cyclist",
    "dancer",
    "darts player",
    "economist",
    "engineer",
    "fashion designer",
    "figure skater",
    "football biography",
    "football biography 2",
    "football official",
    "footballer",
    "golfer",
    "gymnast",
    "handball biography",
    "hindu leader",
    "horseracing personality",
    "ice hockey biography",
    "ice hockey player",
    "journalist",
    "judge",
    "jurist",
    "lacrosse player",
    "martial artist",
    "medical person",
    "member of the knesset",
    "military person",
    "minister",
    "mlb player",
    "model",
    "monarch",
    "musical artist",
    "musician",
    "mp",
    "nba biography",
    "nascar driver",
    "nfl biography",
    "nfl player",
    "nfl coach",
    "nhl player",
    "noble",
    "nobility",
    "officeholder",
    "office holder",
    "pageant titleholder",
    "personbox",
    "philosopher",
    "pharaoh",
    "poker player",
    "police officer",
    "politician",
    "pope",
    "presenter",
    "president",
    "prime minister",
    "professional wrestler",
    "racing driver",
    "rebbe",
    "religious biography",
    "rower",
    "royalty",
    "rugby biography",
    "rugby league biography",
    "rugby union biography",
    "saint",
    "scientist",
    "senator",
    "skier",
    "snooker player",
    "sportsperson",
    "squash player",
    "sumo wrestler",
    "swimmer",
    "table tennis player",
    "tennis biography",
    "tennis player",
    "theologian",
    "volleyball biography",
    "volleyball player",
    "writer",
    "youtube personality",
    "youtuber",
    "video game player",
    "esports player",
    "spy",
    "astronomer",
    "mathematician",
    "physician",
    "pirate",
    "playboy playmate",
    "speedway rider",
    "sailor",
    "fencer",
    "handball player",
    "field hockey player",
    "gaelic athletic association player",
    "afl biography",
    "australian rules football biography",
    "canadian football biography",
    "cfl player",
    "american football biography",
    "twitch streamer",
    "tiktok personality",
    "internet celebrity",
    "social media personality",
    "prisoner",
    "serial killer",
    "ambassador",
    "governor",
    "mayor",
    "state representative",
    "state senator",
    "congressman",
    "us cabinet official",
    "indian politician",
    "sports announcer",
    "coach",
    "referee",
    "wrestler",
    "mixed martial artist",
    "kickboxer",
    "poet",
    "novelist",
    "playwright",
    "historian",
    "linguist",
    "psychologist",
    "academic",
    "professor",
    "photographer",
    "painter",
    "sculptor",
    "composer",
    "singer",
    "rapper",
    "dj",
    "filmmaker",
    "film director",
    "director",
    "producer",
    "screenwriter",
    "voice actor",
    "pornographic actor",
)
# Redirects used without the "Infobox" prefix.
_BARE_PERSON_TEMPLATES = ("personbox", "bio", "actor", "celebrity", "real person", "persondata infobox")

#: Normalised (lower case, single spaces) names of templates that mark a person article.
PERSON_INFOBOXES: frozenset[str] = frozenset(
    {f"infobox {s}" for s in _PERSON_INFOBOX_SUFFIXES} | set(_BARE_PERSON_TEMPLATES)
)

#: ``background`` values of Infobox musical artist that describe groups, not people (wikipedia.md section 6).
GROUP_BACKGROUNDS = frozenset(
    {"group_or_band", "group or band", "classical_ensemble", "classical ensemble", "temporary"}
)

# --- category signals --------------------------------------------------------------------------------------

_BIRTHS_RE = re.compile(r"(\d{1,4})(s?)( BC| BCE)? births")
_DEATHS_RE = re.compile(r"(\d{1,4})(s?)( BC| BCE)? deaths")
_PERSON_CATEGORIES = frozenset(
    {
        "Living people",
        "Possibly living people",
        "Year of birth missing (living people)",
        "Year of birth missing",
        "Year of birth unknown",
        "Year of birth uncertain",
        "Date of birth missing (living people)",
        "Date of birth unknown",
        "Year of death missing",
        "Year of death unknown",
        "Date of death missing",
        "Date of death unknown",
    }
)
LIVING_CATEGORIES = frozenset({"Living people", "Year of birth missing (living people)"})
_DEATH_CATEGORIES = frozenset(
    {"Year of death missing", "Year of death unknown", "Date of death missing", "Date of death unknown"}
)


def category_signals(categories: list[str]) -> dict[str, object]:
    """What the (normalised) category names say: person?, living?, possibly living?, birth/death years."""
    births = [m for c in categories if (m := _BIRTHS_RE.fullmatch(c))]
    deaths = [m for c in categories if (m := _DEATHS_RE.fullmatch(c))]
    birth_year = next((y for m in births if (y := _year(m)) is not None), None)
    death_year = next((y for m in deaths if (y := _year(m)) is not None), None)
    return {
        "person": bool(
            births or deaths or any(c in _PERSON_CATEGORIES or c.endswith("(living people)") for c in categories)
        ),
        # "Year of birth missing (living people)", "Place of birth missing (living people)", ...: BLP policy
        # maintenance categories, only ever applied to living people.
        "living": any(c in LIVING_CATEGORIES or c.endswith("(living people)") for c in categories),
        "possibly_living": "Possibly living people" in categories,
        "death": bool(deaths) or any(c in _DEATH_CATEGORIES for c in categories),
        "birth_year": birth_year,
        "death_year": death_year,
    }


def _year(match: re.Match[str]) -> int | None:
    """A positive year for "1961 births"; decades ("1960s births") and BC years give None."""
    if match.group(2) or match.group(3):
        return None
    return int(match.group(1))


# --- infobox signals ---------------------------------------------------------------------------------------


def is_infobox_name(name: str) -> bool:
    return name.startswith("infobox") or name in PERSON_INFOBOXES


def is_person_infobox(name: str, background: str | None) -> bool:
    """A person infobox, unless it is ``Infobox musical artist`` describing a band or ensemble."""
    if name not in PERSON_INFOBOXES:
        return False
    if background is None:
        return True
    return " ".join(background.strip().lower().split()) not in GROUP_BACKGROUNDS


# --- byte-level prefilter ----------------------------------------------------------------------------------


def _name_pattern(name: str) -> str:
    return r"[\s_]+".join(re.escape(word) for word in name.split(" "))


# Category names are case-sensitive after their first letter (as in MediaWiki, and as the parser matches them),
# so case-sensitive substrings are a valid superset gate; the regex runs only when no births/deaths word exists.
_LIVING_RE = re.compile(r"iving[\s_]+people")  # literal first: CPython's fast literal search applies
_SUFFIXES = sorted(
    {n.removeprefix("infobox ") for n in PERSON_INFOBOXES if n.startswith("infobox ")}, key=len, reverse=True
)
_BARE = sorted({n for n in PERSON_INFOBOXES if not n.startswith("infobox ")}, key=len, reverse=True)
# "{{" + optional "Template:" + "Infobox" + a person suffix, or a bare redirect name. A comment where the parser
# would strip it ("{{<!-- x -->Infobox person", "{{Infobox<!-- x --> person") also passes, to stay a superset.
_INFOBOX_RE = re.compile(
    r"\{\{[\s_]*(?:<!--|(?:template[\s_]*:[\s_]*)?(?:infobox[\s_]*(?:<!--|"
    + "|".join(_name_pattern(n) for n in _SUFFIXES)
    + ")|"
    + "|".join(_name_pattern(n) for n in _BARE)
    + "))",
    re.IGNORECASE,
)


def _after_of(text: str, word: str, start: int = 0) -> bool:
    """Does ``word`` occur right after "of" + whitespace/underscores ("Year of birth", "Date_of  death")?

    Finds the (few) occurrences of the word with str.find and looks backwards, instead of a regex starting
    with the very common "of" (3-5x slower on real pages).
    """
    i = text.find(word, start)
    while i >= 0:
        j = i
        while j > 0 and (text[j - 1].isspace() or text[j - 1] == "_"):
            j -= 1
        if j < i and text[j - 2 : j] == "of":
            return True
        i = text.find(word, i + len(word))
    return False


def looks_like_person(text: str) -> bool:
    """Cheap superset test of :func:`parse_biography`'s ``is_person`` (substring/regex only, no parsing).

    "births" and "of birth" both need "birth": one search for it decides whether the other two can match and
    where they can start, so most non-person pages are read four times (birth, death, people, infobox), not six.
    """
    for word in ("birth", "death"):
        i = text.find(word)
        if i >= 0 and (text.find(word + "s", i) >= 0 or _after_of(text, word, i)):
            return True
    if "people" in text and _LIVING_RE.search(text):
        return True
    return _INFOBOX_RE.search(text) is not None
