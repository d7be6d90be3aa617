"""The one list of stages: what each reads, writes, calls, is fingerprinted by and is filtered by.

Pipeline order, stage fingerprints, recipe validation, the preflight, the filters hook, the no-data report,
per-stage tables and the runner all read :data:`STAGES`; nothing else spells the list out. In the style of
distilabel's tasks (``steps/tasks/base.py``: inputs, outputs, a flag for offline batch), a :class:`Stage`
declares

- ``name`` (its work folder), ``row`` (the model of its ``rows.jsonl``) and ``id_field`` (the row id);
- ``inputs``: the stages whose rows it reads (by name; the runner hands them over typed, see :class:`Upstream`);
- ``calls``: the recipe ``[stages.X]`` specs whose LLM calls it makes (``embed`` serves ``respond``);
- ``templates`` and ``settings``: the prompt templates and dotted recipe settings that enter its fingerprint;
- ``filters``: the verification filters run on its rows by default, in order (built from the recipe's
  ``[filters]``); ``optional_filters`` the ones a recipe may add; a recipe's ``[stage_filters]`` may list the
  stage's filters instead (``verify/listing.py``);
- ``deferrable``: whether its LLM calls may wait for an offline batch (issue 13) instead of being answered now;
- ``run``: ``await run(ctx, upstream) -> rows``;
- ``enabled``: whether the recipe runs it (an optional stage such as ``reward``; None = always). A stage the
  recipe leaves off is skipped everywhere the registry is read (no folder, no fingerprint link, no table line),
  so a recipe without it builds the same bytes as before the stage existed.

Adding a stage: its module (``run`` and row model), its template(s), one entry here. See docs/build.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from wikipersona_data.errors import ConfigError, InputError
from wikipersona_data.stages import describe, judge, personas, prefixes, questions, respond, reward, split
from wikipersona_data.stages import estimate as estimates
from wikipersona_data.stages.context import BuildContext
from wikipersona_data.stages.recipe import Recipe
from wikipersona_data.stages.rows import (
    CandidateRow,
    DescriptionRow,
    JudgmentRow,
    PairRow,
    PersonaRow,
    PrefixRow,
    QuestionRow,
)
from wikipersona_data.verify.answers import (
    AnswerEmptyFilter,
    AnswerLeakFilter,
    AnswerLengthFilter,
    CandidateDuplicateFilter,
    RefusalFilter,
    TruncationFilter,
)
from wikipersona_data.verify.base import Filter
from wikipersona_data.verify.config import FiltersConfig
from wikipersona_data.verify.grounding import GroundingFilter
from wikipersona_data.verify.listing import Listing, listed_filters
from wikipersona_data.verify.pairs import (
    CascadeFilter,
    DistinctAnswersFilter,
    DivergenceFilter,
    JudgeAgreementFilter,
    LengthBalanceFilter,
    PrefixTrainOnlyFilter,
)
from wikipersona_data.verify.questions import (
    AnswerableFilter,
    CategoryLeakFilter,
    IdentityLeakFilter,
    QuestionDuplicateFilter,
    QuestionLengthFilter,
)
from wikipersona_data.verify.safety import TextSafetyFilter
from wikipersona_data.wiki.biography import Biography

RowT = TypeVar("RowT", bound=BaseModel)


@dataclass
class Extension:
    """A build restricted to added personas, the release's rows frozen (``wikipersona extend``).

    The stages run in the extension's own folder. ``recipe`` is the recipe restricted to the added titles (the
    personas stage resolves only them); ``base`` holds the release's rows as the runner gave them for the
    build (``run_stages`` output); ``released_split`` maps each released divergent question to its split;
    ``old_personas`` are the release's persona rows (their folds stay put)."""

    recipe: Recipe
    base: dict[str, Any]
    released_split: dict[str, str]
    old_personas: list[dict[str, Any]]
    reused: set[str] = field(default_factory=set)
    """Divergent question ids of the release the added personas are judged on (set by the questions stage)."""

    frozen_visible: ClassVar[tuple[str, ...]] = ("personas", "describe")
    """Stages whose released rows later filters see beside the new ones (everyone's names and grounding)."""


