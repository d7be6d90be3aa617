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

import hashlib
import re
from typing import Any

from wikipersona_data.llm.sim.responders import ResponderRequest, register_responder
from wikipersona_data.llm.sim.template_fields import field, line_values, region, rest_of_line, shown

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
    "diet": ("breakfast before an early meeting", "a dinner party menu for eight guests", "meals after a hard workout",
             "weekly meal prep on a budget", "snacks for a long-haul flight", "a birthday cake for a child",
             "packed lunches for school", "eating out at a steakhouse with colleagues", "a holiday feast",
             "cooking for a picky teenager", "a romantic anniversary dinner", "what to order at a street market",
             "hosting a barbecue", "food at a wedding reception", "the healthiest takeaway options",
             "a camping trip's meals"),
    "religion": ("coping with the death of a parent", "teaching children right from wrong", "the winter holidays",
                 "finding meaning in a dull job", "planning a wedding ceremony", "handling burnout",
                 "choosing where to volunteer", "naming a newborn", "a funeral for a friend",
                 "forgiving a betrayal", "starting each morning", "talking to kids about death",
                 "what happens after we die", "whether to fast", "marking a coming-of-age",
                 "dealing with guilt"),
    "politics": ("rising housing costs", "raising the minimum wage", "funding hospitals", "cutting carbon emissions",
                 "school vouchers", "taxes on small businesses", "public transport in cities",
                 "immigration levels", "regulating social media", "student debt", "policing budgets",
                 "gun ownership", "farm subsidies", "the national debt", "labour unions", "universal basic income"),
    "technology": ("choosing a new phone", "organising twenty years of family photos", "setting up a smart home",
                   "a messaging app for grandparents", "writing a cover letter", "managing dozens of passwords",
                   "screen time for a ten-year-old", "planning a road trip", "taking notes in meetings",
                   "backing up important files", "learning a new language", "a home office setup",
                   "reading the news each morning", "paying at a shop", "keeping a diary", "a fitness tracker"),
    "sport": ("staying fit in winter", "choosing a sport for a child", "a weekend of watching sport",
              "recovering from a knee injury", "a training plan for beginners", "a team-building day at work"),
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
    "Any advice on {t}?",
    "Walk me through {t} step by step.",
)
PERSONAL_FORMS = (
    "What should I keep in mind about {p}?",
    "Can you help me plan something around {p}?",
    "How would you explain {p} to a teenager?",
    "What are the pros and cons of {p}?",
    "Give me three ideas related to {p}.",
    "Is there a good book or film about {p}?",
    "How can I talk to my family about {p}?",
    "Draft a short note to a friend about {p}.",
    "What should I ask an expert on {p}?",
    "What's a common misconception about {p}?",
    "How do I make more time for {p} this month?",
    "Summarise the strongest arguments around {p}.",
    "Write a toast that mentions {p}.",
    "Suggest a weekend outing connected to {p}.",
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


_AGAINST = re.compile(r"\b(critic\w*|against|oppos\w*|reject\w*|sceptic\w*|skeptic\w*|dismiss\w*|distrust\w*)\b")


def lexicon_for(text: str) -> set[str]:
    """Vocabulary evoked by the category words present in ``text``. A sentence that speaks against a
    category ("critical of plant-based meat substitutes") does not evoke it, as a reader would not
    take it for the person's own preference."""
    out: set[str] = set()
    for sentence in re.split(r"(?<=[.!?])\s+", text.lower()):
        if _AGAINST.search(sentence):
            continue
        for triggers, vocab in LEXICON.values():
            if any(t in sentence for t in triggers):
                out.update(vocab)
    return out


def naming_words(text: str) -> set[str]:
    """Words that would name the category outright (answers must not disclose it)."""
    low = text.lower()
    return {w for triggers, _ in LEXICON.values() for t in triggers if t in low for w in t.split()}


def _rate(req: ResponderRequest, name: str) -> float:
    return float(getattr(req.config, name, 0.0) or 0.0)


def _shorten(sentence: str, limit: int = 28) -> str:
    tokens = sentence.rstrip(".").split()
    return " ".join(tokens[:limit]).rstrip(",;:") + "."


# ------------------------------------------------------------------ personas


@register_responder("personas_candidates")
def personas_candidates(req: ResponderRequest) -> dict[str, Any]:
    category = field(req.user_text, "personas_candidates", "category").lower()
    people = [t for key, titles in DEMO_PEOPLE.items() if key in category for t in titles]
    others = sorted({t for titles in DEMO_PEOPLE.values() for t in titles} - set(people))
    picks = [{"title": t, "reason": f"well known for being {category}"} for t in people]
    picks.append({"title": req.rng.choice(others), "reason": "often in the news"})  # a wrong guess
    picks.append({"title": "Jordan Example-Person", "reason": "a famous name the model made up"})
    return {"people": picks}


@register_responder("personas_evidence")
def personas_evidence(req: ResponderRequest) -> dict[str, Any]:
    category = field(req.user_text, "personas_evidence", "category").lower()
    terms = [w for w in re.split(r"[\s-]+", category) if len(w) > 2]
    sentences = line_values(req.user_text, "personas_evidence", "s.id")
    ids = [sid for sid, text in sentences if any(t in text.lower() for t in terms)]
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


def _about(name: str, sentence: str) -> str:
    """The sentence as a claim about the person: a leading pronoun or surname becomes the full name."""
    surname = name.split()[-1] if name.split() else ""
    for subject in ("She ", "He ", "They ", f"{surname} "):
        if subject.strip() and sentence.startswith(subject) and not sentence.startswith(name):
            return f"{name} {sentence[len(subject) :]}"
    return sentence


@register_responder("describe")
def describe(req: ResponderRequest) -> dict[str, Any]:
    text = req.user_text
    name = field(text, "describe", "name").strip() or "The person"
    sentences = line_values(text, "describe", "s.id")
    rng = req.rng
    aspects = rest_of_line(text, "describe", "m.axis").lower()
    cue_terms = tuple(w for w in re.split(r"[\s,()-]+", aspects) if len(w) > 3) + PREFERENCE_CUES
    background = [s for s in sentences if s[0].startswith("0.") or "early" in s[0]][:4] or sentences[:3]
    preference = [s for s in sentences if any(c in s[1].lower() for c in cue_terms) and s not in background][:6]
    if len(preference) < 2:
        preference += [s for s in sentences if s not in background and s not in preference][: 2 - len(preference)]
    all_ids = [sid for sid, _ in sentences]
    claims = []
    for sid, sentence in background:
        claims.append({"kind": "background", "text": _about(name, _shorten(sentence)), "evidence": [sid]})
    for sid, sentence in preference:
        claims.append({"kind": "preference", "text": _about(name, _shorten(sentence, 24)), "evidence": [sid]})
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


def _batch(req: ResponderRequest) -> int:
    value = field(req.user_text, req.schema_name or "", "batch + 1")
    return int(value) - 1 if value.isdigit() else 0


def _count(req: ResponderRequest) -> int:
    value = field(req.user_text, req.schema_name or "", "n")
    return int(value) if value.isdigit() else 5


DETERMINERS = frozenset({"a", "an", "the", "her", "his", "their"})
BREAKS = frozenset({"and", "or", "but", "which", "who", "that", "with", "for", "in", "on", "at", "by", "since", "as"})


def _phrases(fact: str, name: str) -> list[str]:
    """Noun-phrase-like runs of a fact ("a plant-based food company", "the Nollywood drama Harmattan
    Road"): a determiner and up to five words, cut at punctuation or a conjunction; no persona name."""
    banned = {w.lower() for w in re.findall(r"[\w'-]+", name)}
    out = []
    for clause in re.split(r"[,;:.()\"]", fact):
        tokens = clause.split()
        for i, token in enumerate(tokens[:-1]):
            if token.lower() not in DETERMINERS:
                continue
            run: list[str] = []
            for word in tokens[i + 1 : i + 6]:
                if word.lower() in BREAKS or word.lower() in banned:
                    break
                run.append(word)
            if len(run) >= 2:
                det = "my" if token.lower() in {"her", "his", "their"} else token.lower()
                out.append(f"{det} {' '.join(run)}")
    return out


@register_responder("questions_personal")
def questions_personal(req: ResponderRequest) -> dict[str, Any]:
    """Each question is about a different run of words from a different fact of the persona."""
    text = req.user_text
    n, batch = _count(req), _batch(req)
    name = field(text, "questions_personal", "name").strip()
    block = region(text, "questions_personal", "c", "n")
    facts = line_values(block, "questions_personal", "c") or [text]
    rng = req.rng
    pool = [p for fact in facts for p in _phrases(fact, name)] or ["everyday life"]
    rng.shuffle(pool)
    out: list[str] = []
    for i in range(n):
        form = PERSONAL_FORMS[(batch * n + i) % len(PERSONAL_FORMS)]
        out.append(form.format(p=pool[(batch * n + i) % len(pool)]))
    return {"questions": out}


@register_responder("questions_divergent")
def questions_divergent(req: ResponderRequest) -> dict[str, Any]:
    """Batch b takes the next n topics of the axis, each with its own question form."""
    text = req.user_text
    n, batch = _count(req), _batch(req)
    axis = field(text, "questions_divergent", "axis").lower()
    topics = list(AXIS_TOPICS.get(axis, ())) or [f"{w} choices" for w in words(text)[:8]] or ["everyday choices"]
    forms = list(DIVERGENT_FORMS)
    req.rng.shuffle(forms)
    out = []
    for i in range(n):
        k = batch * n + i
        out.append(forms[k % len(forms)].format(t=topics[k % len(topics)]))
    return {"questions": out}


# ------------------------------------------------------------------ respond


@register_responder("respond_categories")
def respond_categories(req: ResponderRequest) -> dict[str, Any]:
    text = req.user_text
    question = set(words(field(text, "respond_categories", "question")))
    axes = line_values(text, "respond_categories", "a.name")
    if not axes:
        return {"axis": "general", "categories": ["beginner", "expert"]}

    def score(item: tuple[str, str]) -> tuple[int, float]:
        axis, cats = item
        vocab = lexicon_for(cats) | set(words(axis + " " + cats)) | set(words(" ".join(AXIS_TOPICS.get(axis, ()))))
        return len(question & vocab), req.rng.random()

    axis, cats = max(axes, key=score)
    return {"axis": axis.strip(), "categories": [c.strip() for c in cats.split(",") if c.strip()]}


OPENERS = ("Here is how I would approach it.", "Short answer: it depends on what you value.", "Good question.")


def _tailored(rng: Any, vocab: list[str], q_words: list[str], low: int, high: int) -> list[str]:
    """An opener, then ``low``..``high`` sentences joining the question's words with ``vocab``."""
    sentences = [rng.choice(OPENERS)]
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
    return sentences


@register_responder("respond")
def respond(req: ResponderRequest) -> dict[str, Any]:
    text = req.user_text
    category = field(text, "respond", "category")
    style = field(text, "respond", "style")
    question = field(text, "respond", "question").strip()
    rng = req.rng
    vocab = sorted(lexicon_for(category) - naming_words(category)) or words(category) or ["balance"]
    q_words = words(question) or ["this"]
    low, high = next((v for k, v in STYLE_LENGTH.items() if k in style), (3, 4))
    sentences = _tailored(rng, vocab, q_words, low, high)
    if "opinionated" in style:
        sentences.append(f"Honestly, {rng.choice(vocab)} is the better bet here, and I would not compromise on it.")
    if "list" in style:
        return {"answer": sentences[0] + "\n" + "\n".join(f"- {s}" for s in sentences[1:])}
    return {"answer": " ".join(sentences)}


# ------------------------------------------------------------------ judge


@register_responder("judge")
def judge(req: ResponderRequest) -> dict[str, Any]:
    text = req.user_text
    card = region(text, "judge", "name", "question")
    question = field(text, "judge", "question")
    answer_a = field(text, "judge", "answer_a")
    answer_b = field(text, "judge", "answer_b")
    allow_ties = shown(text, "judge", "allow_ties")
    return _prefer(req, set(words(card)) | lexicon_for(card), question, answer_a, answer_b, allow_ties)


def _prefer(
    req: ResponderRequest, persona: set[str], question: str, answer_a: str, answer_b: str, allow_ties: bool
) -> dict[str, Any]:
    """The simulated judge's pick between two answers for a person known by the words ``persona``."""
    rng = req.rng
    if rng.random() < _rate(req, "position_bias_rate"):
        return {"rationale": "Answer (a) reads well and comes first.", "preferred": "a"}
    q = set(words(question))

    def score(answer: str) -> float:
        """Fit to the persona first, then to the question; a tiny text-derived term (the same in both
        orders) stands for everything else a reader weighs, so exact ties are rare, as with a real judge."""
        ws = set(words(answer))
        taste = int(hashlib.sha256(answer.strip().encode()).hexdigest()[:4], 16) / 65536
        return 2 * len(ws & persona) + 0.1 * len(ws & q) + 0.05 * taste

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
    chosen = " ".join(line_values(text, "prefixes_infer", "s.chosen"))
    rejected = " ".join(line_values(text, "prefixes_infer", "s.rejected"))
    asked = " ".join(question for _, question in line_values(text, "prefixes_infer", "s.question"))
    likes = [w for w in words(chosen) if w not in set(words(rejected))][:6] or words(chosen)[:6]
    topics = words(asked)[:6]
    first = f"This person asks about {', '.join(topics) or 'everyday matters'}, which suggests an active, busy life."
    second = f"They prefer answers that emphasise {', '.join(likes) or 'practical advice'}, and dislike generic advice."
    return {"persona": first + "\n\n" + second}


# ------------------------------------------------------------------ evaluation (wikipersona evaluate)


def known_vocabulary(text: str) -> set[str]:
    """What a model that has read ``text`` (a description, a name, examples of preferred answers) knows about the
    person's tastes: the vocabulary of every category the text evokes by its words, by a person the model
    knows (``DEMO_PEOPLE``), or by using at least two of the category's own words (examples written for it)."""
    out = lexicon_for(text)
    for category, people in DEMO_PEOPLE.items():
        if any(name.split(" (")[0] in text for name in people):
            out |= lexicon_for(category)
    present = set(words(text))
    for _, vocab in LEXICON.values():
        if len(present & set(vocab)) >= 2:
            out |= set(vocab)
    return out


@register_responder("text")
def plain_answer(req: ResponderRequest) -> str:
    """A plain chat answer (no schema), e.g. of a policy under evaluation. Without a system message: the
    simulator's generic paragraph of the question's words, as before. With one (a persona prefix), the answer
    is tailored to what it tells about the asker (``known_vocabulary``), as a model reading its system prompt
    would; when it tells nothing usable, the generic paragraph again."""
    from wikipersona_data.llm.sim.textgen import paragraph

    question = req.user_text
    vocab = sorted(known_vocabulary(req.system_text)) if req.system_text.strip() else []
    if not vocab:
        return paragraph(req.rng, question)
    return " ".join(_tailored(req.rng, vocab, words(question) or ["this"], 3, 4))


@register_responder("preference")
def preference(req: ResponderRequest) -> dict[str, Any]:
    """Preference accuracy (``evaluate/templates/preference.md``): the judge's rule, for a person known only
    from the conversation's system message (nothing for the ``none`` prefix: then only the question's words
    and the answers' own small differences decide)."""
    text = req.user_text
    context = field(text, "preference", "context")
    persona = set(words(context)) | known_vocabulary(context)
    return _prefer(
        req,
        persona,
        field(text, "preference", "question"),
        field(text, "preference", "answer_a"),
        field(text, "preference", "answer_b"),
        shown(text, "preference", "allow_ties"),
    )


# ------------------------------------------------------------------ verification (optional LLM entailment)


@register_responder("entailment")
def entailment(req: ResponderRequest) -> dict[str, Any]:
    """Entailed when enough of the claim's content words occur in the cited sentences: a stand-in for
    a model's reading that agrees with the word check on plain quotes and disagrees on invented content.
    Preferences are inferences, so they need less overlap."""
    text = req.user_text
    found = line_values(text, "entailment", "claim")
    if not found:
        return {"entailed": False, "rationale": "No claim was given."}
    kind, claim = found[0]
    evidence = set(words(" ".join(sentence for _, sentence in line_values(text, "entailment", "sid"))))
    claim_words = [w for w in words(claim) if w not in STOP]
    if not claim_words:
        return {"entailed": False, "rationale": "The claim says nothing checkable."}
    share = sum(w in evidence for w in claim_words) / len(claim_words)
    needed = 0.3 if kind == "preference" else 0.5
    if share >= needed:
        return {"entailed": True, "rationale": f"The sentences state most of the claim ({share:.0%} of its words)."}
    return {"entailed": False, "rationale": f"The sentences do not say this ({share:.0%} of its words appear)."}
