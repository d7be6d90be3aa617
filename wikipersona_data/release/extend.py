"""``wikipersona extend``: add personas to a release without touching a byte of its rows.

How (each step reuses the stage functions, restricted to the new personas):

1. The release's manifest holds the recipe TEXT; it is re-parsed (``--dump/--index`` replace file dump
   paths; ``package:demo`` works anywhere). Every requested title is checked against the dump and the
   release *before* anything runs: found (else close titles are suggested), a person, living, not
   already a persona, its ``axis:category`` in the recipe and the axis with divergent questions in the
   release. A problem is one line, exit 2, nothing written.
2. The recipe's stages run in the build's work dir (``--work``, default ``work/<recipe name>``): with
   that work dir and its call cache this is a resume that recomputes nothing and sends no request; the
   rows it gives must equal the release's rows (otherwise the work dir is not the one of this release
   and extending from it would mix two datasets: refused).
3. The new personas go through personas -> describe -> personal questions -> respond -> judge -> split
   -> prefixes in their own folder ``<work>/extend/<version>-<hash>/``, sharing the client and cache.
   They are judged on the release's divergent questions of their axes with the same kept candidates
   as the other members, and those questions keep the release's split (a test question stays test).
   Their personal split is seeded per persona exactly as in a build; a new persona gets the
   least-used fold among those its axis does not use yet, so no existing fold moves.
4. The new release = the old parquet rows read back and re-written unchanged + the new rows; version
   = minor bump; the changelog keeps every earlier entry and adds one (counts, personas, models,
   filter drops); ``extensions`` in the manifest records what was added, so the release can be
   regenerated (build the recipe, then the same extends).

Refused: recipes whose split filters decide over whole groups (``drop_non_divergent``,
``balance_length``), because re-deciding them with a new member would change existing rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from wikipersona_data.errors import ConfigError, InputError
from wikipersona_data.release import manifest as mf
from wikipersona_data.release.tables import SPLITS, split_glob, to_table
from wikipersona_data.release.versions import bump, with_entry
from wikipersona_data.stages.assemble import band_spreads, release_rows, reward_gap
from wikipersona_data.stages.context import STAGE_REASONS, BuildContext
from wikipersona_data.stages.divergence import divergence_rates
from wikipersona_data.stages.fingerprint import prepare_stage_dirs, stage_fingerprints
from wikipersona_data.stages.ids import content_id, slug
from wikipersona_data.stages.pipeline import run_all_stages
from wikipersona_data.stages.recipe import AxisSpec, CategorySpec, Recipe, parse_recipe
from wikipersona_data.stages.registry import Extension
from wikipersona_data.stages.rows import PersonaRow
from wikipersona_data.wiki.source import PageReader

GROUP_FILTERS = ("drop_non_divergent", "balance_length")


@dataclass(frozen=True)
class Addition:
    """One ``--persona TITLE`` and the ``--axis AXIS:CATEGORY`` options that follow it."""

    title: str
    axes: tuple[tuple[str, str], ...]


def pair_options(tokens: list[tuple[str, str]]) -> list[Addition]:
    """(option, value) in command-line order -> additions: each --axis belongs to the --persona before it."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for option, value in tokens:
        if option == "persona":
            if not value.strip():
                raise ConfigError("--persona: empty title")
            out.append((value.strip(), []))
            continue
        if not out:
            raise ConfigError(
                f"--axis {value}: comes before any --persona (write --persona TITLE --axis AXIS:CATEGORY)"
            )
        axis, sep, category = value.partition(":")
        if not sep or not axis.strip() or not category.strip():
            raise ConfigError(f"--axis {value!r}: expected AXIS:CATEGORY, e.g. diet:pescatarian")
        out[-1][1].append((axis.strip(), category.strip()))
    if not out:
        raise ConfigError("give at least one --persona TITLE --axis AXIS:CATEGORY")
    for title, axes in out:
        if not axes:
            raise ConfigError(f"--persona {title!r}: needs at least one --axis AXIS:CATEGORY after it")
    return [Addition(title, tuple(axes)) for title, axes in out]


# ------------------------------------------------------------------------------------------ release I/O


