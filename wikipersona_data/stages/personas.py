"""Stage 1, personas: recipe titles (or LLM-proposed ones) resolved to living people of the dump.

Explicit titles are the user's word, so any problem with one (not in the dump, not a person, dead)
stops the build with one line naming the title: publishing a dataset with a silently missing persona
is worse than failing. LLM-proposed titles (``auto_select``) are only suggestions: each is resolved,
checked (living person, fame threshold) and kept only if the LLM then cites article sentences that
exist and contain the category's key terms (no category without a source). Rejected
suggestions go to rejects.jsonl with the reason.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from wikipersona_data.errors import ConfigError, InputError
from wikipersona_data.stages import bounds
from wikipersona_data.stages.context import BuildContext
from wikipersona_data.stages.ids import slug
from wikipersona_data.stages.recipe import AxisSpec, CategorySpec
from wikipersona_data.stages.rows import AxisMembership, PersonaRow, RejectRow
from wikipersona_data.wiki.biography import Biography

STAGE = "personas"
EVIDENCE_SENTENCES = 60  # sentences shown when asking for category evidence (lead first)


@functools.cache
def candidates_schema(max_tokens: int, n: int) -> type[BaseModel]:
    """Up to ``n`` proposed people that fit ``max_tokens`` (see ``stages/bounds.py``)."""
    b = bounds.candidates(max_tokens, n)

    class ProposedPerson(BaseModel):
        title: str = Field(min_length=1, max_length=bounds.NAME_CHARS)
        reason: str = Field(max_length=b.item_chars)

    class PersonCandidates(BaseModel):
        people: list[ProposedPerson] = Field(min_length=b.min_items, max_length=b.max_items)

    return PersonCandidates


class CategoryEvidence(BaseModel):
    member: bool
    evidence: list[Annotated[str, Field(pattern=bounds.SENTENCE_ID_PATTERN)]] = Field(
        max_length=bounds.MAX_EVIDENCE, description="Sentence ids."
    )


def display_name(title: str) -> str:
    """'Dana Okafor (chef)' -> 'Dana Okafor'."""
    return title.split(" (", 1)[0].strip()


def fame_of(bio: Biography, scan: dict[str, float]) -> float:
    """Fame from the scan table if it has the title, else from page-local signals of the article."""
    if bio.title in scan:
        return scan[bio.title]
    from wikipersona_data.wiki.fame import fame_score

    text_bytes = len(bio.lead.encode()) + sum(len(s.text.encode()) for s in bio.sections)
    refs = int(getattr(bio, "ref_count", 0) or 0)
    return fame_score(0, 0, text_bytes, refs, len(bio.sections))


def load_scan_table(path: Path | None) -> dict[str, float]:
    """title -> fame_score from a ``wikipersona scan`` table (jsonl or parquet)."""
    if path is None:
        return {}
    from wikipersona_data.wiki.table import read_table

    try:
        return {r["title"]: float(r["fame_score"]) for r in read_table(path) if r.get("fame_score") is not None}
    except (InputError, OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(f"{path}: cannot read the scan table (needs title and fame_score): {err}") from None


def get_biography(ctx: BuildContext, title: str) -> Biography:
    cache: dict[str, Biography] = ctx.shared.setdefault("biographies_by_title", {})
    if title not in cache:
        bio = ctx.reader.get(title)
        cache[title] = bio
        cache[bio.title] = bio
    return cache[title]


def _check_person(bio: Biography) -> str | None:
    if not bio.is_person:
        return "not_a_person"
    if not bio.is_living or bio.death_year is not None:
        return "not_living"
    return None


def _explicit(ctx: BuildContext, axis: AxisSpec, category: CategorySpec, title: str) -> tuple[Biography, str]:
    where = f"{ctx.recipe.source}: axes.{axis.name}.{category.name}: {title!r}"
    try:
        bio = get_biography(ctx, title)
    except InputError as err:
        raise ConfigError(f"{where}: not found in the dump ({err})") from None
    problem = _check_person(bio)
    if problem == "not_a_person":
        raise ConfigError(f"{where}: the article {bio.title!r} is not about a person")
    if problem == "not_living":
        raise ConfigError(f"{where}: {bio.title!r} is not a living person (death year {bio.death_year})")
    return bio, title


def key_terms(category: CategorySpec) -> list[str]:
    """Words an evidence sentence must contain: the recipe's key_terms, else the category name's words."""
    terms = category.key_terms or [w for w in category.name.replace("-", " ").split() if len(w) > 2]
    return [t.lower() for t in terms]


async def _auto(
    ctx: BuildContext, axis: AxisSpec, category: CategorySpec, scan: dict[str, float]
) -> tuple[list[tuple[Biography, str, list[str]]], list[RejectRow]]:
    """LLM candidates for one category -> (biography, requested title, evidence ids) kept, and rejects."""
    spec = axis.auto_select
    assert spec is not None
    scope = f"{axis.name}/{category.name}"
    res = await ctx.llm.json(
        STAGE,
        "personas_candidates",
        {"axis": axis.name, "category": category.name, "n": spec.candidates},
        candidates_schema(ctx.recipe.stage(STAGE).max_tokens, spec.candidates),
    )
    if not res.ok:
        return [], [RejectRow(stage=STAGE, id=scope, reason="llm_failure", detail=res.failure or "")]
    rejects: list[RejectRow] = []
    evidenced: list[tuple[float, Biography, str, list[str]]] = []
    terms = key_terms(category)
    for proposed in res.value.people[: spec.candidates]:
        rid = f"{scope}/{proposed.title}"
        try:
            bio = get_biography(ctx, proposed.title)
        except InputError as err:
            rejects.append(RejectRow(stage=STAGE, id=rid, reason="not_in_dump", detail=str(err)))
            continue
        problem = _check_person(bio)
        if problem:
            rejects.append(RejectRow(stage=STAGE, id=rid, reason=problem, detail=bio.title))
            continue
        fame = fame_of(bio, scan)
        if fame < spec.min_fame:
            rejects.append(RejectRow(stage=STAGE, id=rid, reason="below_fame", detail=f"{fame:.3f} < {spec.min_fame}"))
            continue
        check = await ctx.llm.json(
            STAGE,
            "personas_evidence",
            {
                "title": bio.title,
                "name": display_name(bio.title),
                "axis": axis.name,
                "category": category.name,
                "sentences": bio.sentences[:EVIDENCE_SENTENCES],
            },
            CategoryEvidence,
        )
        if not check.ok:
            rejects.append(RejectRow(stage=STAGE, id=rid, reason="llm_failure", detail=check.failure or ""))
            continue
        shown = {s.id: s.text.lower() for s in bio.sentences[:EVIDENCE_SENTENCES]}
        good = [i for i in check.value.evidence if i in shown and any(t in shown[i] for t in terms)]
        if not check.value.member or not good:
            detail = f"cited {check.value.evidence}; none exists and contains {terms}"
            rejects.append(RejectRow(stage=STAGE, id=rid, reason="category_unsupported", detail=detail))
            continue
        evidenced.append((fame, bio, proposed.title, good))
    evidenced.sort(key=lambda item: (-item[0], item[1].title))
    return [(bio, title, ev) for _, bio, title, ev in evidenced[: spec.keep]], rejects


async def run(ctx: BuildContext) -> list[PersonaRow]:
    """Resolve every persona of the recipe; merge memberships of one person across axes."""
    started = time.monotonic()
    store = ctx.store(STAGE, PersonaRow, "persona_id")
    needs_fame = any(a.auto_select is not None for a in ctx.recipe.axes)
    scan = load_scan_table(ctx.recipe.scan_path() if needs_fame else None)
    merged: dict[str, dict[str, Any]] = {}
    rejects: list[RejectRow] = []

    def add(bio: Biography, requested: str, membership: AxisMembership) -> None:
        pid = slug(bio.title)
        entry = merged.setdefault(pid, {"bio": bio, "requested": set(), "axes": {}})
        entry["requested"].add(requested)
        entry["axes"][(membership.axis, membership.category)] = membership

    for axis in ctx.recipe.axes:
        for category in axis.categories:
            for title in category.personas:
                bio, requested = _explicit(ctx, axis, category, title)
                add(bio, requested, AxisMembership(axis=axis.name, category=category.name, source="recipe"))
            if axis.auto_select is not None:
                kept, auto_rejects = await _auto(ctx, axis, category, scan)
                rejects += auto_rejects
                for bio, requested, evidence in kept:
                    membership = AxisMembership(
                        axis=axis.name, category=category.name, source="auto", evidence=evidence
                    )
                    add(bio, requested, membership)

    rows = []
    for pid, entry in merged.items():
        bio: Biography = entry["bio"]
        axes = [entry["axes"][k] for k in sorted(entry["axes"])]
        rows.append(
            PersonaRow(
                persona_id=pid,
                name=display_name(bio.title),
                wiki_title=bio.title,
                requested_titles=sorted(entry["requested"]),
                wiki_page_id=bio.page_id,
                wiki_revision_id=bio.revision_id,
                wiki_url=bio.url,
                birth_year=bio.birth_year,
                short_description=bio.short_description,
                fame=round(fame_of(bio, scan), 4),
                axes=axes,
            )
        )
    _check_categories_unique(ctx, rows)
    rows, dropped = await ctx.apply_filters(STAGE, rows, "persona_id")
    rejects += dropped
    store.write_output(rows, rejects)
    ctx.finish_stage(STAGE, len(rows), rejects, started)
    return sorted(rows, key=lambda r: r.persona_id)


def _check_categories_unique(ctx: BuildContext, rows: list[PersonaRow]) -> None:
    """One category per axis per person: a person cannot be both vegan and ketogenic."""
    for row in rows:
        seen: dict[str, str] = {}
        for m in row.axes:
            if m.axis in seen and seen[m.axis] != m.category:
                raise ConfigError(
                    f"{ctx.recipe.source}: axes.{m.axis}: {row.wiki_title!r} is listed in two categories "
                    f"({seen[m.axis]!r} and {m.category!r})"
                )
            seen[m.axis] = m.category