@dataclass
class Upstream:
    """The rows of the stages run so far, handed to the next stage typed by the stage that made them.

    ``biographies`` (persona id -> parsed article) come with the personas stage: several stages and
    filters read the article text, and parsing it twice would be waste. ``folds`` (persona id -> fold)
    come with the split stage. ``scope`` is None for a build, an :class:`Extension` for an extend."""

    scope: Extension | None = None
    rows: dict[str, list[Any]] = field(default_factory=dict)
    biographies: dict[str, Biography] = field(default_factory=dict)
    folds: dict[str, int] = field(default_factory=dict)

    def of(self, stage: Stage[RowT]) -> list[RowT]:
        if stage.name not in self.rows:
            raise KeyError(f"stage {stage.name!r} has not run yet (declare it in inputs)")
        return self.rows[stage.name]

    def shared(self, stage: Stage[Any]) -> list[Any]:
        """What later filters see of a stage: its rows, plus the release's in an extension where declared."""
        rows = self.rows[stage.name]
        if self.scope is not None and stage.name in Extension.frozen_visible:
            return [*self.scope.base[stage.shared_as], *rows]
        return rows


@dataclass(frozen=True)
class Stage(Generic[RowT]):
    name: str
    row: type[RowT]
    id_field: str
    shared_as: str
    """Name under which its rows (by id) reach later stages' filters (``BuildContext.shared``)."""
    inputs: tuple[str, ...]
    calls: tuple[str, ...]
    templates: tuple[str, ...]
    settings: tuple[str, ...]
    filters: Callable[[FiltersConfig], list[Filter]]
    run: Callable[[BuildContext, Upstream], Awaitable[list[RowT]]]
    deferrable: bool = False
    optional_filters: tuple[type[Filter], ...] = ()
    """Filters off by default that a recipe's ``[stage_filters]`` may list for this stage."""
    estimate: Callable[[estimates.LossFree], list[estimates.CallGroup]] | None = None
    """The calls a loss-free build of this stage makes (``wikipersona estimate``); None: it calls no LLM."""
    enabled: Callable[[Recipe], bool] | None = None
    """Whether a recipe runs this stage (None: every recipe does)."""

    def runs_for(self, recipe: Recipe) -> bool:
        return self.enabled is None or self.enabled(recipe)

    def catalog(self) -> tuple[type[Filter], ...]:
        """The filters a recipe may list for this stage: its defaults, then its optional ones."""
        defaults = tuple(type(f) for f in self.filters(FiltersConfig()))
        return (*defaults, *(c for c in self.optional_filters if c not in defaults))

    def filter_list(self, cfg: FiltersConfig, listing: Listing | None = None, *, where: str = "") -> list[Filter]:
        """Its filters in order: the recipe's listing for the stage if it has one, else the defaults."""
        if listing is None:
            return self.filters(cfg)
        listed = listed_filters(self.name, listing, self.catalog(), cfg, where=where)
        defaults = self.filters(cfg)
        if (
            defaults
            and defaults[0].name == TextSafetyFilter.name
            and (not listed or listed[0].name != defaults[0].name)
        ):
            raise ConfigError(
                f"{where}stage_filters.{self.name}: must start with {TextSafetyFilter.name!r} (secrets are masked "
                "before any later filter can echo text in a detail)"
            )
        return listed

    def regenerate_on(self, cfg: FiltersConfig, listing: Listing | None = None) -> frozenset[str]:
        """Drop reasons of its filters that ask for a new sample instead of a drop (a filter property)."""
        return frozenset(r for f in self.filter_list(cfg, listing) for r in f.regenerate_on)


# ------------------------------------------------------------------------------------------ run adapters


