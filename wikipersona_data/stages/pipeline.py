"""``build_recipe``: run every stage of a recipe (resumable), then write the release folder.

Order: personas -> describe -> questions -> respond -> [reward] -> judge -> split -> prefixes -> release
(``reward`` only when the recipe has ``[stages.reward]``). Each stage
reads the previous stage's rows, writes ``work/<recipe>/<stage>/rows.jsonl`` and ``rejects.jsonl`` and
journals its finished units, so a killed build resumes where it stopped; every LLM call goes through
one client with a content-addressed cache (``work/<recipe>/cache/``), so nothing paid is paid twice.

Endpoints: ``--endpoint-url NAME=URL`` (one endpoint), then ``--base-url`` (then ``OPENAI_BASE_URL`` for
non-simulator endpoints) override the recipe's ``base_url``; e.g. a local chat server and a separate
embeddings server (``wikipersona llm-local --embeddings`` prints both URLs). An endpoint with profile
``sim`` and no URL gets an embedded simulator for the duration of the build (``wikipersona build
builders/demo.toml`` needs nothing else running). Simulator endpoints get the cache alias ``sim`` so
replays do not depend on the port the simulator got.

The filters hook: ``wikipersona_data.verify.pipeline.apply_filters(stage, rows, context)``. See
``context.BuildContext.apply_filters`` for the accepted return shapes and ``filter_context`` for what
``context`` holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from wikipersona_data.errors import ConfigError
from wikipersona_data.heap import settled_heap
from wikipersona_data.llm.config import ModelPrice, PriceTable
from wikipersona_data.llm.deferral import Deferred
from wikipersona_data.llm.transport import Transport
from wikipersona_data.release.manifest import Manifest, ModelUse, RunInfo
from wikipersona_data.stages import registry, split
from wikipersona_data.stages.assemble import (
    divergence_by_axis,
    grounding_method,
    judge_stats,
    release_rows,
    reward_band_stats,
)
from wikipersona_data.stages.calls import StageLLM
from wikipersona_data.stages.context import BuildContext, FilterHook, StageStats
from wikipersona_data.stages.fingerprint import prepare_stage_dirs, stage_fingerprints
from wikipersona_data.stages.nodata import check_release_rows
from wikipersona_data.stages.recipe import STAGE_NAMES, Recipe, load_recipe
from wikipersona_data.stages.templates import all_template_hashes
from wikipersona_data.stages.usage import data_ledger, keys_of
from wikipersona_data.stages.worklock import work_lock
from wikipersona_data.verify.pipeline import apply_filters
from wikipersona_data.verify.report import build_extras, stage_report

Echo = Callable[[str], None]  # takes one line of log or report text

STAGES = registry.ORDER


OFFLINE_URL = "http://offline.invalid/v1"
"""The URL of an offline endpoint without one: nothing is sent there (its calls wait for files)."""


def check_endpoint_urls(recipe: Recipe, endpoint_urls: Mapping[str, str] | None) -> dict[str, str]:
    """``--endpoint-url`` names must be recipe endpoints (a typo would silently use another URL)."""
    urls = dict(endpoint_urls or {})
    for name in urls:
        if name not in recipe.endpoints:
            known = ", ".join(sorted(recipe.endpoints))
            raise ConfigError(f"--endpoint-url {name}=...: {recipe.source} has no endpoint {name!r} (has: {known})")
    return urls


def endpoint_configs(
    recipe: Recipe, base_url: str | None, sim_url: str | None, endpoint_urls: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """EndpointConfig per recipe endpoint, with the URL override order documented above."""
    from wikipersona_data.llm.config import EndpointConfig

    urls = check_endpoint_urls(recipe, endpoint_urls)
    configs = {}
    for name, spec in recipe.endpoints.items():
        if name in urls:
            url = urls[name]
        elif spec.profile == "sim":
            url = base_url or spec.base_url or sim_url
        else:
            url = base_url or os.environ.get("OPENAI_BASE_URL") or spec.base_url
        if not url and spec.mode == "offline":
            url = OFFLINE_URL  # answered by files (docs/batch.md); the cache identity is the alias
        if not url:
            raise ConfigError(
                f"{recipe.source}: endpoints.{name}.base_url: empty; give --base-url or set OPENAI_BASE_URL"
            )
        alias = spec.alias or ("sim" if spec.profile == "sim" else name if url == OFFLINE_URL else None)
        configs[name] = EndpointConfig(
            name=name,
            base_url=url,
            profile=spec.profile,
            api_key_env=spec.api_key_env,
            alias=alias,
            max_concurrency=spec.max_concurrency,
            rpm=spec.rpm,
            tpm=spec.tpm,
            timeout_s=spec.timeout_s,
            max_retry_seconds=spec.max_retry_seconds,
            max_attempts=spec.max_attempts,
            max_reply_bytes=spec.max_reply_bytes,
            context_tokens=spec.context_tokens,
            json_schema=spec.json_schema,
        )
    return configs


def price_table(recipe: Recipe) -> PriceTable:
    return PriceTable(
        {
            model: ModelPrice(input_per_m=p.input, output_per_m=p.output, cached_input_per_m=p.cached_input)
            for model, p in recipe.prices.items()
        }
    )


@contextlib.contextmanager
def embedded_simulator(
    recipe: Recipe, base_url: str | None, endpoint_urls: Mapping[str, str] | None = None
) -> Iterator[str | None]:
    """Start the simulator if a sim endpoint has no URL (and none was given); yield its URL."""
    given = endpoint_urls or {}
    needs = [
        (name, spec)
        for name, spec in recipe.endpoints.items()
        if spec.profile == "sim" and not spec.base_url and not base_url and name not in given
    ]
    if not needs:
        yield None
        return
    from wikipersona_data.llm.sim import SimConfig, SimServer

    options: dict[str, Any] = {}
    for _, spec in needs:
        options.update(spec.sim)
    loopback = {"host": "127.0.0.1", "port": 0, "allow_remote": False, "api_key": None}  # never a recipe's choice
    try:
        cfg = SimConfig(seed=recipe.seeds.sim, **options, **loopback)
    except TypeError as err:
        raise ConfigError(f"{recipe.source}: endpoints.{needs[0][0]}.sim: {err}") from None
    with SimServer(cfg) as sim:
        yield sim.base_url


def build_recipe(
    recipe_path: str | Path,
    *,
    work_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    base_url: str | None = None,
    max_usd: float | None = None,
    cache_mode: str = "use",
    progress: bool = True,
    echo: Echo | None = None,
    report: Echo | None = None,
    endpoint_urls: Mapping[str, str] | None = None,
) -> Path:
    """Build the recipe into ``out_dir`` (default ``<work>/release``); returns the release folder (or the
    work dir when the release writer is not installed).

    ``echo`` takes log lines (default: stderr), ``report`` the results: the summary table and where the
    release was written (default: ``echo``; the CLI sends them to stdout).
    """
    recipe = load_recipe(recipe_path)
    work = Path(work_dir) if work_dir else Path("work") / recipe.name
    out = Path(out_dir) if out_dir else work / "release"
    refuse_non_release_out(out)  # before any work: a build that cannot be written is not started
    say = echo or (lambda msg: print(msg, file=sys.stderr))
    check_endpoint_urls(recipe, endpoint_urls)
    return asyncio.run(
        _build(recipe, work, out, base_url, max_usd, cache_mode, progress, say, report or say, endpoint_urls)
    )


def refuse_non_release_out(out: Path) -> None:
    """The release writer's own refusal, checked up front (it replaces only an empty folder or a release)."""
    from wikipersona_data.release.writer import refuse_to_clobber

    refuse_to_clobber(Path(out))


