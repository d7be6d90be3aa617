"""``wikipersona estimate``: calls, tokens and cost per stage from the recipe alone, before spending.

Call counts follow from the recipe's counts (the same arithmetic the stages do, assuming no losses:
every batch is usable, every candidate survives). Prompt tokens come from rendering each stage's real
template with stand-in values of typical size (an article of ``description_max_sentences`` sentences
of ~25 words, answers of about half the respond stage's ``max_tokens``) and the ledger's
chars/4 heuristic; output is costed at each stage's ``max_tokens`` (the most a call can cost). So
the figure is an upper bound for a loss-free build; re-asks and top-up batches come on top.

Each figure is given three ways: online at list prices, through a batch API (``BATCH_PRICE_FACTOR`` of
it), and through a batch API with the expected prompt-cache hits. The cache share is arithmetic, not a
constant: every stage names its prompt's shared leading messages (rendered from the real templates, e.g.
system text + persona card for the judge) and how many calls share each; the endpoint profile's cache
rule (``Profile.prompt_cache``: OpenAI caches from 1024 tokens in 128-token steps, vLLM 16-token blocks)
turns that into cached tokens, the first call of every group paying in full (:func:`expected_cached`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from wikipersona_data.stages.recipe import AxisSpec, Recipe
from wikipersona_data.stages.templates import load_template

WORDS_PER_SENTENCE = 25
WORDS_PER_QUESTION = 20


def _text(words: int) -> str:
    return " ".join(["lorem"] * max(1, words))


def _prompt_tokens(template: str, **values: Any) -> int:
    from wikipersona_data.llm.ledger import estimate_tokens

    return estimate_tokens(load_template(template).render(**values))


def _leading_tokens(template: str, **values: Any) -> list[int]:
    """Prompt tokens of the first 1, 2, ... messages of the rendered template (the last one: the whole prompt)."""
    from wikipersona_data.llm.ledger import estimate_tokens

    messages = load_template(template).render(**values)
    return [estimate_tokens(messages[: i + 1]) for i in range(len(messages))]


CacheLevel = tuple[int, int]
"""``(leading prompt tokens, calls sharing them)``: one shared prefix of a call group, e.g. the judge's system
message and persona card (tokens) shared by all judge calls of one persona (calls)."""

CallGroup = tuple[Any, ...]
"""``(stage, model, prompt_tokens, max_output_tokens, calls[, levels])``: equal calls a loss-free build makes;
``levels`` (a tuple of :data:`CacheLevel`, widest first) is what their prompts share."""


@dataclass(frozen=True)
class LossFree:
    """What a loss-free build of the recipe makes, as the stages' estimates need it (every batch usable,
    every candidate kept), with stand-in texts of typical size for the prompts."""

    recipe: Recipe
    n_personas: int
    members: dict[str, int]
    divergent_axes: list[AxisSpec]
    answer_words: int
    claims: list[str]
    question: str

    @property
    def q_personal(self) -> int:
        return self.n_personas * self.recipe.counts.personal_questions

    @property
    def q_divergent(self) -> int:
        return len(self.divergent_axes) * self.recipe.counts.divergent_questions

    def group(
        self,
        stage: str,
        n: int,
        tokens: int,
        levels: tuple[CacheLevel, ...] = (),
        schema: type[BaseModel] | None = None,
        schema_shared: bool = True,
    ) -> list[CallGroup]:
        """``n`` calls of ``tokens`` prompt tokens (the rendered messages), plus their reply ``schema`` where the
        stage's server reads it as prompt (:func:`schema_tokens`). The schema leads the prompt, so a schema
        shared by the group lengthens every shared level, and one that differs per call (describe's ``enum``
        of the article's sentence ids) leaves nothing shared."""
        if not n:
            return []
        spec = self.recipe.stage(stage)
        extra = schema_tokens(self.recipe, stage, schema) if schema is not None else 0
        if extra:
            levels = tuple((t + extra, calls) for t, calls in levels) if schema_shared else ()
        return [(stage, spec.model, tokens + extra, spec.max_tokens, n, levels)]


def schema_tokens(recipe: Recipe, stage: str, schema: type[BaseModel]) -> int:
    """Prompt tokens the reply schema adds to each call of ``stage`` on its endpoint: the strict schema as sent,
    where the server counts it (``Profile.schema_in_prompt``: OpenAI, the simulator) or where it is stated in
    the prompt (a server that does not enforce schemas, or ``json_schema = "instructed"``); none where it only
    steers decoding (vLLM, llama.cpp)."""
    endpoint = recipe.endpoints.get(recipe.stage(stage).endpoint)
    return 0 if endpoint is None else schema_prompt_tokens(endpoint.profile, endpoint.json_schema, schema)


def schema_prompt_tokens(profile_name: str, json_schema: str | None, schema: type[BaseModel]) -> int:
    """:func:`schema_tokens` for a server of profile ``profile_name`` with the endpoint's ``json_schema``
    override (``wikipersona evaluate --estimate`` asks it for targets outside the recipe too)."""
    from wikipersona_data.llm.ledger import estimate_tokens
    from wikipersona_data.llm.profiles import get_profile
    from wikipersona_data.llm.structured import strict_schema

    profile = get_profile(profile_name)
    enforced = profile.enforces_json_schema if json_schema is None else json_schema == "enforced"
    if enforced and not profile.schema_in_prompt:
        return 0
    return estimate_tokens(json.dumps(profile.sendable_schema(strict_schema(schema))))


def shared(leading: list[int], calls_sharing: list[float]) -> tuple[CacheLevel, ...]:
    """Cache levels of a prompt whose first ``k+1`` messages (``leading[k]`` tokens) are shared by
    ``calls_sharing[k]`` calls; the last message is the per-call part and is never shared."""
    return tuple((leading[k], max(1, round(n))) for k, n in enumerate(calls_sharing) if k < len(leading) - 1)


def loss_free(recipe: Recipe) -> LossFree:
    members: dict[str, int] = {}
    personas: set[str] = set()
    for axis in recipe.axes:
        n = sum(len(c.personas) for c in axis.categories)
        if axis.auto_select is not None:
            n += axis.auto_select.keep * len(axis.categories)
        members[axis.name] = n
        personas.update(t for c in axis.categories for t in c.personas)
    n_personas = len(personas) + sum(
        a.auto_select.keep * len(a.categories) for a in recipe.axes if a.auto_select is not None
    )
    return LossFree(
        recipe=recipe,
        n_personas=n_personas,
        members=members,
        divergent_axes=[a for a in recipe.axes if members[a.name] >= 2],
        answer_words=max(20, recipe.stage("respond").max_tokens // 2 * 3 // 4),
        claims=[_text(15) for _ in range(12)],
        question=_text(WORDS_PER_QUESTION),
    )


def plan(recipe: Recipe) -> list[CallGroup]:
    """The call groups of a loss-free build, from each registry stage's ``estimate``.

    One tuple per group, never per call, so a recipe asking for 10^9 candidates is priced arithmetically
    (and refused by the budget) instead of building 10^9 tuples first.
    """
    from wikipersona_data.stages import registry  # the registry refers to the functions below

    sizes = loss_free(recipe)
    return [group for stage in registry.active(recipe) if stage.estimate for group in stage.estimate(sizes)]


def personas_calls(sizes: LossFree) -> list[CallGroup]:
    from wikipersona_data.stages.personas import CategoryEvidence, candidates_schema

    out: list[CallGroup] = []
    for axis in sizes.recipe.axes:
        if axis.auto_select is None:
            continue
        sel = axis.auto_select
        lead = _leading_tokens("personas_candidates", axis=axis.name, category="x", n=sel.candidates)
        n = len(axis.categories)
        schema = candidates_schema(sizes.recipe.stage("personas").max_tokens, sel.candidates)
        out += sizes.group("personas", n, lead[-1], shared(lead, [n]), schema)
        sentences = [{"id": f"{i}.0", "text": _text(WORDS_PER_SENTENCE)} for i in range(60)]
        lead = _leading_tokens("personas_evidence", title="x", name="x", axis="x", category="x", sentences=sentences)
        n = len(axis.categories) * sel.candidates  # one article per candidate: only the system text is shared
        out += sizes.group("personas", n, lead[-1], shared(lead, [n]), CategoryEvidence)
    return out


def describe_calls(sizes: LossFree) -> list[CallGroup]:
    from wikipersona_data.stages.describe import description_schema

    n = sizes.recipe.counts.description_max_sentences
    sentences = [{"id": f"{i}.0", "text": _text(WORDS_PER_SENTENCE)} for i in range(n)]
    lead = _leading_tokens(
        "describe",
        title="x",
        name="x",
        sentences=sentences,
        memberships=[],
        min_claims=6,
        max_claims=16,
        claim_words=30,
    )
    schema = description_schema(sizes.recipe.stage("describe").max_tokens, tuple(s["id"] for s in sentences))
    n = sizes.n_personas  # one call per article (a regenerated description would share the article)
    # the schema lists the article's sentence ids and leads the prompt: nothing is shared across articles
    return sizes.group("describe", n, lead[-1], shared(lead, [n, 1]), schema, schema_shared=False)


def questions_calls(sizes: LossFree) -> list[CallGroup]:
    from wikipersona_data.stages.questions import question_schema

    counts = sizes.recipe.counts
    schema = question_schema(sizes.recipe.stage("questions").max_tokens, counts.question_batch)
    batches = math.ceil(counts.personal_questions / counts.question_batch)
    lead = _leading_tokens(
        "questions_personal",
        name="x",
        claims=sizes.claims,
        memberships=[],
        n=counts.question_batch,
        batch=0,
        focus="x",
        question_words=30,
    )
    n = sizes.n_personas * batches  # system + examples shared by all, the card by one persona's batches
    out = sizes.group("questions", n, lead[-1], shared(lead, [n, n, batches]), schema)
    div_batches = math.ceil(counts.divergent_questions / counts.question_batch)
    for axis in sizes.divergent_axes:
        lead = _leading_tokens(
            "questions_divergent",
            axis=axis.name,
            members=[{"name": "x", "category": "x"}] * sizes.members[axis.name],
            categories=[c.name for c in axis.categories],
            n=counts.question_batch,
            batch=0,
            focus="x",
            question_words=30,
        )
        out += sizes.group("questions", div_batches, lead[-1], shared(lead, [div_batches, div_batches]), schema)
    return out


def respond_calls(sizes: LossFree) -> list[CallGroup]:
    from wikipersona_data.stages.respond import answer_schema, categories_schema

    recipe, counts = sizes.recipe, sizes.recipe.counts
    axes_view = [{"name": a.name, "categories": [c.name for c in a.categories]} for a in recipe.axes]
    n_max = max(2, min(8, counts.candidates_generated))  # as stages/respond.py asks
    lead = _leading_tokens("respond_categories", question=sizes.question, axes=axes_view, n_min=2, n_max=n_max)
    n = sizes.q_personal  # system + the recipe's axes shared by all
    out = sizes.group("respond", n, lead[-1], shared(lead, [n, n]), categories_schema(2, n_max))
    lead = _leading_tokens("respond", question=sizes.question, axis="x", category="x", variant=1, style="x")
    n = (sizes.q_personal + sizes.q_divergent) * counts.candidates_generated  # the question: by its candidates
    schema = answer_schema(recipe.stage("respond").max_tokens)
    out += sizes.group("respond", n, lead[-1], shared(lead, [n, counts.candidates_generated]), schema)
    # one embedding call per question for the diversity selection (with a reward band, the reward stage embeds
    # the band instead)
    if recipe.stages.reward is None and sizes.q_personal + sizes.q_divergent:
        tokens = counts.candidates_generated * sizes.answer_words * 4 // 3
        out.append(("respond", recipe.stages.embed.model, tokens, 0, sizes.q_personal + sizes.q_divergent))
    return out


def reward_calls(sizes: LossFree) -> list[CallGroup]:
    """One reward call per candidate (question + answer), then one embedding call of the band per question."""
    recipe, spec = sizes.recipe, sizes.recipe.stages.reward
    questions = sizes.q_personal + sizes.q_divergent
    if spec is None or not questions:
        return []
    from wikipersona_data.llm.ledger import estimate_tokens

    conversation = [
        {"role": "user", "content": sizes.question},
        {"role": "assistant", "content": _text(sizes.answer_words)},
    ]
    out: list[CallGroup] = [
        ("reward", spec.model, estimate_tokens(conversation), 0, questions * recipe.counts.candidates_generated)
    ]
    out.append(("reward", recipe.stages.embed.model, spec.band * sizes.answer_words * 4 // 3, 0, questions))
    return out


def judge_calls(sizes: LossFree) -> list[CallGroup]:
    from wikipersona_data.stages.judge import verdict_schema

    recipe, counts = sizes.recipe, sizes.recipe.counts
    judgments = sizes.q_personal + sum(sizes.members[a.name] * counts.divergent_questions for a in sizes.divergent_axes)
    votes_per = (counts.candidates_kept - 1) * (2 if recipe.judge.both_orders else 1)
    lead = _leading_tokens(
        "judge",
        name="x",
        background=sizes.claims[:6],
        preferences=sizes.claims[6:],
        question=sizes.question,
        answer_a=_text(sizes.answer_words),
        answer_b=_text(sizes.answer_words),
        allow_ties=True,
    )
    n = judgments * votes_per  # the persona card: shared by all of one persona's votes (units run persona-major)
    schema = verdict_schema(recipe.stage("judge").max_tokens, recipe.judge.allow_ties)
    return sizes.group("judge", n, lead[-1], shared(lead, [n, n / max(1, sizes.n_personas)]), schema)


def prefixes_calls(sizes: LossFree) -> list[CallGroup]:
    from wikipersona_data.stages.prefixes import persona_schema

    schema = persona_schema(sizes.recipe.stage("prefixes").max_tokens)
    shot = {"question": sizes.question, "chosen": _text(sizes.answer_words), "rejected": _text(sizes.answer_words)}
    lead = _leading_tokens("prefixes_infer", shots=[shot] * sizes.recipe.counts.inference_shots)
    return sizes.group("prefixes", sizes.n_personas, lead[-1], shared(lead, [sizes.n_personas]), schema)


def cached_tokens(prefix_tokens: int, rule: tuple[int, int] | None) -> int:
    """What a server with ``rule = (min_tokens, block_tokens)`` serves from its cache for a prompt whose first
    ``prefix_tokens`` it has seen: whole blocks, nothing below the minimum (``None``: no cache modelled)."""
    if rule is None:
        return 0
    min_tokens, block = rule
    cached = prefix_tokens // block * block
    return cached if cached >= min_tokens else 0


def expected_cached(calls: int, levels: tuple[CacheLevel, ...], rule: tuple[int, int] | None) -> float:
    """Cached prompt tokens over ``calls`` equal calls whose prompts share ``levels`` (widest first).

    Of the calls sharing a level's prefix, the first one pays for it and the others hit, so the calls whose
    deepest cached level is ``k`` number ``calls/g[k+1] - calls/g[k]`` (``g``: calls per group of the level,
    the deepest level's followers being ``calls - calls/g[K]``). Issuing calls grouped by prefix (what the
    stages do) is what lets a provider's cache keep a group's prefix between its calls."""
    total = 0.0
    for k, (tokens, group) in enumerate(levels):
        narrower = levels[k + 1][1] if k + 1 < len(levels) else 1
        hits = calls / narrower - calls / group if group > 1 else 0.0
        total += max(0.0, hits) * cached_tokens(tokens, rule)
    return total


def cache_rule(recipe: Recipe, stage: str) -> tuple[int, int] | None:
    """The prompt-cache rule of the endpoint serving ``stage`` (an embedded simulator's own settings win)."""
    from wikipersona_data.llm.profiles import get_profile

    endpoint = recipe.endpoints.get(recipe.stage(stage).endpoint)
    if endpoint is None:
        return None
    rule = get_profile(endpoint.profile).prompt_cache
    if endpoint.profile == "sim" and rule is not None:
        sim = endpoint.sim
        rule = (int(sim.get("cache_min_tokens", rule[0])), int(sim.get("cache_block_tokens", rule[1])))
    return rule


def row_endpoint(recipe: Recipe, stage: str, model: str) -> str:
    """The endpoint a row's calls go to: the stage's, or the embed stage's for the embedding calls a stage
    makes with the embed model (respond's diversity selection, reward's band)."""
    embed = recipe.stages.embed
    if model != recipe.stage(stage).model and embed is not None and model == embed.model:
        return embed.endpoint
    return recipe.stage(stage).endpoint


def price_modes(recipe: Recipe, stage: str, model: str) -> tuple[str, str]:
    """How a row's calls are bought: ``(as configured, at best through a batch API)``. Only a stage whose calls
    may wait for a batch (``Stage.deferrable``; the reward stage's, its band's embeddings included, are sent at
    once) is bought in its endpoint's ``mode`` (``batch`` or ``offline``), and only a server with a batch API
    (``Profile.batch_api``) sells at the batch price; everything else is ``online``."""
    from wikipersona_data.llm.profiles import get_profile
    from wikipersona_data.stages.registry import deferrable_stages

    endpoint = recipe.endpoints[row_endpoint(recipe, stage, model)]
    if stage not in deferrable_stages():
        return "online", "online"
    return endpoint.mode, "batch" if get_profile(endpoint.profile).batch_api else "online"


def estimate(recipe: Recipe) -> dict[str, Any]:
    """The ledger's estimate table (per stage and model, plus totals) for :func:`plan`, with each row's cost
    online (``cost_usd``), through a batch API where its server has one and the stage may wait for it
    (``batch_cost_usd``; no discount elsewhere), the expected prompt-cache hits (``cached_input_tokens``,
    ``cache_share`` of the input) and both with them (``online_cached_cost_usd``, ``batch_cached_cost_usd``).

    ``configured_cost_usd`` is the figure to plan with: each row bought as the recipe sets its endpoints
    (``mode``: online, batch or offline at the recipe's price for the model), with the expected cache hits;
    the totals add ``modes``, that cost by mode."""
    from wikipersona_data.llm.ledger import Ledger
    from wikipersona_data.stages.pipeline import price_table

    groups = plan(recipe)
    ledger = Ledger(price_table(recipe))
    table = ledger.estimate(groups)
    cached: dict[tuple[str, str], float] = {}
    for group in groups:
        stage, model, calls = group[0], group[1], int(group[4])
        levels = group[5] if len(group) > 5 else ()
        hits = expected_cached(calls, levels, cache_rule(recipe, stage)) if levels else 0.0
        cached[(stage, model)] = cached.get((stage, model), 0.0) + hits
    names = ("batch_cost_usd", "online_cached_cost_usd", "batch_cached_cost_usd", "configured_cost_usd")
    totals: dict[str, Any] = {name: 0.0 for name in names}
    totals["cached"] = 0
    modes: dict[str, float | None] = {}
    for row in table["by_stage_model"]:
        stage, model = row["stage"], row["model"]
        hit = round(cached.get((stage, model), 0.0))
        row["cached_input_tokens"] = hit
        row["cache_share"] = round(hit / row["input_tokens"], 4) if row["input_tokens"] else 0.0
        row["mode"], batch = price_modes(recipe, stage, model)
        prices = {
            "batch_cost_usd": (0, batch),
            "online_cached_cost_usd": (hit, "online"),
            "batch_cached_cost_usd": (hit, batch),
            "configured_cost_usd": (hit, row["mode"]),
        }
        for name, (hits, mode) in prices.items():
            cost = ledger.cost(model, row["input_tokens"], row["max_output_tokens"], hits, mode=mode)
            row[name] = None if cost is None else round(cost, 6)
            totals[name] = None if cost is None or totals[name] is None else totals[name] + cost
        paid, so_far = row["configured_cost_usd"], modes.get(row["mode"], 0.0)
        modes[row["mode"]] = None if paid is None or so_far is None else so_far + paid
        totals["cached"] += hit
    t = table["totals"]
    t["cached_input_tokens"] = totals.pop("cached")
    t["cache_share"] = round(t["cached_input_tokens"] / t["input_tokens"], 4) if t["input_tokens"] else 0.0
    for name, value in totals.items():
        t[name] = None if value is None else round(value, 6)
    t["modes"] = {mode: None if cost is None else round(cost, 6) for mode, cost in sorted(modes.items())}
    t["endpoint_modes"] = {name: spec.mode for name, spec in sorted(recipe.endpoints.items())}
    return table


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def format_estimate(table: dict[str, Any]) -> str:
    """The estimate as a table, stages in pipeline order (as ``build`` and the card list them): upper-bound
    cost online and through a batch API, the expected prompt-cache share and the batch cost with it."""
    from wikipersona_data.stages.order import pipeline_rank

    rows = sorted(table["by_stage_model"], key=lambda r: (pipeline_rank(r["stage"]), r["model"]))
    width = max([22, *(len(r["model"]) + 2 for r in rows)])  # a long model name must not shift the columns
    header = (
        f"{'stage':<10}{'model':<{width}}{'calls':>9}{'input tok':>12}{'max out tok':>12}"
        f"{'online $':>10}{'batch $':>10}{'cache':>7}{'batch+cache $':>15}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['stage']:<10}{row['model']:<{width}}{row['calls']:>9}{row['input_tokens']:>12}"
            f"{row['max_output_tokens']:>12}{_usd(row['cost_usd']):>10}{_usd(row['batch_cost_usd']):>10}"
            f"{row['cache_share']:>7.0%}{_usd(row['batch_cached_cost_usd']):>15}"
        )
    t = table["totals"]
    lines += [
        "-" * len(header),
        f"{'total':<{10 + width}}{t['calls']:>9}{t['input_tokens']:>12}{t['max_output_tokens']:>12}"
        f"{_usd(t['cost_usd']):>10}{_usd(t['batch_cost_usd']):>10}{t['cache_share']:>7.0%}"
        f"{_usd(t['batch_cached_cost_usd']):>15}",
        "cost: upper bound (output at max_tokens); batch: a batch API at 50 % of list prices where the server has "
        "one and the stage can wait for it; cache: share of input tokens the endpoint's prompt cache is expected "
        "to serve (at the cached-input price)",
    ]
    if t["cost_usd"] is None:
        lines.append("n/a: a model has no price in the recipe")
    endpoints = ", ".join(f"{name}: {mode}" for name, mode in t["endpoint_modes"].items())
    by_mode = ", ".join(f"{mode} ${_usd(cost)}" for mode, cost in t["modes"].items())
    lines.append(
        f"as the recipe sets its endpoints ({endpoints}), with the expected cache: "
        f"${_usd(t['configured_cost_usd'])} ({by_mode})"
    )
    return "\n".join(lines)