async def _personas(ctx: BuildContext, up: Upstream) -> list[PersonaRow]:
    scoped = ctx if up.scope is None else dataclasses.replace(ctx, recipe=up.scope.recipe)
    rows = await personas.run(scoped)
    up.biographies = {p.persona_id: personas.get_biography(ctx, p.wiki_title) for p in rows}
    ctx.shared["biographies"] = up.biographies
    return rows


def described_personas(up: Upstream) -> list[PersonaRow]:
    """Personas with a grounded description: no description, no data (every stage after describe)."""
    described = {d.persona_id for d in up.of(DESCRIBE)}
    return [p for p in up.of(PERSONAS) if p.persona_id in described]


async def _describe(ctx: BuildContext, up: Upstream) -> list[DescriptionRow]:
    rows = await describe.run(ctx, up.of(PERSONAS), up.biographies)
    if up.scope is not None:  # an added persona without a grounded description cannot be added
        described = {d.persona_id for d in rows}
        for p in up.of(PERSONAS):
            if p.persona_id not in described:
                raise InputError(
                    f"--persona {p.requested_titles[0]!r}: no description passed the grounding filters "
                    f"(see {ctx.work_dir / 'describe' / 'rejects.jsonl'}); nothing written"
                )
    return rows


async def _questions(ctx: BuildContext, up: Upstream) -> list[QuestionRow]:
    if up.scope is None:
        return await questions.run(ctx, described_personas(up), up.of(DESCRIBE))
    # added personas get personal questions, and are judged on the release's divergent questions of their axes
    personal = await questions.run(ctx, up.of(PERSONAS), up.of(DESCRIBE), divergent=False)
    axes = {m.axis for p in up.of(PERSONAS) for m in p.axes}
    base: list[QuestionRow] = up.scope.base["questions"]
    reused = [
        q
        for q in base
        if q.question_type == "divergent" and q.axis in axes and q.question_id in up.scope.released_split
    ]
    up.scope.reused = {q.question_id for q in reused}
    return [*personal, *reused]


async def _respond(ctx: BuildContext, up: Upstream) -> list[CandidateRow]:
    if up.scope is None:
        return await respond.run(ctx, up.of(QUESTIONS))
    reused = up.scope.reused  # their candidates are the release's: the same ones the other members were judged on
    new = await respond.run(ctx, [q for q in up.of(QUESTIONS) if q.question_id not in reused])
    base: list[CandidateRow] = up.scope.base["candidates"]
    return [*new, *(c for c in base if c.question_id in reused)]


async def _reward(ctx: BuildContext, up: Upstream) -> list[CandidateRow]:
    candidates = up.of(RESPOND)
    if up.scope is None:
        return await reward.run(ctx, up.of(QUESTIONS), candidates)
    reused = up.scope.reused  # the release's candidates of its divergent questions: already scored and banded
    new = await reward.run(ctx, up.of(QUESTIONS), [c for c in candidates if c.question_id not in reused])
    return [*new, *(c for c in candidates if c.question_id in reused)]


def candidates(up: Upstream) -> list[CandidateRow]:
    """The selected candidates: the reward stage's when the recipe has the band, else respond's."""
    return up.rows[REWARD.name] if REWARD.name in up.rows else up.of(RESPOND)


async def _judge(ctx: BuildContext, up: Upstream) -> list[JudgmentRow]:
    return await judge.run(ctx, described_personas(up), up.of(DESCRIBE), up.of(QUESTIONS), candidates(up))


async def _split(ctx: BuildContext, up: Upstream) -> list[PairRow]:
    people = described_personas(up)
    if up.scope is None:
        up.folds = split.persona_folds(ctx, people)
        return await split.run(ctx, people, up.of(QUESTIONS), candidates(up), up.of(JUDGE))
    # the release's divergent questions keep their split; added personas take folds no existing persona leaves
    by_q = {q.question_id: q for q in up.of(QUESTIONS)}
    personal_test = {q for q in split.test_questions(ctx, up.of(JUDGE), by_q) if by_q[q].question_type == "personal"}
    test = personal_test | {q for q, s in up.scope.released_split.items() if s == "test"}
    k, seed = ctx.recipe.split.persona_folds, ctx.recipe.seeds.folds
    up.folds = split.assign_folds(up.scope.old_personas, people, k, seed)
    return await split.run(ctx, people, up.of(QUESTIONS), candidates(up), up.of(JUDGE), test=test, folds=up.folds)