async def _build(
    recipe: Recipe,
    work: Path,
    out: Path,
    base_url: str | None,
    max_usd: float | None,
    cache_mode: str,
    progress: bool,
    say: Echo,
    report: Echo,
    endpoint_urls: Mapping[str, str] | None = None,
) -> Path:
    started = time.monotonic()
    async with open_context(
        recipe, work, base_url=base_url, max_usd=max_usd, cache_mode=cache_mode, endpoint_urls=endpoint_urls
    ) as ctx:
        ctx.progress = progress
        if ctx.rounds is not None:
            ctx.rounds.echo = say
        if cache_mode != "only":
            await check_endpoints(ctx)
        return await _run_stages(ctx, out, say, report, started)


async def check_endpoints(ctx: BuildContext) -> None:
    """The preflight (``llm/preflight.py``): every endpoint answers, takes the key, serves the stage models
    and embeddings, before stage 1 spends anything; one line and a non-zero exit otherwise. An endpoint with
    ``preflight = "first_use"`` is checked the same way just before the first request sent to it
    (``LLMClient.checks_before_first_send``)."""
    from wikipersona_data.llm.preflight import preflight

    now: list[tuple[str, str, str]] = []
    later: dict[str, list[tuple[str, str, str]]] = {}
    for stage in registry.call_specs():
        spec = getattr(ctx.recipe.stages, stage)
        endpoint = ctx.recipe.endpoints[spec.endpoint] if spec is not None else None
        if endpoint is None or endpoint.mode == "offline":  # no server to ask
            continue
        api = {"embed": "embed", "reward": f"reward:{getattr(spec, 'route', '')}"}.get(stage, "chat")
        use = (spec.endpoint, spec.model, api)
        (later.setdefault(spec.endpoint, []) if endpoint.preflight == "first_use" else now).append(use)
    await preflight(ctx.client, now)
    for name, uses in later.items():
        ctx.client.checks_before_first_send[name] = functools.partial(preflight, ctx.client, uses)


