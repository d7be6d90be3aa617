"""``wikipersona estimate``: calls, tokens and cost per stage from the recipe alone, before spending.

Call counts follow from the recipe's counts (the same arithmetic the stages do, assuming no losses:
every batch is usable, every candidate survives). Prompt tokens come from rendering each stage's real
template with stand-in values of typical size (an article of ``description_max_sentences`` sentences
of ~25 words, answers of about half the respond stage's ``max_tokens``) and the ledger's
chars/4 heuristic; output is costed at each stage's ``max_tokens`` (the most a call can cost). So
the figure is an upper bound for a loss-free build; re-asks and top-up batches come on top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from wikipersona_data.stages.recipe import AxisSpec, Recipe
from wikipersona_data.stages.templates import load_template

WORDS_PER_SENTENCE = 25
WORDS_PER_QUESTION = 20


def _text(words: int) -> str:
    return " ".join(["lorem"] * max(1, words))


def _prompt_tokens(template: str, **values: Any) -> int:
    from wikipersona_data.llm.ledger import estimate_tokens

    return estimate_tokens(load_template(template).render(**values))


CallGroup = tuple[str, str, int, int, int]
"""``(stage, model, prompt_tokens, max_output_tokens, calls)``: equal calls a loss-free build makes."""


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

    def group(self, stage: str, n: int, tokens: int) -> list[CallGroup]:
        spec = self.recipe.stage(stage)
        return [(stage, spec.model, tokens, spec.max_tokens, n)] if n else []


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
    out: list[CallGroup] = []
    for axis in sizes.recipe.axes:
        if axis.auto_select is None:
            continue
        sel = axis.auto_select
        tokens = _prompt_tokens("personas_candidates", axis=axis.name, category="x", n=sel.candidates)
        out += sizes.group("personas", len(axis.categories), tokens)
        sentences = [{"id": f"{i}.0", "text": _text(WORDS_PER_SENTENCE)} for i in range(60)]
        evidence = _prompt_tokens("personas_evidence", title="x", name="x", axis="x", category="x", sentences=sentences)
        out += sizes.group("personas", len(axis.categories) * sel.candidates, evidence)
    return out


def describe_calls(sizes: LossFree) -> list[CallGroup]:
    n = sizes.recipe.counts.description_max_sentences
    sentences = [{"id": f"{i}.0", "text": _text(WORDS_PER_SENTENCE)} for i in range(n)]
    tokens = _prompt_tokens(
        "describe",
        title="x",
        name="x",
        sentences=sentences,
        memberships=[],
        min_claims=6,
        max_claims=16,
        claim_words=30,
    )
    return sizes.group("describe", sizes.n_personas, tokens)


def questions_calls(sizes: LossFree) -> list[CallGroup]:
    counts = sizes.recipe.counts
    batches = math.ceil(counts.personal_questions / counts.question_batch)
    personal = _prompt_tokens(
        "questions_personal",
        name="x",
        claims=sizes.claims,
        memberships=[],
        n=counts.question_batch,
        batch=0,
        focus="x",
        question_words=30,
    )
    out = sizes.group("questions", sizes.n_personas * batches, personal)
    div_batches = math.ceil(counts.divergent_questions / counts.question_batch)
    for axis in sizes.divergent_axes:
        tokens = _prompt_tokens(
            "questions_divergent",
            axis=axis.name,
            members=[{"name": "x", "category": "x"}] * sizes.members[axis.name],
            categories=[c.name for c in axis.categories],
            n=counts.question_batch,
            batch=0,
            focus="x",
            question_words=30,
        )
        out += sizes.group("questions", div_batches, tokens)
    return out


def respond_calls(sizes: LossFree) -> list[CallGroup]:
    recipe, counts = sizes.recipe, sizes.recipe.counts
    axes_view = [{"name": a.name, "categories": [c.name for c in a.categories]} for a in recipe.axes]
    categories = _prompt_tokens("respond_categories", question=sizes.question, axes=axes_view, n_min=2, n_max=8)
    out = sizes.group("respond", sizes.q_personal, categories)
    answer = _prompt_tokens("respond", question=sizes.question, axis="x", category="x", variant=1, style="x")
    out += sizes.group("respond", (sizes.q_personal + sizes.q_divergent) * counts.candidates_generated, answer)
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
    recipe, counts = sizes.recipe, sizes.recipe.counts
    judgments = sizes.q_personal + sum(sizes.members[a.name] * counts.divergent_questions for a in sizes.divergent_axes)
    votes_per = (counts.candidates_kept - 1) * (2 if recipe.judge.both_orders else 1)
    tokens = _prompt_tokens(
        "judge",
        name="x",
        background=sizes.claims[:6],
        preferences=sizes.claims[6:],
        question=sizes.question,
        answer_a=_text(sizes.answer_words),
        answer_b=_text(sizes.answer_words),
        allow_ties=True,
    )
    return sizes.group("judge", judgments * votes_per, tokens)


def prefixes_calls(sizes: LossFree) -> list[CallGroup]:
    shot = {"question": sizes.question, "chosen": _text(sizes.answer_words), "rejected": _text(sizes.answer_words)}
    tokens = _prompt_tokens("prefixes_infer", shots=[shot] * sizes.recipe.counts.inference_shots)
    return sizes.group("prefixes", sizes.n_personas, tokens)


def estimate(recipe: Recipe) -> dict[str, Any]:
    """The ledger's estimate table (per stage and model, plus totals) for :func:`plan`."""
    from wikipersona_data.llm.ledger import Ledger
    from wikipersona_data.stages.pipeline import price_table

    return Ledger(price_table(recipe)).estimate(plan(recipe))


def format_estimate(table: dict[str, Any]) -> str:
    """The estimate as a table, stages in pipeline order (as ``build`` and the card list them)."""
    from wikipersona_data.stages.order import pipeline_rank

    width = max([22, *(len(r["model"]) + 1 for r in table["by_stage_model"])])  # a long model name (the v1 RM)
    header = f"{'stage':<10}{'model':<{width}}{'calls':>9}{'input tok':>13}{'max out tok':>13}{'cost $ (max)':>14}"
    lines = [header, "-" * len(header)]
    for row in sorted(table["by_stage_model"], key=lambda r: (pipeline_rank(r["stage"]), r["model"])):
        cost = "n/a" if row["cost_usd"] is None else f"{row['cost_usd']:.2f}"
        lines.append(
            f"{row['stage']:<10}{row['model']:<{width}}{row['calls']:>9}{row['input_tokens']:>13}"
            f"{row['max_output_tokens']:>13}{cost:>14}"
        )
    t = table["totals"]
    cost = "n/a (a model has no price)" if t["cost_usd"] is None else f"{t['cost_usd']:.2f}"
    lines += [
        "-" * len(header),
        f"{'total':<{10 + width}}{t['calls']:>9}{t['input_tokens']:>13}{t['max_output_tokens']:>13}{cost:>14}",
    ]
    return "\n".join(lines)
