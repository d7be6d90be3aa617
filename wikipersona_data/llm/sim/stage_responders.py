"""What the simulator answers to each stage prompt (schema name = the stage template's name).

The goal is data that behaves like the real thing in the ways the pipeline and its filters care
about, not prose quality:

- descriptions quote the numbered sentences they are shown and cite their ids; a configurable share
  (``SimConfig.unsupported_claim_rate``) cites a wrong id or states invented content;
- questions are built from the persona's facts in the prompt (personal) or from topics of the axis
  (divergent), with varied templates, so batches differ and ids do not collide;
- candidates are written for their category: they use that category's vocabulary and differ in
  length and stance by style;
- the judge prefers the answer that shares more words with the persona card (expanded by the
  category vocabulary the card's words evoke), so personas of one axis disagree on divergent
  questions; a configurable share of votes (``SimConfig.position_bias_rate``) just picks (a).

The "knowledge" below (which words a category evokes, who the demo's famous people are) plays the
part of a real model's world knowledge. Everything is a function of the request and its seeded rng.
"""

from __future__ import annotations

import re
from typing import Any

from wikipersona_data.llm.sim.responders import ResponderRequest, register_responder

_SENTENCE = re.compile(r"^\[(\d+(?:\.\d+)*)\] (.+)$", re.MULTILINE)
_WORD = re.compile(r"[a-z][a-z'-]{3,}")
STOP = frozenset(
    """about above after again also although among another because been before being between both could
    does doing down during each from further have having here into itself just more most much must only
    other over same should some such than that their theirs them then there these they this those through
    under until very what when where which while whom with would your yours she her hers his him himself
    herself years year since known later became become first were said says has had was are the and
    for its it's into over many including well made make part early born likely prefers prefer values value
    inferred preference reflects article best-known co-founder supports support according describes described
    following followed per""".split()  # noqa: SIM905
)

# category -> (words in a text that evoke it, vocabulary an answer written for it uses)
LEXICON: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "vegan": (("vegan", "plant-based"), ("legumes", "tofu", "lentils", "dairy-free", "vegetables", "beans", "plants")),
    "keto": (("keto", "low-carb"), ("low-carb", "high-fat", "protein", "ketosis", "eggs", "avocado", "butter")),
    "pescatarian": (("pescatarian", "seafood"), ("fish", "seafood", "omega-3", "grilled", "shellfish", "coastal")),
    "catholic": (("catholic",), ("faith", "mass", "prayer", "church", "saints", "sacraments", "charity")),
    "atheist": (("atheis", "secular"), ("evidence", "science", "secular", "reason", "scepticism", "humanist")),
    "buddhist": (("buddhis",), ("mindfulness", "meditation", "compassion", "impermanence", "temple", "retreat")),
    "progressive": (("progressive",), ("equity", "public", "climate", "justice", "reform", "union", "community")),
    "conservative": (("conservative",), ("tradition", "family", "fiscal", "heritage", "order", "institutions")),
    "libertarian": (("libertarian",), ("liberty", "markets", "freedom", "deregulation", "individual", "voluntary")),
    "football": (("football",), ("training", "team", "match", "pitch", "tactics", "club", "goals")),
    "cricket": (("cricket",), ("batting", "bowling", "innings", "wicket", "spin", "overs")),
    "ultramarathon": (
        ("ultramarathon", "ultra-marathon", "trail running"),
        ("endurance", "trail", "pacing", "distance", "recovery", "hydration"),
    ),
    "ai": (
        ("enthusiast", "artificial intelligence", "machine learning"),
        ("automation", "machine", "learning", "chatbots", "tools", "innovation"),
    ),
    "minimalist": (
        ("minimalis", "digital detox"),
        ("offline", "analog", "focus", "fewer", "notebook", "screen-free", "quiet"),
    ),
    "privacy": (
        ("privacy", "surveillance"),
        ("encryption", "protection", "open-source", "tracking", "consent", "secure"),
    ),
}

AXIS_TOPICS: dict[str, tuple[str, ...]] = {
    "diet": ("breakfast before work", "a dinner party menu", "meals after a workout", "weekly meal prep",
             "snacks for a long flight", "a birthday cake", "packed lunches for children", "eating out with friends"),
    "religion": ("coping with grief", "teaching children right from wrong", "celebrating the winter holidays",
                 "finding meaning in work", "planning a wedding ceremony", "handling stress", "volunteering"),
    "politics": ("rising housing costs", "the minimum wage", "healthcare funding", "climate policy",
                 "school choice", "taxes on small businesses", "public transport"),
    "sport": ("staying fit in winter", "choosing a sport for a child", "spending a weekend watching sport",
              "recovering from an injury", "a training plan for beginners"),
    "technology": ("choosing a new phone", "organising family photos", "setting up a smart home",
                   "a messaging app for the family", "writing a cover letter", "managing passwords"),
}  # fmt: skip