@contextlib.asynccontextmanager
async def open_context(
    recipe: Recipe,
    work: Path,
    *,
    base_url: str | None = None,
    max_usd: float | None = None,
    cache_mode: str = "use",
    filter_hook: FilterHook | None = None,
    endpoint_urls: Mapping[str, str] | None = None,
    transport: Transport | None = None,
) -> AsyncIterator[BuildContext]:
    """Everything a stage needs (client, cache, dump reader, embedded simulator), closed on exit.

    Also how tests run a single stage against a simulator of their choice. ``transport`` replaces how the
    client's requests travel (default: online HTTP; ``llm/transport.py``); the stages do not notice.
    """
    from wikipersona_data.llm.cache import CallCache
    from wikipersona_data.llm.client import LLMClient
    from wikipersona_data.llm.ledger import Ledger
    from wikipersona_data.wiki.source import open_pages

    work.mkdir(parents=True, exist_ok=True)
    if recipe.dump.source == "dump":
        recipe.dump_paths()  # one-line error for missing files before the work dir is locked
    with work_lock(work), contextlib.ExitStack() as stack:  # one run per work dir: never pay for a call twice
        cache = CallCache(work / "cache", mode=cache_mode)  # type: ignore[arg-type]
        stack.callback(cache.close)
        sim_url = stack.enter_context(embedded_simulator(recipe, base_url, endpoint_urls))
        client = LLMClient(
            endpoint_configs(recipe, base_url, sim_url, endpoint_urls),
            cache=cache,
            ledger=Ledger(price_table(recipe)),
            max_usd=max_usd,
            transport=transport,
        )
        reader = open_pages(recipe, store=work / "sources")
        ctx = BuildContext(
            recipe=recipe,
            work_dir=work,
            llm=StageLLM(client, recipe),
            client=client,
            reader=reader,
            filter_hook=filter_hook or apply_filters,
            rounds=batch_rounds(recipe, work, client),
        )
        try:
            yield ctx
        finally:
            if ctx.rounds is not None:
                await ctx.rounds.aclose()
            await client.aclose()
            reader.close()