def read_rows(release: Path) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """The release's pairs by split and personas, as typed rows (the writer's own contract)."""
    pairs: dict[str, list[dict[str, Any]]] = {}
    for split_name in SPLITS["pairs"]:
        pairs[split_name] = _read_split(release, "pairs", split_name)
    return pairs, _read_split(release, "personas", "train")


def _read_split(release: Path, config: str, split_name: str) -> list[dict[str, Any]]:
    files = sorted(release.glob(split_glob(config, split_name)))
    if not files:
        raise InputError(f"{release}: no {split_glob(config, split_name)} (not a release folder?)")
    rows: list[dict[str, Any]] = []
    for path in files:
        try:
            rows += pq.read_table(path).to_pylist()
        except Exception as err:  # any pyarrow/OS error: say which file
            raise InputError(f"{path}: unreadable parquet ({type(err).__name__}: {err})") from None
    return rows


def load_release_recipe(
    release: Path,
    manifest: mf.Manifest,
    dump: Path | None,
    index: Path | None,
    user_recipe: Path | None = None,
    notes: list[str] | None = None,
    source: str | None = None,
) -> Recipe:
    """The recipe the release was built with, from the manifest, with endpoints and prices from the user
    (``release/trust.py``: a release never says where calls go); ``dump``/``index`` replace its dump paths,
    ``source`` ("dump" | "online") where pages come from (``--source``; default: the recipe's)."""
    from wikipersona_data.release.trust import trusted_recipe

    recipe = parse_recipe(manifest.data.recipe.text, release / "manifest.json")
    if recipe.sha256 != manifest.data.recipe.sha256:
        raise InputError(f"{release / 'manifest.json'}: recipe.text does not match recipe.sha256")
    if dump is not None or index is not None:
        if source == "online":
            raise ConfigError("--source online reads no dump: drop --dump/--index")
        source = "dump"
    recipe, lines = trusted_recipe(recipe, user_recipe, dump_given=dump is not None or source == "online")
    if notes is not None:
        notes += lines  # shown once every check has passed (a refusal stays one line)
    if source is not None and source != recipe.dump.source:
        recipe.dump = recipe.dump.model_copy(update={"source": source})
    if recipe.dump.source == "dump":
        _dump_files(recipe, release, dump, index)
    _refuse_group_filters(recipe, release)
    return recipe


def _dump_files(recipe: Recipe, release: Path, dump: Path | None, index: Path | None) -> None:
    """Point the recipe at the dump files (``--dump``/``--index``, else its own), checked to exist."""
    if dump is not None:
        recipe.dump.path = str(Path(dump).resolve())
        if index is None:  # the index beside the given dump (same prefix, -index.txt.bz2)
            from wikipersona_data.conventions import find_index

            index = find_index(Path(dump))
    if index is not None:
        recipe.dump.index = str(Path(index).resolve())
    if recipe.dump.path is None:
        raise ConfigError(
            f"{release / 'manifest.json'}: the release was built from the live wiki (source 'online'); give --dump "
            "and --index, or --source online"
        )
    relative = not recipe.dump.path.startswith("package:") and not Path(recipe.dump.path).is_absolute()
    if relative and dump is None:
        raise ConfigError(
            f"{release / 'manifest.json'}: the recipe's dump path {recipe.dump.path!r} is relative to the original "
            "recipe file; give --dump and --index"
        )
    recipe.dump_paths()  # one-line error if the files are missing


def _refuse_group_filters(recipe: Recipe, release: Path) -> None:
    for key in GROUP_FILTERS:
        if recipe.filters.get(key):
            raise ConfigError(
                f"{release / 'manifest.json'}: filters.{key} is on; it decides over whole groups, so adding a "
                "member would change existing rows: extend does not support it"
            )


# ------------------------------------------------------------------------------------------ checks