DIVERGENT_FORMS = (
    "What would you recommend for {t}?",
    "How should someone approach {t}?",
    "What matters most when it comes to {t}?",
    "Can you give me a simple plan for {t}?",
    "What's your honest take on {t}?",
    "What is the best way to think about {t}?",
    "Which option would you pick for {t}, and why?",
    "What mistakes do people usually make with {t}?",
)
PERSONAL_FORMS = (
    "Can you suggest a weekend plan that involves {a} and {b}?",
    "How can I explain {a} to my family in a few minutes?",
    "What are some ideas for {a} that fit a busy schedule?",
    "I'm preparing a short talk about {a} and {b}; can you help me outline it?",
    "What's your opinion on {a} versus {b}?",
    "Give me three practical tips for {a} this month.",
    "How should I respond to criticism of my views on {a}?",
    "Recommend a few books about {a} and {b}.",
    "Help me write a friendly note to a colleague about {a}.",
    "What questions should I ask an expert about {b}?",
)
STYLE_LENGTH = {"short": (2, 3), "detailed": (5, 7), "warm": (3, 4), "opinionated": (3, 5), "structured": (4, 5)}
INVENTED = (
    "{n} once held a national record in competitive yodelling.",
    "{n} owns a collection of more than 300 vintage typewriters.",
    "{n} refuses to travel by train.",
)

# The demo's famous people by category: the simulated model "knows" them (plus one person it made up).
DEMO_PEOPLE: dict[str, tuple[str, ...]] = {
    "vegan": ("Adaeze Okafor",),
    "keto": ("Brett Halvorsen",),
    "pescatarian": ("Mariana Teixeira Lopes",),
    "catholic": ("Colleen Brannigan",),
    "atheist": ("Rupert Ashdown",),
    "buddhist": ("Nalini Chandrasekar",),
    "progressive": ("Imani Castellanos",),
    "conservative": ("Geoffrey Pembridge",),
    "libertarian": ("Wade Brunner",),
    "football": ("Emeka Obiora",),
    "cricket": ("Arjun Valsaraj (cricketer)",),
    "ultramarathon": ("Kirsty Maddock",),
    "ai enthusiast": ("Ravi Sundaresan",),
    "digital minimalist": ("Harriet Quennell",),
    "privacy": ("Noor Haddad",),
}


def words(text: str) -> list[str]:
    """Lowercase content words in first-seen order (capitalised words, i.e. names, are skipped)."""
    seen: dict[str, None] = {}
    for token in re.findall(r"\b[\w'-]+\b", text):
        if token[:1].isupper():
            continue
        token = token.lower()
        if _WORD.fullmatch(token) and token not in STOP:
            seen.setdefault(token, None)
    return list(seen)


def lexicon_for(text: str) -> set[str]:
    """Vocabulary evoked by the category words present in ``text``."""
    low = text.lower()
    out: set[str] = set()
    for triggers, vocab in LEXICON.values():
        if any(t in low for t in triggers):
            out.update(vocab)
    return out


def naming_words(text: str) -> set[str]:
    """Words that would name the category outright (answers must not disclose it)."""
    low = text.lower()
    return {w for triggers, _ in LEXICON.values() for t in triggers if t in low for w in t.split()}


def _after(text: str, marker: str, end: str | None = None) -> str:
    start = text.find(marker)
    if start < 0:
        return ""
    start += len(marker)
    stop = text.find(end, start) if end else -1
    return text[start:stop] if stop >= 0 else text[start:]


def _quoted(text: str, marker: str) -> str:
    match = re.search(re.escape(marker) + r'\s*"([^"]+)"', text)
    return match.group(1) if match else ""


def _rate(req: ResponderRequest, name: str) -> float:
    return float(getattr(req.config, name, 0.0) or 0.0)


def _shorten(sentence: str, limit: int = 28) -> str:
    tokens = sentence.rstrip(".").split()
    return " ".join(tokens[:limit]).rstrip(",;:") + "."


# ------------------------------------------------------------------ personas


@register_responder("personas_candidates")
def personas_candidates(req: ResponderRequest) -> dict[str, Any]:
    category = _quoted(req.user_text, "category").lower()
    people = [t for key, titles in DEMO_PEOPLE.items() if key in category for t in titles]
    others = sorted({t for titles in DEMO_PEOPLE.values() for t in titles} - set(people))
    picks = [{"title": t, "reason": f"well known for being {category}"} for t in people]
    picks.append({"title": req.rng.choice(others), "reason": "often in the news"})  # a wrong guess
    picks.append({"title": "Jordan Example-Person", "reason": "a famous name the model made up"})
    return {"people": picks}