def batch_rounds(recipe: Recipe, work: Path, client: Any) -> Any:
    """In batch or offline mode (an endpoint's ``mode``), the client's collector and the rounds that answer
    it (``llm/deferral.py``, ``llm/batches.py``); None when every endpoint is online."""
    modes = {name: spec.mode for name, spec in recipe.endpoints.items()}
    if all(mode == "online" for mode in modes.values()) or client.cache.mode == "only":
        return None  # a replay makes no call, so nothing waits for a batch (and no provider is asked)
    if client.cache.mode == "off":
        batched = ", ".join(sorted(name for name, mode in modes.items() if mode != "online"))
        raise ConfigError(
            f"{recipe.source}: endpoint(s) {batched} in batch/offline mode need the call cache (batch replies "
            "come back through it): use --cache use or refresh"
        )
    from wikipersona_data.llm.batches import BatchRounds
    from wikipersona_data.llm.deferral import Collector

    client.collector = Collector(modes, registry.deferrable_stages())
    return BatchRounds(work, client, dict(recipe.endpoints))


async def run_all_stages(ctx: BuildContext, scope: registry.Extension | None = None) -> dict[str, Any]:
    """Every stage in order (each resumes from its journal), publishing its rows in ``ctx.shared`` for the
    later stages and the filters. ``build`` and ``extend`` both run through this one place: an extend is
    this run restricted to the added personas (``scope``), the release's rows frozen.

    The heap is settled for the stages (imports, recipe and dump reader are in place by now), so full
    garbage collections stay off the event loop while LLM calls are in flight (``wikipersona_data.heap``).

    In batch or offline mode (``ctx.rounds``) the stages run in rounds: a stage whose calls wait for a batch
    stops (:class:`~wikipersona_data.llm.deferral.Deferred`), the round's requests are answered as batches
    and imported into the call cache, and the stages run again from that stage on (the finished ones are
    kept); a batch journaled by a killed run is finished first.
    """
    up = registry.Upstream(scope=scope)
    with settled_heap():
        if ctx.rounds is None:
            return await _stages_in_order(ctx, up)
        await ctx.rounds.resume()
        while True:
            try:
                rows = await _stages_in_order(ctx, up)
            except Deferred:
                await ctx.client.settle()  # calls still running beside the one that stopped the stage
                await ctx.rounds.answer()
            else:
                ctx.rounds.finished()
                return rows


async def _stages_in_order(ctx: BuildContext, up: registry.Upstream) -> dict[str, Any]:
    """The registry's stages in order; each gets the rows of the stages before it (``registry.Upstream``) and
    its rows, by id, are shared with later stages' filters under the stage's ``shared_as`` name. Stages
    already in ``up`` (an earlier batch round of this run) are not run again."""
    stages = registry.active(ctx.recipe)
    for i, stage in enumerate(stages):
        if stage.name in up.rows:
            continue
        up.rows[stage.name] = await stage.run(ctx, up)
        ctx.shared[stage.shared_as] = {getattr(r, stage.id_field): r for r in up.shared(stage)}
        if up.scope is None:  # an extend's stages return the release's rows beside their own: those stay lists
            _leave_on_disk(ctx, up, stages[: i + 1], needed={n for later in stages[i + 1 :] for n in later.inputs})
    out: dict[str, Any] = {stage.shared_as: up.rows[stage.name] for stage in stages}  # a later stage's rows win
    out["personas"] = registry.described_personas(up)  # no grounded description, no data
    out["folds"] = up.folds
    return out


def _leave_on_disk(
    ctx: BuildContext, up: registry.Upstream, done: Sequence[registry.Stage[Any]], needed: set[str]
) -> None:
    """Rows of finished stages that no later stage reads (``inputs``) and the release does not hold
    (``registry.RESIDENT``) are handed on as :class:`~wikipersona_data.stages.store.StoredRows`, read back one
    row at a time from the stage's ``rows.jsonl`` by the end-of-build reports, instead of staying in memory
    (about 10 candidates and 20 judgments per persona: most of a large build's rows)."""
    from wikipersona_data.stages.store import StoredRows

    for stage in done:
        if stage.name in needed or stage.name in registry.RESIDENT or isinstance(up.rows[stage.name], StoredRows):
            continue
        up.rows[stage.name] = StoredRows(ctx.work_dir / stage.name / "rows.jsonl", stage.row)
        if ctx.shared.get(stage.shared_as) is not None and _shared_by(stage, done) is stage:
            ctx.shared.pop(stage.shared_as)  # the filters that read shared rows read resident stages only


