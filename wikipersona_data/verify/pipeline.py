"""The filters hook of the build: ``apply_filters(stage, rows, context) -> (kept, rejects)``.

``stages/pipeline.py`` imports this function and every stage calls it (through
``BuildContext.apply_filters``) on the rows it made. Here a stage name maps to its list of filters,
built from the recipe's ``[filters]`` table; the step's verdicts are recorded per row in the stage
folder (``report.py``) so the manifest can show kept/dropped per filter and reason.

The hook is a pure function of (rows, context, recipe): the stages call it repeatedly on growing
collections (question top-ups) and again on rows they already filtered (regeneration loops, the final
pass), and it must give the same verdicts each time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from wikipersona_data.stages.rows import RejectRow
from wikipersona_data.verify.answers import (
    AnswerEmptyFilter,
    AnswerLeakFilter,
    AnswerLengthFilter,
    CandidateDuplicateFilter,
    RefusalFilter,
    TruncationFilter,
)
from wikipersona_data.verify.base import Filter, FilterStep
from wikipersona_data.verify.config import FiltersConfig, filters_config
from wikipersona_data.verify.grounding import GroundingFilter
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
from wikipersona_data.verify.report import length_bias, save_log, stage_log
from wikipersona_data.verify.safety import TextSafetyFilter

ID_FIELDS = {
    "personas": "persona_id",
    "describe": "persona_id",
    "questions": "question_id",
    "respond": "candidate_id",
    "judge": "judgment_id",
    "split": "pair_id",
    "prefixes": "persona_id",
}

RETRIED_STAGES = ("describe", "judge")
"""Stages that redo a dropped row with a new sample_idx (describe.py, judge.py); the log counts their attempts."""


def stage_filters(stage: str, cfg: FiltersConfig) -> list[Filter]:
    """The filters of a stage, in the order they run (cheap row checks before group checks); every stage
    that makes text starts with the text-safety filter, so no later filter echoes a secret in a detail."""
    if stage == "personas":
        return [TextSafetyFilter()]
    if stage == "describe":
        return [TextSafetyFilter(), GroundingFilter(cfg)]
    if stage == "questions":
        return [
            TextSafetyFilter(),
            QuestionLengthFilter(cfg),
            AnswerableFilter(),
            IdentityLeakFilter(),
            CategoryLeakFilter(cfg),
            QuestionDuplicateFilter(cfg),
        ]
    if stage == "respond":
        return [
            TextSafetyFilter(),
            AnswerEmptyFilter(),
            AnswerLengthFilter(cfg),
            RefusalFilter(),
            TruncationFilter(),
            AnswerLeakFilter(cfg),
            CandidateDuplicateFilter(cfg),
        ]
    if stage == "judge":
        return [TextSafetyFilter(), CascadeFilter(), JudgeAgreementFilter(cfg)]
    if stage == "split":
        filters: list[Filter] = [CascadeFilter(), DistinctAnswersFilter(), DivergenceFilter(cfg)]
        if cfg.balance_length:
            filters.append(LengthBalanceFilter(cfg))
        return filters
    if stage == "prefixes":
        return [TextSafetyFilter(), CascadeFilter(), PrefixTrainOnlyFilter()]
    return []


async def apply_filters(stage: str, rows: list[Any], context: dict[str, Any]) -> tuple[list[Any], list[RejectRow]]:
    """Run the stage's filters; return the kept (possibly rewritten) rows and one reject per dropped row."""
    cfg = filters_config(context.get("recipe"))
    filters = stage_filters(stage, cfg)
    if not filters:
        return list(rows), []
    id_field = ID_FIELDS[stage]
    result = await FilterStep(stage, filters, id_field).run(rows, context)
    stage_dir = context.get("stage_dir")
    if stage_dir is not None:
        settings = json.dumps(cfg.model_dump(mode="json"), sort_keys=True)
        log = stage_log(Path(stage_dir), hashlib.sha256(settings.encode("utf-8")).hexdigest())
        log.record(filters, list(rows), result, id_field, attempts=stage in RETRIED_STAGES)
        if stage == "split":
            log.extras["length_bias_before"] = length_bias(list(rows))
        save_log(Path(stage_dir), log)
    return result.kept, result.rejects