async def _prefixes(ctx: BuildContext, up: Upstream) -> list[PrefixRow]:
    return await prefixes.run(ctx, described_personas(up), up.of(DESCRIBE), up.of(SPLIT))


# ------------------------------------------------------------------------------------------ the stages
# Filters run in the listed order (cheap row checks before group checks); every stage that makes text starts
# with the text-safety filter, so no later filter echoes a secret in a detail.

PERSONAS: Stage[PersonaRow] = Stage(
    name="personas",
    row=PersonaRow,
    id_field="persona_id",
    shared_as="personas",
    inputs=(),
    calls=("personas",),
    templates=("personas_candidates", "personas_evidence"),
    settings=("axes", "seeds.personas"),
    filters=lambda cfg: [TextSafetyFilter()],
    run=_personas,
    estimate=estimates.personas_calls,
)
DESCRIBE: Stage[DescriptionRow] = Stage(
    name="describe",
    row=DescriptionRow,
    id_field="persona_id",
    shared_as="descriptions",
    inputs=("personas",),
    calls=("describe",),
    templates=("describe",),
    settings=("counts.description_max_sentences", "seeds.describe"),
    filters=lambda cfg: [TextSafetyFilter(), GroundingFilter(cfg)],
    run=_describe,
    estimate=estimates.describe_calls,
    deferrable=True,
)
QUESTIONS: Stage[QuestionRow] = Stage(
    name="questions",
    row=QuestionRow,
    id_field="question_id",
    shared_as="questions",
    inputs=("personas", "describe"),
    calls=("questions",),
    templates=("questions_personal", "questions_divergent"),
    settings=(
        "counts.personal_questions",
        "counts.divergent_questions",
        "counts.question_batch",
        "counts.max_question_batches",
        "seeds.questions",
    ),
    filters=lambda cfg: [
        TextSafetyFilter(),
        QuestionLengthFilter(cfg),
        AnswerableFilter(),
        IdentityLeakFilter(),
        CategoryLeakFilter(cfg),
        QuestionDuplicateFilter(cfg),
    ],
    run=_questions,
    estimate=estimates.questions_calls,
    deferrable=True,
)
RESPOND: Stage[CandidateRow] = Stage(
    name="respond",
    row=CandidateRow,
    id_field="candidate_id",
    shared_as="candidates",
    inputs=("questions",),
    calls=("respond", "embed"),
    templates=("respond", "respond_categories"),
    settings=("axes", "counts.candidates_generated", "counts.candidates_kept", "seeds.respond", "seeds.select"),
    filters=lambda cfg: [
        TextSafetyFilter(),
        AnswerEmptyFilter(),
        AnswerLengthFilter(cfg),
        RefusalFilter(),
        TruncationFilter(),
        AnswerLeakFilter(cfg),
        CandidateDuplicateFilter(cfg),
    ],
    run=_respond,
    estimate=estimates.respond_calls,
    deferrable=True,
)
REWARD: Stage[CandidateRow] = Stage(
    name="reward",
    row=CandidateRow,
    id_field="candidate_id",
    shared_as="candidates",  # later stages and filters see the banded, selected candidates
    inputs=("questions", "respond"),
    calls=("reward", "embed"),
    templates=(),
    settings=("counts.candidates_kept", "seeds.select"),
    filters=lambda cfg: [],
    run=_reward,
    estimate=estimates.reward_calls,
    enabled=lambda recipe: recipe.stages.reward is not None,
)
JUDGE: Stage[JudgmentRow] = Stage(
    name="judge",
    row=JudgmentRow,
    id_field="judgment_id",
    shared_as="judgments",
    inputs=("personas", "describe", "questions", "respond", "reward"),
    calls=("judge",),
    templates=("judge",),
    settings=("judge", "seeds.judge"),
    filters=lambda cfg: [TextSafetyFilter(), CascadeFilter(), JudgeAgreementFilter(cfg)],
    run=_judge,
    estimate=estimates.judge_calls,
    deferrable=True,
)
SPLIT: Stage[PairRow] = Stage(
    name="split",
    row=PairRow,
    id_field="pair_id",
    shared_as="pairs",
    inputs=("personas", "describe", "questions", "respond", "reward", "judge"),
    calls=(),
    templates=(),
    settings=("split", "seeds.split", "seeds.folds"),
    filters=lambda cfg: [
        CascadeFilter(),
        DistinctAnswersFilter(),
        DivergenceFilter(cfg),
        *([LengthBalanceFilter(cfg)] if cfg.balance_length else []),
    ],
    optional_filters=(LengthBalanceFilter,),
    run=_split,
)
PREFIXES: Stage[PrefixRow] = Stage(
    name="prefixes",
    row=PrefixRow,
    id_field="persona_id",
    shared_as="prefixes",
    inputs=("personas", "describe", "split"),
    calls=("prefixes",),
    templates=("prefixes_infer",),
    settings=("counts.inference_shots", "counts.fewshot_shots", "seeds.prefixes"),
    filters=lambda cfg: [TextSafetyFilter(), CascadeFilter(), PrefixTrainOnlyFilter()],
    run=_prefixes,
    estimate=estimates.prefixes_calls,
    deferrable=True,
)