def _shared_by(stage: registry.Stage[Any], done: Sequence[registry.Stage[Any]]) -> registry.Stage[Any]:
    """The stage whose rows ``ctx.shared`` holds under ``stage.shared_as`` (the last finished that shares it)."""
    return [s for s in done if s.shared_as == stage.shared_as][-1]


async def _run_stages(ctx: BuildContext, out: Path, say: Any, report: Any, started: float) -> Path:
    recomputed = prepare_stage_dirs(ctx.work_dir, stage_fingerprints(ctx.recipe))
    if recomputed:
        say(f"settings changed since the last run: {', '.join(recomputed)} (other settings' folders: <stage>@<fp>)")
    rows = await run_all_stages(ctx)
    judgments, pairs, descriptions = rows["judgments"], rows["pairs"], rows["descriptions"]
    pair_rows, persona_records = release_rows(rows["personas"], descriptions, pairs, rows["prefixes"], rows["folds"])
    check_release_rows(ctx.work_dir, ctx.stats, pair_rows, persona_records)
    from wikipersona_data.release.writer import write_release

    manifest = build_manifest(ctx, judgments, pairs, descriptions, started)
    report(summary_table(ctx.stats, ctx.client, manifest.data.ledger.get("totals")))
    path = write_release(out, pairs=pair_rows, personas=persona_records, manifest=manifest)
    n_pairs = sum(len(v) for v in pair_rows.values())
    report(f"release written to {path} ({n_pairs} pairs, {len(persona_records)} personas)")
    return path


def build_manifest(
    ctx: BuildContext, judgments: list[Any], pairs: list[Any], descriptions: list[Any], started: float
) -> Manifest:
    """The manifest facts only the build knows (the writer adds counts, files and grounding from the rows).

    ``extend`` builds its manifest from the same parts (``stage_models``, ``filter_report``, ``stage_ledger``
    over the build's and every extension's rows, ``run_info``) of its own run."""
    from wikipersona_data.release import manifest as mf
    from wikipersona_data.wiki.source import pages_read

    recipe = ctx.recipe
    report = {
        stage: {name: mf.FilterCounts(**counts) for name, counts in filters.items()}
        for stage, filters in filter_report(ctx).items()
    }
    data = mf.ManifestData(
        name=recipe.pretty_name,
        version=recipe.version,
        description=recipe.description,
        fictional_people=recipe.fictional_people,
        recipe=mf.Recipe(name=recipe.name, sha256=recipe.sha256, text=recipe.text),
        dump=mf.Dump(name=recipe.dump.name, date=recipe.dump.date),
        online_pages=pages_read(ctx.reader),
        endpoints=[
            mf.Endpoint(name=name, profile=spec.profile, base_url_redacted=_redacted(ctx, name))
            for name, spec in sorted(recipe.endpoints.items())
        ],
        models=stage_models(ctx),
        templates=all_template_hashes(),
        seeds=recipe.seeds.model_dump(),
        counts={},
        filter_report=report,
        ledger=stage_ledger(ctx),
        divergence=divergence_by_axis(judgments, pairs),
        grounding={},
        license=recipe.license,
        stage_fingerprints=stage_fingerprints(recipe),
    )
    extra = {
        "split": split.split_spec(ctx),
        "judge": judge_stats(judgments),
        "grounding_method": grounding_method(descriptions),
        **filter_extras(ctx, pairs),
    }
    band = reward_band_stats(pairs, list(stored_candidates(ctx.recipe, ctx.work_dir)), recipe.stages.reward)
    if band:  # only a recipe with the reward band has this part: the manifest of others stays as it was
        extra["reward_band"] = band
    data = data.model_copy(update={"ledger": {**data.ledger, "build": extra}})
    return mf.Manifest(data=data, run=run_info(ctx.stats, started))


