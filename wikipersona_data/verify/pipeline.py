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

from wikipersona_data.stages import registry
from wikipersona_data.stages.rows import RejectRow
from wikipersona_data.verify.base import Filter, FilterStep
from wikipersona_data.verify.config import FiltersConfig, filters_config
from wikipersona_data.verify.listing import Listing
from wikipersona_data.verify.report import journal_call, length_bias, stage_log


def stage_filters(stage: str, cfg: FiltersConfig, listing: Listing | None = None) -> list[Filter]:
    """The filters of a stage, in the order they run: the recipe's ``[stage_filters]`` listing for it, else
    its registry defaults."""
    return registry.get(stage).filter_list(cfg, listing) if stage in registry.BY_NAME else []


def recipe_listing(recipe: Any, stage: str) -> Listing | None:
    """The recipe's ``[stage_filters]`` entry for ``stage`` (None: the defaults)."""
    return (getattr(recipe, "stage_filters", None) or {}).get(stage)


async def apply_filters(stage: str, rows: list[Any], context: dict[str, Any]) -> tuple[list[Any], list[RejectRow]]:
    """Run the stage's filters; return the kept (possibly rewritten) rows and one reject per dropped row."""
    cfg = filters_config(context.get("recipe"))
    listing = recipe_listing(context.get("recipe"), stage)
    filters = stage_filters(stage, cfg, listing)
    if not filters:
        return list(rows), []
    id_field = registry.get(stage).id_field
    result = await FilterStep(stage, filters, id_field).run(rows, context)
    stage_dir = context.get("stage_dir")
    if stage_dir is not None:
        settings = json.dumps(cfg.model_dump(mode="json"), sort_keys=True)
        if listing is not None:  # a listed stage's log restarts when its list changes; unlisted logs keep their hash
            settings += json.dumps(listing, sort_keys=True)
        digest = hashlib.sha256(settings.encode("utf-8")).hexdigest()
        log = stage_log(Path(stage_dir), digest, context.get("filter_logs"))
        retried = any(f.regenerate_on for f in filters)  # a stage that resamples: its log counts attempts per row
        extras = {"length_bias_before": length_bias(list(rows))} if stage == "split" else None
        journal_call(
            Path(stage_dir), log.record(filters, list(rows), result, id_field, attempts=retried, extras=extras)
        )
    return result.kept, result.rejects
