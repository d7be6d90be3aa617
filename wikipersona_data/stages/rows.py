"""Row models of every stage's JSONL (``work/<recipe>/<stage>/rows.jsonl``).

These are the contract between the generation stages, the verification filters (``verify/``) and the
release assembly: a filter receives these rows, keeps or drops them with a reason, and may fill the
fields marked "set by filters" (``None`` until a filter has looked). Every row has a stable,
content-derived id (see ``ids.py``) so re-running a stage only computes the rows whose id is missing,
and every LLM-made field carries the call keys that produced it (provenance; the call cache can
replay them without paying twice).

Flow: PersonaRow -> DescriptionRow -> QuestionRow -> CandidateRow -> JudgmentRow -> PairRow
(+ SplitRow) -> PrefixRow. A failed LLM call is never data: it becomes a RejectRow.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

QuestionType = Literal["personal", "divergent"]
ClaimKind = Literal["background", "preference"]
Split = Literal["train", "test"]


class _Row(BaseModel):
    """Strict rows: a typo in a field name is a bug, not a new column."""

    model_config = ConfigDict(extra="forbid")


class _OptionalColumns(_Row):
    """Rows with columns only an optional stage fills (the reward band): left out of the JSON while unset,
    so a build without that stage writes the same bytes as before the columns existed."""

    optional_columns: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name in self.optional_columns:
                if data.get(name) is None:
                    data.pop(name, None)
        return data


class Provenance(_Row):
    """Where an LLM-made value came from; enough to find the cached call again."""

    endpoint: str = Field(description="Recipe endpoint name.")
    model: str = Field(description="Model requested in the recipe.")
    served_model: str | None = Field(default=None, description="Model the server said it used (None if not reported).")
    call_keys: list[str] = Field(
        default_factory=list,
        description="Call-cache keys of all attempts (re-asks too); a candidate's start with its categories call.",
    )
    template: str = Field(description="Prompt template file name, e.g. 'describe.md'.")
    template_sha256: str
    sample_idx: int = 0


# ---------------------------------------------------------------- 1. personas


class AxisMembership(_Row):
    axis: str
    category: str
    source: Literal["recipe", "auto"] = Field(description="Listed in the recipe, or picked by automatic selection.")
    evidence: list[str] = Field(
        default_factory=list, description="Sentence ids the LLM cited for the category (auto selection only)."
    )


class PersonaRow(_Row):
    """A resolved, living person of the dump with their axis categories. One row per persona_id."""

    persona_id: str = Field(description="slug(canonical title); stable across revisions.")
    name: str = Field(description="Display name (the article title without disambiguation).")
    wiki_title: str = Field(description="Canonical title after redirects.")
    requested_titles: list[str] = Field(description="Titles as written in the recipe / proposed by the LLM.")
    wiki_page_id: int
    wiki_revision_id: int | None = None
    wiki_url: str
    birth_year: int | None = None
    short_description: str | None = None
    fame: float | None = Field(default=None, description="Fame signal (scan table or article size).")
    axes: list[AxisMembership]


# ---------------------------------------------------------------- 2. describe


class Claim(_Row):
    """One statement of a grounded description. ``evidence`` cites Biography sentence ids."""

    claim_id: str = Field(description="'<persona_id>/c<k>', k = position in the description.")
    kind: ClaimKind
    text: str
    evidence: list[str] = Field(description="Biography sentence ids the claim rests on (preferences: inferred from).")
    evidence_exists: bool = Field(description="Every cited id exists in the article (structural check at describe).")
    supported: bool | None = Field(default=None, description="Set by filters: the cited text supports the claim.")
    support_reason: str | None = Field(default=None, description="Set by filters: why (un)supported.")


class DescriptionRow(_Row):
    """A two-part description (background, preferences) whose every claim cites the article."""

    persona_id: str
    wiki_revision_id: int | None = None
    bio: str = Field(description="Background claims joined with spaces.")
    preferences: str = Field(description="Preference claims joined with spaces.")
    claims: list[Claim]
    cited_sentences: dict[str, str] = Field(
        description="Sentence id -> text as shown to the LLM, for every id cited that exists; filters check against it."
    )
    grounding_score: float | None = Field(default=None, description="Set by filters: share of supported claims.")
    sentences_left_out: int = Field(
        default=0,
        description="Article sentences the recipe allowed but the endpoint's context could not fit: trimmed "
        "(least relevant first) before the call was sent.",
    )
    provenance: Provenance


# ---------------------------------------------------------------- 3. questions


class QuestionRow(_Row):
    """A personal question (one persona) or a divergent one (shared by all members of an axis)."""

    question_id: str = Field(description="hash(question_type, scope, normalised text): exact duplicates collapse.")
    question_type: QuestionType
    persona_id: str | None = Field(description="Personal: the persona; divergent: None.")
    axis: str | None = Field(description="Divergent: the axis; personal: None.")
    text: str
    batch: int = Field(description="Index of the generation batch (the call's sample_idx).")
    position: int = Field(description="Position within the batch (keeps order deterministic).")
    provenance: Provenance


# ---------------------------------------------------------------- 4. respond


class CandidateRow(_OptionalColumns):
    """A persona-blind answer written for one category (never for a named persona)."""

    candidate_id: str = Field(description="hash(question_id, k, text).")
    question_id: str
    k: int = Field(description="Index among the candidates generated for the question.")
    axis: str | None = Field(description="Axis of the category the answer was written for.")
    category: str = Field(description="The category the generator assumed for the asker (not disclosed in the text).")
    text: str
    kept: bool = Field(description="Selected by the diversity step.")
    selection_rank: int | None = Field(description="Pick order of the diversity step (0 = seed); None if dropped.")
    selection_reason: str = Field(description="Why kept or dropped, e.g. 'seed (seeded start)' / 'farthest: d=0.41'.")
    provenance: Provenance
    reward_score: float | None = Field(default=None, description="Reward model's score (reward stage only).")
    reward_rank: int | None = Field(
        default=None, description="Rank by reward among the question's scored candidates (0 = highest)."
    )
    in_band: bool | None = Field(default=None, description="Inside the reward band that went on to selection.")

    optional_columns: ClassVar[tuple[str, ...]] = ("reward_score", "reward_rank", "in_band")


# ---------------------------------------------------------------- 5. judge


class Vote(_Row):
    """One judge call: candidate ``first`` shown as (a), ``second`` as (b)."""

    first: str
    second: str
    order: Literal["ab", "ba"] = Field(description="'ab' = the match's original order, 'ba' = swapped.")
    winner: str = Field(description="Candidate id, or 'tie'.")
    rationale: str
    call_keys: list[str] = Field(default_factory=list)


class Match(_Row):
    round: int = Field(description="0-based tournament round.")
    a: str
    b: str
    votes: list[Vote]
    outcome: str = Field(description="Candidate id if the votes agree on it, else 'tie'.")
    position_biased: bool = Field(description="The two orders each preferred the candidate shown in the same slot.")
    advanced: str = Field(description="Candidate id that went on (outcome, or the seeded tie-break).")
    decided_by: Literal["votes", "tiebreak"]


class JudgmentRow(_Row):
    """The judge's verdict for one (persona, question): a tournament over the kept candidates."""

    judgment_id: str = Field(description="hash(persona_id, question_id).")
    persona_id: str
    question_id: str
    question_type: QuestionType
    axis: str | None
    category: str | None = Field(description="The persona's category on ``axis`` (divergent), else None.")
    persona_view: Literal["name", "description", "both"]
    candidate_ids: list[str]
    matches: list[Match]
    chosen_id: str
    rejected_id: str
    rejected_strategy: Literal["random", "worst"]
    judge_agreement: float = Field(description="Share of votes in matches of the chosen one that pick it (0..1).")
    position_biased_matches: int
    provenance: Provenance