def stored_candidates(recipe: Recipe, work_dir: Path) -> Iterable[Any]:
    """The candidates later stages saw (the reward stage's when it ran, else respond's), read from the store of
    ``work_dir`` (a build's work dir, or an extension's folder)."""
    from wikipersona_data.stages.store import StoredRows

    last = [s for s in registry.active(recipe) if s.shared_as == "candidates"][-1]
    return StoredRows(work_dir / last.name / "rows.jsonl", last.row)


def stage_models(ctx: BuildContext) -> dict[str, ModelUse]:
    """Per recipe ``[stages.X]`` spec: the model requested and the names the server said it served."""
    served = served_models(ctx)
    models = {}
    for stage in STAGE_NAMES:
        spec = getattr(ctx.recipe.stages, stage)
        if spec is not None:
            seen = served.get(spec.model, set())
            if stage in ("embed", "reward"):  # their replies leave no rows: the client saw their served model
                seen = seen | embed_served(ctx).get(spec.model, set())
            models[stage] = ModelUse(requested=spec.model, served=sorted(seen))
    return models


def stage_ledger(ctx: BuildContext, work_dirs: Sequence[Path] | None = None) -> dict[str, Any]:
    """Calls, tokens and cost behind the rows of ``work_dirs`` (default: this build's), recomputed from the
    call cache (``stages/usage.py``): the one usage sum of a build and of an extended release."""
    return data_ledger(ctx.client.cache, ctx.client.ledger.prices, stage_call_keys(ctx, work_dirs))


def run_info(stats: Mapping[str, StageStats], started: float) -> RunInfo:
    """The manifest's ``run`` part: what differs between equal builds (time, versions), never data."""
    import platform

    from wikipersona_data import __version__

    return RunInfo(
        wall_seconds=round(time.monotonic() - started, 3),
        package_version=__version__,
        python=platform.python_version(),
        durations={stage: round(s.seconds, 3) for stage, s in stats.items()},
    )


def filter_report(ctx: BuildContext) -> dict[str, dict[str, dict[str, Any]]]:
    """Per stage and filter: kept / dropped by reason (verify/report.py)."""
    return stage_report(ctx.work_dir, ctx.stats)


def filter_extras(ctx: BuildContext, pairs: list[Any]) -> dict[str, Any]:
    """Flags, retries, length bias and divergence figures of the filters."""
    return {"filters": build_extras(ctx.work_dir, ctx.stats, pairs)}


def _redacted(ctx: BuildContext, name: str) -> str:
    from wikipersona_data.release.manifest import redact_base_url

    return redact_base_url(ctx.client.endpoints[name].base_url)


def served_models(ctx: BuildContext) -> dict[str, set[str]]:
    """Requested model -> models the server said it used, from the rows (the same for a resumed build)."""
    from wikipersona_data.stages.store import iter_rows

    out: dict[str, set[str]] = {}
    for stage in registry.active(ctx.recipe):
        for row in iter_rows(ctx.work_dir / stage.name / "rows.jsonl", stage.row):
            provenance = getattr(row, "provenance", None)
            if provenance is not None and provenance.served_model:
                out.setdefault(provenance.model, set()).add(provenance.served_model)
    return out


def embed_served(ctx: BuildContext) -> dict[str, set[str]]:
    """Requested embedding (and reward) model -> served names, from every reply the client saw (preflight
    included), kept in ``<work>/cache/served_embed.json`` so a resumed or offline rebuild records the same names."""
    path = ctx.work_dir / "cache" / "served_embed.json"
    known: dict[str, set[str]] = {}
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        known = {str(m): {str(n) for n in names} for m, names in stored.items() if isinstance(names, list)}
    except (OSError, ValueError, AttributeError):
        pass
    wanted = {ctx.recipe.stages.embed.model} | ({ctx.recipe.stages.reward.model} if ctx.recipe.stages.reward else set())
    for model, names in ctx.client.served.items():
        if model in wanted:
            known.setdefault(model, set()).update(names)
    if known and ctx.client.cache.mode != "off":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({m: sorted(n) for m, n in sorted(known.items())}), encoding="utf-8")
    return known