@register_responder("personas_evidence")
def personas_evidence(req: ResponderRequest) -> dict[str, Any]:
    category = _quoted(req.user_text, "category").lower()
    terms = [w for w in re.split(r"[\s-]+", category) if len(w) > 2]
    ids = [sid for sid, text in _SENTENCE.findall(req.user_text) if any(t in text.lower() for t in terms)]
    return {"member": bool(ids), "evidence": ids[:3]}


# ------------------------------------------------------------------ describe


PREFERENCE_CUES = (
    "prefer",
    "favourite",
    "favorite",
    "advoca",
    "follow",
    "believ",
    "support",
    "oppos",
    "campaign",
    "diet",
    "faith",
    "church",
    "said",
    "describ",
    "critic",
    "avoid",
    "practis",
    "practic",
    "refus",
)


@register_responder("describe")
def describe(req: ResponderRequest) -> dict[str, Any]:
    text = req.user_text
    name = _after(text, "Write a two-part description of ", " as a list").strip() or "The person"
    sentences = _SENTENCE.findall(text)
    rng = req.rng
    aspects = _after(text, "cover these aspects if the article supports them:", "\n").lower()
    cue_terms = tuple(w for w in re.split(r"[\s,()-]+", aspects) if len(w) > 3) + PREFERENCE_CUES
    background = [s for s in sentences if s[0].startswith("0.") or "early" in s[0]][:4] or sentences[:3]
    preference = [s for s in sentences if any(c in s[1].lower() for c in cue_terms) and s not in background][:6]
    if len(preference) < 2:
        preference += [s for s in sentences if s not in background and s not in preference][: 2 - len(preference)]
    all_ids = [sid for sid, _ in sentences]
    claims = []
    for sid, sentence in background:
        claims.append({"kind": "background", "text": _shorten(sentence), "evidence": [sid]})
    for sid, sentence in preference:
        lead = rng.choice(
            ("Likely prefers what this reflects:", "Values this, per the article:", "Inferred preference:")
        )
        claims.append({"kind": "preference", "text": f"{lead} {_shorten(sentence, 24)}", "evidence": [sid]})
    rate = _rate(req, "unsupported_claim_rate")
    for claim in claims:
        if rate and rng.random() < rate:
            if rng.random() < 0.5 and len(all_ids) > 1:  # cite a sentence that does not say it
                claim["evidence"] = [rng.choice([i for i in all_ids if i not in claim["evidence"]])]
            elif rng.random() < 0.5:  # cite an id that does not exist
                claim["evidence"] = [f"{len(all_ids) + 90}.{rng.randint(0, 9)}"]
            else:  # invent the content
                claim["text"] = rng.choice(INVENTED).format(n=name)
    return {"claims": claims}


# ------------------------------------------------------------------ questions


@register_responder("questions_personal")
def questions_personal(req: ResponderRequest) -> dict[str, Any]:
    text = req.user_text
    n = int(re.search(r"Write (\d+) questions", text).group(1)) if re.search(r"Write (\d+) questions", text) else 5
    block = _after(text, "(grounded description):", "Write ")
    facts = [line[2:] for line in block.splitlines() if line.startswith("- ")]
    rng = req.rng
    vocab = words(" ".join(facts)) or words(text)
    forms = list(PERSONAL_FORMS)
    rng.shuffle(forms)
    out: list[str] = []
    for i in range(n):
        fact_words = words(rng.choice(facts)) if facts else vocab
        pool = fact_words if len(fact_words) >= 2 else vocab
        a, b = rng.sample(pool, 2) if len(pool) >= 2 else (pool[0], "everyday life")
        out.append(forms[i % len(forms)].format(a=a, b=b))
    return {"questions": out}


@register_responder("questions_divergent")
def questions_divergent(req: ResponderRequest) -> dict[str, Any]:
    text = req.user_text
    match = re.search(r"Write (\d+) questions", text)
    n = int(match.group(1)) if match else 5
    axis = _quoted(text, "The people share the topic").lower() or _after(text, 'topic "', '"').lower()
    topics = list(AXIS_TOPICS.get(axis, ()))
    if not topics:
        topics = [f"{w} choices" for w in words(text)[:8]] or ["everyday choices"]
    rng = req.rng
    pairs = [(f, t) for f in DIVERGENT_FORMS for t in topics]
    rng.shuffle(pairs)
    return {"questions": [f.format(t=t) for f, t in pairs[:n]]}


# ------------------------------------------------------------------ respond