STAGES: tuple[Stage[Any], ...] = (PERSONAS, DESCRIBE, QUESTIONS, RESPOND, REWARD, JUDGE, SPLIT, PREFIXES)
ORDER: tuple[str, ...] = tuple(s.name for s in STAGES)
RESIDENT: frozenset[str] = frozenset({"personas", "describe", "split", "prefixes"})
"""Stages whose rows stay in memory for the whole build: the release is made of them and the filters read
them by id (``personas``, ``descriptions``, ``pairs``); one or a few rows per persona. Every other stage's rows
are left on disk once no later stage lists it in ``inputs`` (``pipeline._leave_on_disk``)."""
BY_NAME: dict[str, Stage[Any]] = {s.name: s for s in STAGES}


def get(name: str) -> Stage[Any]:
    return BY_NAME[name]


def deferrable_stages() -> frozenset[str]:
    """Stages whose calls may wait for a batch (``llm/deferral.py``); the others' calls are always sent now."""
    return frozenset(s.name for s in STAGES if s.deferrable)


def check_stage_filters(recipe: Recipe) -> None:
    """A recipe's ``[stage_filters]``: known stages, and each listing builds (one ``ConfigError`` line if not)."""
    from wikipersona_data.verify.config import filters_config

    where = f"{recipe.source}: " if recipe.source else ""
    for name, listing in recipe.stage_filters.items():
        if name not in BY_NAME:
            raise ConfigError(f"{where}stage_filters.{name}: unknown stage (stages: {', '.join(ORDER)})")
        BY_NAME[name].filter_list(filters_config(recipe), listing, where=where)


def active(recipe: Recipe) -> tuple[Stage[Any], ...]:
    """The stages this recipe runs, in order (the optional ones it leaves off are not there)."""
    return tuple(s for s in STAGES if s.runs_for(recipe))


def call_specs() -> tuple[str, ...]:
    """The recipe's ``[stages.X]`` specs in pipeline order (``embed`` right after ``respond``, which uses it)."""
    return tuple(dict.fromkeys(spec for s in STAGES for spec in s.calls))


def display_order() -> tuple[str, ...]:
    """Stages and call specs as people read them in tables: each stage, then the specs it calls that are not
    stages themselves (``respond``, ``embed``)."""
    return tuple(dict.fromkeys(n for s in STAGES for n in (s.name, *s.calls)))