def check_additions(
    additions: list[Addition],
    recipe: Recipe,
    reader: PageReader,
    old_personas: list[dict[str, Any]],
    old_pairs: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """Validate every addition (one-line errors) and return title -> Biography of the canonical article."""
    existing = {p["persona_id"]: p["name"] for p in old_personas}
    axes_with_questions = {r["axis"] for rows in old_pairs.values() for r in rows if r["question_type"] == "divergent"}
    bios: dict[str, Any] = {}
    seen: dict[str, str] = {}
    if hasattr(reader, "prefetch"):  # the live wiki: every title in one batched request
        reader.prefetch([a.title for a in additions])
    for add in additions:
        for axis_name, category in add.axes:
            try:
                axis = recipe.axis(axis_name)
            except KeyError:
                known = ", ".join(a.name for a in recipe.axes)
                raise ConfigError(
                    f"--axis {axis_name}:{category}: axis {axis_name!r} is not in the release ({known})"
                ) from None
            names = [c.name for c in axis.categories]
            if category not in names:
                raise ConfigError(
                    f"--axis {axis_name}:{category}: category {category!r} is not in axis {axis_name!r} "
                    f"({', '.join(names)})"
                )
            if axis_name not in axes_with_questions:
                raise ConfigError(f"--axis {axis_name}:{category}: the release has no divergent questions on it")
        axis_names = [a for a, _ in add.axes]
        if len(set(axis_names)) != len(axis_names):
            raise ConfigError(f"--persona {add.title!r}: one category per axis (got {axis_names})")
        try:
            bio = reader.get(add.title)
        except InputError as err:  # names close titles when not found
            raise InputError(f"--persona {add.title!r}: {err}") from None
        if not bio.is_person:
            raise InputError(f"--persona {add.title!r}: the article {bio.title!r} is not about a person")
        if not bio.is_living or bio.death_year is not None:
            died = f" (died {bio.death_year})" if bio.death_year else ""
            raise InputError(f"--persona {add.title!r}: {bio.title!r} is not a living person{died}")
        pid = slug(bio.title)
        if pid in existing:
            raise InputError(f"--persona {add.title!r}: {bio.title!r} is already a persona of the release ({pid})")
        if pid in seen:
            raise InputError(f"--persona {add.title!r}: same article as --persona {seen[pid]!r}")
        seen[pid] = add.title
        bios[add.title] = bio
    return bios


def restricted_recipe(recipe: Recipe, additions: list[Addition]) -> Recipe:
    """The recipe with only the added personas listed (and no auto selection), for the personas stage."""
    wanted: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for add in additions:
        for axis, category in add.axes:
            wanted[axis][category].append(add.title)
    axes = [
        AxisSpec(name=a.name, categories=[CategorySpec(name=c, personas=t) for c, t in wanted[a.name].items()])
        for a in recipe.axes
        if a.name in wanted
    ]
    return recipe.model_copy(update={"axes": axes})


# ------------------------------------------------------------------------------------------ the run


@dataclass
class Extended:
    pairs: dict[str, list[dict[str, Any]]]
    personas: list[dict[str, Any]]
    stats: dict[str, Any]
    ext_ctx: BuildContext
    new_names: list[str]
    ids: dict[str, str]  # requested title -> persona_id


async def _base_stages(ctx: BuildContext) -> dict[str, Any]:
    """The recipe's stages in the build's work dir (a resume: journaled units and cached calls), in the order
    and with the shared rows of a build (``pipeline.run_all_stages``), stopping before the release is written."""
    prepare_stage_dirs(ctx.work_dir, stage_fingerprints(ctx.recipe))
    return await run_all_stages(ctx)


def _typed(config: str, split_name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return to_table(config, split_name, rows).to_pylist()


def check_base_matches(
    base: dict[str, Any],
    old_pairs: dict[str, list[dict[str, Any]]],
    old_personas: list[dict[str, Any]],
    extension_ids: set[str],
    work: Path,
) -> None:
    """The work dir's rows must be the release's rows (those not added by earlier extends)."""
    pairs, persona_records = release_rows(
        base["personas"], base["descriptions"], base["pairs"], base["prefixes"], base["folds"]
    )
    hint = f"{work}: does not hold the stages of this release ({{}}); give --work of the build that made it"
    for split_name in SPLITS["pairs"]:
        want = [r for r in old_pairs[split_name] if r["persona_id"] not in extension_ids]
        got = _typed("pairs", split_name, pairs.get(split_name, []))
        if got != want:
            ids = {r["pair_id"] for r in got} ^ {r["pair_id"] for r in want}
            first = min(ids) if ids else next(a["pair_id"] for a, b in zip(got, want, strict=True) if a != b)
            raise InputError(hint.format(f"pairs/{split_name} differ first at {first}"))
    want_personas = [p for p in old_personas if p["persona_id"] not in extension_ids]
    if _typed("personas", "train", persona_records) != want_personas:
        raise InputError(hint.format("personas differ"))


async def _extend_stages(
    ctx: BuildContext,
    ext_dir: Path,
    additions: list[Addition],
    base: dict[str, Any],
    old_pairs: dict[str, list[dict[str, Any]]],
    old_personas: list[dict[str, Any]],
) -> Extended:
    """The build's runner restricted to the added personas (``registry.Extension``), in ``ext_dir``."""
    ext = dataclasses.replace(ctx, work_dir=ext_dir, stats={}, shared={})
    prepare_stage_dirs(ext_dir, stage_fingerprints(ctx.recipe))
    released_split = {
        r["question_id"]: split_name
        for split_name, rows in old_pairs.items()
        for r in rows
        if r["question_type"] == "divergent"
    }
    scope = Extension(
        recipe=restricted_recipe(ctx.recipe, additions),
        base=base,
        released_split=released_split,
        old_personas=old_personas,
    )
    rows = await run_all_stages(ext, scope)
    new_personas: list[PersonaRow] = rows["personas"]
    new_pairs, new_persona_records = release_rows(
        new_personas, rows["descriptions"], rows["pairs"], rows["prefixes"], rows["folds"]
    )
    merged = {s: [*old_pairs[s], *new_pairs.get(s, [])] for s in SPLITS["pairs"]}
    return Extended(
        pairs=merged,
        personas=[*old_personas, *new_persona_records],
        stats=ext.stats,
        ext_ctx=ext,
        new_names=sorted(p.name for p in new_personas),
        ids={t: p.persona_id for p in new_personas for t in p.requested_titles},
    )


# ------------------------------------------------------------------------------------------ manifest


def _merge_reports(old: dict[str, dict[str, mf.FilterCounts]], new: dict[str, dict[str, dict[str, Any]]]) -> Any:
    out: dict[str, dict[str, mf.FilterCounts]] = {s: dict(f) for s, f in old.items()}
    for stage, filters in new.items():
        for name, counts in filters.items():
            have = out.setdefault(stage, {}).get(name, mf.FilterCounts(kept=0))
            dropped = Counter(have.dropped)
            dropped.update(counts.get("dropped", {}))
            out[stage][name] = mf.FilterCounts(
                kept=have.kept + counts.get("kept", 0), dropped=dict(sorted(dropped.items()))
            )
    return out


def divergence_of(pairs: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """The build's divergence figure (``stages/divergence.py``), over the released rows of every split."""
    return divergence_rates(r for rows in pairs.values() for r in rows)


def _counts(pairs: dict[str, list[dict[str, Any]]], personas_: list[dict[str, Any]]) -> dict[str, int]:
    types = Counter(r["question_type"] for rows in pairs.values() for r in rows)
    return {
        "personas": len(personas_),
        "pairs_train": len(pairs["train"]),
        "pairs_test": len(pairs["test"]),
        "personal": types["personal"],
        "divergent": types["divergent"],
    }


def extended_manifest(
    old: mf.Manifest,
    recipe: Recipe,
    version: str,
    additions: list[Addition],
    result: Extended,
    started: float,
    row_dirs: Sequence[Path],
) -> mf.Manifest:
    """The release's manifest with this extension's facts; the ledger is recomputed from the call cache over
    the rows of ``row_dirs`` (the build's work dir and every extension's folder, this one's included), the
    same sum a build makes (``pipeline.stage_ledger``), not the old ledger plus the new one."""
    from wikipersona_data.stages.pipeline import filter_report, run_info, stage_ledger, stage_models
    from wikipersona_data.wiki.source import pages_read

    ctx = result.ext_ctx
    new_models = stage_models(ctx)
    models = {}
    for stage, use in old.data.models.items():
        extra = set(new_models[stage].served) if stage in new_models else set()
        models[stage] = mf.ModelUse(requested=use.requested, served=sorted(set(use.served) | extra))
    dropped = Counter()
    for stats in result.stats.values():
        dropped.update({r: n for r, n in stats.drop_reasons.items() if r not in STAGE_REASONS})
    used = {
        s: getattr(recipe.stages, s).model
        for s in ("describe", "questions", "respond", "judge", "prefixes", "embed")
        if getattr(recipe.stages, s) is not None
    }
    extension = mf.Extension(
        version=version,
        base_version=old.data.version,
        personas=[
            mf.ExtensionPersona(title=a.title, persona_id=result.ids[a.title], axes=[f"{x}:{c}" for x, c in a.axes])
            for a in additions
        ],
    )
    data = old.data.model_copy(
        update={
            "version": version,
            "counts": _counts(result.pairs, result.personas),
            "files": {},
            "models": models,
            "filter_report": _merge_reports(old.data.filter_report, filter_report(ctx)),
            "ledger": {**old.data.ledger, **stage_ledger(ctx, row_dirs)},
            "divergence": divergence_of(result.pairs),
            "grounding": {},
            "extensions": [*old.data.extensions, extension],
            "online_pages": _merge_online_pages(old.data.online_pages, pages_read(ctx.reader)),
        }
    )
    data = _with_reward_band(data, result.pairs, recipe, row_dirs)
    names = ", ".join(result.new_names)
    data = with_entry(
        data,
        summary=f"Added {len(result.new_names)} persona(s) with `wikipersona extend`: {names}; other rows unchanged.",
        previous=old.data,
        personas=result.new_names,
        models=used,
        filters=dict(sorted(dropped.items())),
    )
    return mf.Manifest(data=data, run=run_info(result.stats, started))


def _with_reward_band(
    data: mf.ManifestData, pairs: dict[str, list[dict[str, Any]]], recipe: Recipe, row_dirs: Sequence[Path]
) -> mf.ManifestData:
    """A release built with the reward band: its reward gap recomputed over every released pair (the added ones
    too), and the band's score spreads over every scored candidate behind them, read from the rows of
    ``row_dirs`` (the build's and each extension's), so the card's band figures describe the whole release."""
    from wikipersona_data.stages.pipeline import stored_candidates

    build = data.ledger.get("build")
    band = build.get("reward_band") if isinstance(build, dict) else None
    if not isinstance(band, dict):
        return data
    scored = [(r["chosen_reward"], r["rejected_reward"]) for rows in pairs.values() for r in rows]
    candidates = {row.candidate_id: row for folder in row_dirs for row in stored_candidates(recipe, folder)}
    band = {**band, **band_spreads(candidates.values()), **reward_gap(scored)}
    return data.model_copy(update={"ledger": {**data.ledger, "build": {**build, "reward_band": band}}})


@dataclass
class Job:
    """What one extend works from: the release (manifest, recipe, rows), the additions, the folders."""

    release: Path
    old: mf.Manifest
    recipe: Recipe
    version: str
    additions: list[Addition]
    old_pairs: dict[str, list[dict[str, Any]]]
    old_personas: list[dict[str, Any]]
    work: Path
    ext_dir: Path


def extend_release(
    release: Path,
    additions: list[Addition],
    *,
    out: Path | None = None,
    work: Path | None = None,
    base_url: str | None = None,
    cache_mode: str = "use",
    dump: Path | None = None,
    index: Path | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    report: Callable[[str], None] | None = None,
    recipe_path: Path | None = None,
    source: str | None = None,
) -> Path:
    """Write the extended release (minor version bump) and return its folder.

    ``echo`` takes logs, ``report`` the results (summary table, where the release went; default ``echo``).
    The work dir defaults to ``work/<recipe name>`` beside the release (not the current folder), and is named.
    Endpoints, key variables and prices come from ``recipe_path`` (the user's recipe) or, without it,
    are the demo's simulator (``release/trust.py``); never from the release. Every check that can fail
    on the user's input runs before any stage, so a refused extend writes nothing (not even a work dir).
    """
    from wikipersona_data.release.verify import verify_release
    from wikipersona_data.release.writer import refuse_to_clobber, write_release
    from wikipersona_data.wiki.source import open_pages

    release = Path(release)
    old = mf.Manifest.load(release / "manifest.json")
    version = bump(old.data.version, "minor")
    out = Path(out) if out else release.with_name(f"{release.name}-v{version}")
    if out.resolve() == release.resolve():
        raise ConfigError(f"--out {out}: is the release being extended; write the new version elsewhere")
    refuse_to_clobber(out)
    checked = verify_release(release)
    if not checked.ok:
        failed = checked.failures[0]
        raise InputError(f"{release}: fails verify ({failed.name}: {failed.detail}); extend a release that verifies")
    notes: list[str] = []
    recipe = load_release_recipe(release, old, dump, index, recipe_path, notes, source)
    old_pairs, old_personas = read_rows(release)
    with open_pages(recipe, prefetch=False) as reader:  # the dump, or the live wiki (nothing stored yet)
        check_additions(additions, recipe, reader, old_personas, old_pairs)
    for line in notes:
        echo(line)
    if work is None:
        work = release.resolve().parent / "work" / recipe.name
        echo(f"work dir: {work} (beside the release; --work to choose another)")
    work = Path(work)
    if hasattr(reader, "keep_in"):  # pages read from the live wiki: the stages use the very revisions checked
        reader.keep_in(work / "sources")
    job = Job(
        release=release,
        old=old,
        recipe=recipe,
        version=version,
        additions=additions,
        old_pairs=old_pairs,
        old_personas=old_personas,
        work=work,
        ext_dir=extension_dir(work, version, additions),
    )
    result, manifest = asyncio.run(_run(job, base_url, cache_mode, progress, report or echo))
    path = write_release(out, pairs=result.pairs, personas=result.personas, manifest=manifest)
    added = manifest.data.changelog[-1].counts_added
    (report or echo)(
        f"release {old.tag} -> v{version} written to {path} "
        f"(+{added.get('personas', 0)} personas, +{added.get('pairs_train', 0) + added.get('pairs_test', 0)} pairs)"
    )
    return path


async def _run(
    job: Job, base_url: str | None, cache_mode: str, progress: bool, echo: Callable[[str], None]
) -> tuple[Extended, mf.Manifest]:
    from wikipersona_data.llm.ledger import Ledger
    from wikipersona_data.stages.pipeline import check_endpoints, open_context, summary_table

    started = time.monotonic()
    extension_ids = {p.persona_id for e in job.old.data.extensions for p in e.personas}
    dirs = row_dirs(job)  # before any work: an earlier extension's rows must be there to sum the ledger
    async with open_context(job.recipe, job.work, base_url=base_url, cache_mode=cache_mode) as ctx:
        ctx.progress = progress
        if cache_mode != "only":
            await check_endpoints(ctx)
        base = await _base_stages(ctx)
        check_base_matches(base, job.old_pairs, job.old_personas, extension_ids, job.work)
        # a fresh ledger, so the summary below counts the extension's calls only (not the replay above)
        ctx.client.ledger = Ledger(ctx.client.ledger.prices)
        result = await _extend_stages(ctx, job.ext_dir, job.additions, base, job.old_pairs, job.old_personas)
        echo(summary_table(result.stats, ctx.client))
        manifest = extended_manifest(job.old, job.recipe, job.version, job.additions, result, started, dirs)
    return result, manifest


def extension_dir(work: Path, version: str, additions: Sequence[Addition]) -> Path:
    """The folder of one extension's stages: ``<work>/extend/v<version>-<tag of its additions>``."""
    tag = content_id(*(f"{a.title}={a.axes}" for a in additions), length=10)
    return work / "extend" / f"v{version}-{tag}"


def row_dirs(job: Job) -> list[Path]:
    """Where the extended release's rows were made: the build's work dir, each earlier extension's folder (from
    the manifest's ``extensions``), this one's. A missing earlier folder is one line: without its rows the
    calls behind the data cannot be summed again."""
    earlier = [
        extension_dir(
            job.work,
            e.version,
            [Addition(p.title, tuple(tuple(a.split(":", 1)) for a in p.axes)) for p in e.personas],  # type: ignore[misc]
        )
        for e in job.old.data.extensions
    ]
    for folder in earlier:
        if not folder.is_dir():
            raise InputError(
                f"{folder}: missing (the rows of an earlier extension; the ledger behind the data is summed from "
                "every run's rows); give --work of the build that made the release"
            )
    return [job.work, *earlier, job.ext_dir]


def _merge_online_pages(old: list[mf.OnlinePage] | None, new: list[dict[str, Any]] | None) -> Any:
    """The release's pages read online plus this extension's (None while neither read the live wiki)."""
    if new is None:
        return old
    merged = {(p.title, p.page_id, p.revision_id): p for p in old or []}
    for page in new:
        merged.setdefault((page["title"], page["page_id"], page["revision_id"]), mf.OnlinePage(**page))
    return [merged[k] for k in sorted(merged, key=lambda k: (k[0], k[1], k[2] or 0))]