def stage_call_keys(ctx: BuildContext, work_dirs: Sequence[Path] | None = None) -> dict[str, set[str]]:
    """Call keys cited by each stage's final rows and rejects (what the data cost), in ``work_dirs`` (default:
    the build's; an extended release's rows live in the build's folder and one folder per extension)."""
    from wikipersona_data.stages.rows import RejectRow
    from wikipersona_data.stages.store import iter_rows

    out: dict[str, set[str]] = {}
    seen: set[str] = set()
    folders = list(work_dirs or [ctx.work_dir])
    for stage in registry.active(ctx.recipe):
        rows = itertools.chain.from_iterable(
            itertools.chain(
                iter_rows(work / stage.name / "rows.jsonl", stage.row),
                iter_rows(work / stage.name / "rejects.jsonl", RejectRow),
            )
            for work in folders
        )
        # a call is behind the data once, in the first stage that cites it (the reward stage's candidates
        # carry respond's call keys along with their own)
        out[stage.name] = keys_of(rows) - seen
        seen |= out[stage.name]
    return out


def summary_table(stats: dict[str, StageStats], client: Any, data_totals: dict[str, Any] | None = None) -> str:
    """Per stage: rows, dropped by filters, rejected, calls, cache hits, cost; then totals, the rows redone
    (re-judged, regenerated: not drops), and, when this run's totals differ from them (a resumed build, a
    replay), the calls and cost behind the data as the manifest and the card state them."""
    header = f"{'stage':<10}{'rows':>7}{'dropped':>9}{'rejected':>10}{'calls':>8}{'hits':>8}{'cost $':>11}{'sec':>8}"
    lines = [header, "-" * len(header)]
    for stage in STAGES:
        s = stats.get(stage)
        if s is None:
            continue
        cost = "n/a" if s.cost_usd is None else f"{s.cost_usd:.4f}"
        lines.append(
            f"{stage:<10}{s.rows:>7}{s.dropped:>9}{s.rejected:>10}{s.calls:>8}{s.cache_hits:>8}{cost:>11}{s.seconds:>8.1f}"
        )
    # the preflight's tiny calls have their own ledger line, shown apart: they are not behind the data
    summary = client.ledger.summary() if client is not None else {}
    for line in summary.get("by_stage_model", []):
        if line["stage"] == "preflight":
            pre_cost = "n/a" if line["cost_usd"] is None else f"{line['cost_usd']:.4f}"
            lines.append(f"{'preflight':<10}{line['model'][:26]:>26}{line['calls']:>8}{'':>8}{pre_cost:>11}")
    totals = client.ledger.summary(exclude=("preflight",)).get("totals", {}) if client is not None else {}
    cost = totals.get("cost_usd")
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<10}{'':>7}{'':>9}{'':>10}{totals.get('calls', 0):>8}{totals.get('cache_hits', 0):>8}"
        f"{'n/a' if cost is None else f'{cost:.4f}':>11}"
    )
    for stage in STAGES:
        s = stats.get(stage)
        for name, n in sorted((s.retried if s is not None else {}).items()):
            lines.append(f"{stage}: {n} {_UNIT.get(stage, 'row')}{'' if n == 1 else 's'} {name}")
    data_cost = (data_totals or {}).get("cost_usd")
    shown = (totals.get("calls"), "n/a" if cost is None else f"{cost:.4f}")
    if data_totals and (data_totals.get("calls"), "n/a" if data_cost is None else f"{data_cost:.4f}") != shown:
        lines.append(
            f"behind the data (manifest and card): {data_totals.get('calls', 0)} calls, "
            f"{'n/a' if data_cost is None else f'${data_cost:.4f}'} (this run resumed or replayed part of it)"
        )
    from wikipersona_data.llm.ledger import error_line

    errors = error_line((summary.get("totals") or {}).get("errors") or {})
    if errors:
        lines.append(errors)
    return "\n".join(lines)


_UNIT = {"describe": "description", "judge": "judgment"}
