"""Stage fingerprints: which stage outputs of a work dir are still valid for this recipe.

A stage's journal keys its units by their *inputs* (a persona, a question, its candidates), not by
the stage's own settings, so without a fingerprint a changed judge model would resume from the old
model's journal. The fingerprint of a stage hashes what shapes its rows:

- its recipe settings (endpoint, model, sampling params, counts, seeds, judge/split tables),
- the sha256 of its prompt templates (and of the filters' templates),
- the ``[filters]`` table (filters run inside every stage), and the stage's ``[stage_filters]`` listing if
  the recipe has one,
- the fingerprint of the stage before it (the chain is linear: personas -> describe -> questions ->
  respond -> [reward] -> judge -> split -> prefixes), so a change recomputes that stage and everything after
  it, and nothing before it. An optional stage the recipe leaves off is not in the chain.

``prepare_stage_dirs`` runs before the stages: a stage folder whose ``fingerprint`` file differs (or is
missing) is moved aside to ``<stage>@<old fingerprint>/`` and the stage recomputes from scratch (its
unchanged LLM calls still replay from the call cache for free); a folder set aside earlier under the
current fingerprint is moved back instead, so going back to earlier settings resumes where they were.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from wikipersona_data.fileio import canonical_json, write_atomic
from wikipersona_data.stages import registry
from wikipersona_data.stages.ids import content_id
from wikipersona_data.stages.recipe import Recipe
from wikipersona_data.stages.templates import TEMPLATE_DIR, load_template

FILE = "fingerprint"
FILTER_TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "verify" / "templates"


def _setting(recipe: Recipe, dotted: str) -> Any:
    value: Any = recipe
    for part in dotted.split("."):
        value = getattr(value, part)
    if isinstance(value, list):
        return [v.model_dump(mode="json") if hasattr(v, "model_dump") else v for v in value]
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _template_sha(name: str) -> str:
    path = TEMPLATE_DIR / f"{name}.md"
    return load_template(name).sha256 if path.is_file() else "absent"


def _filter_templates() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(FILTER_TEMPLATE_DIR.glob("*.md"))}


def stage_fingerprints(recipe: Recipe) -> dict[str, str]:
    """Stage name -> fingerprint (16 hex), each including the one before it."""
    out: dict[str, str] = {}
    upstream = content_id("dump", recipe.dump.name, recipe.dump.date)
    shared = {"filters": recipe.filters, "filter_templates": _filter_templates()}
    for entry in registry.active(recipe):  # each stage: the specs it calls, its templates, the settings it reads
        stage, specs, templates, settings = entry.name, entry.calls, entry.templates, entry.settings
        config = {
            "specs": {s: _setting(recipe, f"stages.{s}") if getattr(recipe.stages, s) else None for s in specs},
            "templates": {t: _template_sha(t) for t in templates},
            # an unset optional setting is left out: turning an optional stage off gives the fingerprints
            # (and so the work folders) of a recipe written before that stage existed
            "settings": {k: v for k in settings if (v := _setting(recipe, k)) is not None},
            **shared,
        }
        if stage in recipe.stage_filters:  # only a listed stage: unlisted recipes keep their fingerprints
            config["filter_list"] = recipe.stage_filters[stage]
        upstream = content_id(upstream, stage, _canonical(config))
        out[stage] = upstream
    return out


def _canonical(value: Any) -> str:
    return canonical_json(value, default=str)


def prepare_stage_dirs(work: Path, fingerprints: dict[str, str]) -> list[str]:
    """Move aside every stage folder whose fingerprint differs, bring back a folder set aside earlier for
    the current fingerprint (switching settings back and forth recomputes nothing), write the current
    fingerprints. Returns the stages whose folder was moved aside."""
    stale = []
    for stage in fingerprints:  # the stages this recipe runs, in order
        folder = work / stage
        marker = folder / FILE
        want = fingerprints[stage]
        if folder.is_dir():
            have = marker.read_text(encoding="utf-8").strip() if marker.is_file() else "unknown"
            if have == want:
                continue
            aside = work / f"{stage}@{have}"
            if aside.exists():
                shutil.rmtree(aside)
            folder.rename(aside)
            stale.append(stage)
        earlier = work / f"{stage}@{want}"
        if earlier.is_dir():
            earlier.rename(folder)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(marker, want + "\n")
    return stale