@register_responder("respond_categories")
def respond_categories(req: ResponderRequest) -> dict[str, Any]:
    text = req.user_text
    question = set(words(_after(text, "Question:", "\n")))
    axes = re.findall(r"^- ([^:\n]+): (.+)$", text, re.MULTILINE)
    if not axes:
        return {"axis": "general", "categories": ["beginner", "expert"]}

    def score(item: tuple[str, str]) -> tuple[int, float]:
        axis, cats = item
        vocab = lexicon_for(cats) | set(words(axis + " " + cats)) | set(words(" ".join(AXIS_TOPICS.get(axis, ()))))
        return len(question & vocab), req.rng.random()

    axis, cats = max(axes, key=score)
    return {"axis": axis.strip(), "categories": [c.strip() for c in cats.split(",") if c.strip()]}


@register_responder("respond")
def respond(req: ResponderRequest) -> dict[str, Any]:
    text = req.user_text
    category = _quoted(text, "best described as")
    style = _after(text, "This is variant ", "\n")
    question = _after(text, "Question:", "\n").strip()
    rng = req.rng
    vocab = sorted(lexicon_for(category) - naming_words(category)) or words(category) or ["balance"]
    q_words = words(question) or ["this"]
    low, high = next((v for k, v in STYLE_LENGTH.items() if k in style), (3, 4))
    openers = ("Here is how I would approach it.", "Short answer: it depends on what you value.", "Good question.")
    sentences = [rng.choice(openers)]
    for _ in range(rng.randint(low, high)):
        a, b = rng.choice(vocab), rng.choice(vocab)
        q = rng.choice(q_words)
        sentences.append(
            rng.choice(
                (
                    f"For {q}, I would put {a} first and make room for {b}.",
                    f"Think about {a} and {b} when you plan the {q} part.",
                    f"Many people find that {a} makes {q} easier, especially with some {b}.",
                    f"If {q} is the goal, lean on {a}; {b} helps too.",
                    f"A practical step: start small with {a}, then add {b} to your {q} routine.",
                )
            )
        )
    if "opinionated" in style:
        sentences.append(f"Honestly, {rng.choice(vocab)} is the better bet here, and I would not compromise on it.")
    if "list" in style:
        return {"answer": sentences[0] + "\n" + "\n".join(f"- {s}" for s in sentences[1:])}
    return {"answer": " ".join(sentences)}


# ------------------------------------------------------------------ judge


@register_responder("judge")
def judge(req: ResponderRequest) -> dict[str, Any]:
    text = req.user_text
    card = _after(text, "The person:", "They asked:")
    question = _after(text, "They asked:", "\n")
    answer_a = _after(text, "Answer (a):", "Answer (b):")
    answer_b = _after(text, "Answer (b):", "Which answer")
    allow_ties = '"tie"' in text
    rng = req.rng
    if rng.random() < _rate(req, "position_bias_rate"):
        return {"rationale": "Answer (a) reads well and comes first.", "preferred": "a"}
    persona = set(words(card)) | lexicon_for(card)
    q = set(words(question))

    def score(answer: str) -> float:
        ws = set(words(answer))
        return 2 * len(ws & persona) + 0.1 * len(ws & q)

    sa, sb = score(answer_a), score(answer_b)
    if sa == sb:
        if allow_ties:
            return {"rationale": "Both answers fit this person about equally well.", "preferred": "tie"}
        pick = rng.choice(("a", "b"))
    else:
        pick = "a" if sa > sb else "b"
    best = answer_a if pick == "a" else answer_b
    shared = sorted(set(words(best)) & persona)[:3]
    why = f"It speaks to what they care about ({', '.join(shared)})." if shared else "It fits their background better."
    return {"rationale": f"Answer ({pick}) is closer to this person's documented preferences. {why}", "preferred": pick}


# ------------------------------------------------------------------ prefixes


@register_responder("prefixes_infer")
def prefixes_infer(req: ResponderRequest) -> dict[str, Any]:
    text = req.user_text
    chosen = " ".join(re.findall(r"^Preferred answer: (.+)$", text, re.MULTILINE))
    rejected = " ".join(re.findall(r"^Dispreferred answer: (.+)$", text, re.MULTILINE))
    asked = " ".join(re.findall(r"^Question \d+: (.+)$", text, re.MULTILINE))
    likes = [w for w in words(chosen) if w not in set(words(rejected))][:6] or words(chosen)[:6]
    topics = words(asked)[:6]
    first = f"This person asks about {', '.join(topics) or 'everyday matters'}, which suggests an active, busy life."
    second = f"They prefer answers that emphasise {', '.join(likes) or 'practical advice'}, and dislike generic advice."
    return {"persona": first + "\n\n" + second}
