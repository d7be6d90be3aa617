"""``FiltersConfig``: every threshold of the verification filters, validated from the recipe's ``[filters]``.

Strict (unknown keys and wrongly typed values, e.g. "yes" for a boolean, are errors) for the same
reason as the rest of the recipe: a misspelt threshold would silently fall back to its default and
publish a differently filtered dataset. ``load_recipe``
finds this model by name and turns a validation error into one line, e.g.
``builders/x.toml: filters.min_grounding: unknown key``.

The table is flat on purpose: a recipe author reads ``min_grounding_score = 0.9`` without having to
know which module implements it. Defaults are the values the package is tested with.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FiltersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # --- grounding of descriptions (stage "describe")
    min_grounding_score: float = Field(
        default=0.9, ge=0, le=1, description="A persona whose share of supported claims is lower is regenerated."
    )
    max_regenerations: int = Field(
        default=2, ge=0, le=5, description="New describe samples tried before a low-grounding persona is dropped."
    )
    background_min_overlap: float = Field(
        default=0.6, ge=0, le=1, description="Share of a background claim's content words found in its evidence."
    )
    preference_min_overlap: float = Field(
        default=0.3, ge=0, le=1, description="Softer share for preferences (inferences), which must still share topic."
    )
    preference_min_shared_words: int = Field(
        default=2, ge=1, description="Content words a preference must share with its evidence (its topic)."
    )
    llm_entailment: bool = Field(default=False, description="Also ask an LLM if the cited text entails each claim.")
    entailment_stage: str = Field(
        default="judge", description="Recipe stage whose endpoint/model answers the entailment check."
    )

    # --- questions (stage "questions")
    question_min_chars: int = Field(default=12, ge=1)
    question_max_chars: int = Field(default=400, ge=1)
    question_min_words: int = Field(default=3, ge=1)
    question_max_words: int = Field(default=70, ge=1)
    shingle_size: int = Field(default=5, ge=2, le=12, description="Character n-gram size of near-duplicate checks.")
    question_near_duplicate: float = Field(
        default=0.7, gt=0, le=1, description="Char n-gram Jaccard at or above which a later question is a duplicate."
    )
    question_embed_dedupe: bool = Field(
        default=False, description="Also drop questions whose embedding cosine to an earlier one is high."
    )
    question_embed_cosine: float = Field(default=0.95, gt=0, le=1)
    category_aliases: dict[str, list[str]] = Field(
        default_factory=dict, description="Extra obvious forms of a category name, e.g. ketogenic = ['keto']."
    )

    # --- answers (stage "respond")
    answer_min_words: int = Field(default=5, ge=1)
    answer_max_words: int = Field(default=800, ge=1)
    answer_near_duplicate: float = Field(
        default=0.9, gt=0, le=1, description="Char n-gram Jaccard between candidates of one question."
    )

    # --- pairs (stages "judge" and "split")
    min_judge_agreement: float = Field(
        default=0.75,
        ge=0,
        le=1,
        description="Judgments below are re-judged, then dropped. With 4 candidates the chosen one has 4 votes: 0.75 "
        "passes a chosen whose other match was a coin toss after a position-biased pair of votes; 0.8 re-judges those.",
    )
    max_rejudges: int = Field(default=1, ge=0, le=5)
    drop_non_divergent: bool = Field(
        default=False, description="Drop divergent pairs whose axis members all chose the same answer."
    )
    balance_length: bool = Field(
        default=False, description="Drop pairs (seeded) until the chosen-longer share is inside the band."
    )
    length_band: float = Field(default=0.6, gt=0.5, lt=1, description="Allowed chosen-longer share: [1 - band, band].")
    balance_seed: int = 0

    @model_validator(mode="after")
    def _bounds(self) -> FiltersConfig:
        if self.question_min_chars > self.question_max_chars:
            raise ValueError("question_min_chars: must be <= question_max_chars")
        if self.question_min_words > self.question_max_words:
            raise ValueError("question_min_words: must be <= question_max_words")
        if self.answer_min_words > self.answer_max_words:
            raise ValueError("answer_min_words: must be <= answer_max_words")
        return self


def filters_config(recipe: object) -> FiltersConfig:
    """The recipe's validated filter settings (``load_recipe`` stores them back as a plain dict)."""
    raw = getattr(recipe, "filters", None) or {}
    return raw if isinstance(raw, FiltersConfig) else FiltersConfig.model_validate(raw)