# ---------------------------------------------------------------- 6. split -> pairs


class PairRow(_OptionalColumns):
    """A preference pair with its split: the release's PAIRS row before formatting as messages."""

    pair_id: str = Field(description="hash(persona_id, question_id).")
    persona_id: str
    persona: str = Field(description="Display name.")
    question_id: str
    question_type: QuestionType
    axis: str | None
    category: str | None
    prompt: str
    chosen: str
    rejected: str
    chosen_id: str
    rejected_id: str
    judge_agreement: float
    judge_model: str
    judge_votes: list[Vote]
    generator_model: str
    split: Split
    persona_fold: int
    chosen_reward: float | None = Field(default=None, description="Reward score of chosen (reward stage only).")
    rejected_reward: float | None = Field(default=None, description="Reward score of rejected (reward stage only).")

    optional_columns: ClassVar[tuple[str, ...]] = ("chosen_reward", "rejected_reward")


# ---------------------------------------------------------------- 7. prefixes


class PrefixRow(_Row):
    """Ways to condition a model on a persona; data-derived ones use TRAIN pairs only."""

    persona_id: str
    prefix_name: str
    prefix_description: str
    prefix_inferred: str
    prefix_fewshot: str
    inferred_from: list[str] = Field(description="pair_ids (train only) shown to the persona-inference call.")
    fewshot_from: list[str] = Field(description="pair_ids (train only) used as few-shot examples.")
    provenance: Provenance


# ---------------------------------------------------------------- rejects


class RejectRow(_Row):
    """A row that is not data: an LLM failure after re-asks, or a drop by a filter."""

    stage: str
    id: str = Field(description="Id of the row that would have been written (or of the request).")
    reason: str = Field(description="Short machine-friendly reason, e.g. 'llm_failure', 'not_living'.")
    detail: str = ""
    call_keys: list[str] = Field(default_factory=list)
