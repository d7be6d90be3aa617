"""One evaluate run: the client (cache, ledger, budget, limits) over every (test pair, prefix mode).

Resumable and cached like a build: every call goes through the content-addressed cache of the work dir
(default ``work/<recipe name>`` beside the release, as for ``extend``: a request identical to one already paid
for is a cache hit), under the work dir's lock; a killed or over-budget run keeps every call it paid
for, and running it again replays them and pays only for the rest. ``--cache only`` replays without sending
anything (no preflight either).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wikipersona_data.errors import ConfigError, InputError, WikipersonaError
from wikipersona_data.evaluate import accuracy, winrate
from wikipersona_data.evaluate.data import EvalRelease, load_release
from wikipersona_data.evaluate.endpoints import Target, resolve
from wikipersona_data.evaluate.prompts import check_prefixes
from wikipersona_data.evaluate.stats import Scored, summarize
from wikipersona_data.evaluate.winrate import Outcome

Echo = Callable[[str], None]


@dataclass
class EndpointOptions:
    """``--X`` VALUE and its ``--X-model`` / ``--X-profile`` / ``--X-key-env`` (see ``endpoints.py``)."""

    value: str
    model: str | None = None
    profile: str | None = None
    key_env: str | None = None


@dataclass
class EvalOptions:
    release: Path
    modes: tuple[str, ...]
    policy: EndpointOptions | None = None
    accuracy: EndpointOptions | None = None
    """Preference accuracy of this judge (``EndpointOptions("judge")``: the release's judge stage)."""
    reward: EndpointOptions | None = None
    """Preference accuracy of this reward model (URL, default profile vllm, or a recipe endpoint)."""
    reward_route: str | None = None
    """vLLM route of the reward model (default: the reward band's, else ``classify``)."""
    reward_score_index: int = 0
    recipe: Path | None = None
    base_url: str | None = None
    work: Path | None = None
    out: Path | None = None
    policy_temperature: float = 0.0
    policy_max_tokens: int = 512
    policy_seed: int = 0
    limit: int | None = None
    max_usd: float | None = None
    cache_mode: str = "use"
    replicates: int = 1000
    seed: int = 0
    unseen_folds: frozenset[int] | None = None
    progress: bool = False
    charts: bool = True
    estimate: bool = False
    """Only count the calls, tokens and cost (``evaluate/estimate.py``); send and write nothing."""


@dataclass
class EvalResult:
    out: Path
    report: dict[str, Any]
    table: list[str]
    charts: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.report["complete"])


def _quiet(_line: str) -> None:
    """No log lines unless the caller passes ``echo``."""


def evaluate(options: EvalOptions, echo: Echo = _quiet) -> EvalResult:
    """Run item 1 (``options.policy``) and/or item 2 (``options.accuracy``) and write ``eval.json``, the outcomes
    and the charts into the output folder; returns the report and the table (the CLI prints it)."""
    from wikipersona_data.evaluate.report import build_report, table_lines

    if options.policy is None and options.accuracy is None and options.reward is None:
        raise ConfigError("give --policy ENDPOINT_OR_RECIPE_KEY, --accuracy and/or --accuracy-reward")
    if options.limit is not None and options.limit < 1:
        raise ConfigError(f"--limit {options.limit}: must be at least 1")
    if options.replicates < 100:
        raise ConfigError(f"--bootstrap {options.replicates}: use at least 100 replicates for a 95 % interval")
    release = load_release(options.release, options.recipe)
    pairs = release.test_pairs[: options.limit] if options.limit else release.test_pairs
    check_prefixes(release.personas, {p["persona_id"] for p in pairs}, options.modes)
    folds = {p["persona_fold"] for p in pairs}
    if options.unseen_folds is not None and not options.unseen_folds <= {f for f in folds if f is not None}:
        missing = sorted(options.unseen_folds - folds)
        raise ConfigError(f"--unseen-folds: fold {missing[0]} has no evaluated test pair (folds: {sorted(folds)})")
    targets = _targets(options, release)
    work = Path(options.work) if options.work else release.path.resolve().parent / "work" / release.recipe.name
    out = Path(options.out) if options.out else _default_out(release.path, targets)
    if options.estimate:
        from wikipersona_data.evaluate.estimate import estimate_table, format_table

        table = estimate_table(options, release, pairs, targets)
        report = {"estimate": table, "pairs": len(pairs), "prefix_modes": list(options.modes), "complete": True}
        return EvalResult(out=out, report=report, table=format_table(table), notes=list(release.notes))
    _refuse_foreign_out(out)
    for line in release.notes:
        echo(line)
    if options.work is None:
        echo(f"work dir: {work} (beside the release; --work to choose another)")
    outcomes, ledger = asyncio.run(_run(options, release, pairs, targets, work))
    summaries = _summaries(options, pairs, outcomes)
    report = build_report(options, release, pairs, targets, outcomes, summaries, ledger)
    result = EvalResult(out=out, report=report, table=table_lines(report))
    _write(out, report, outcomes)
    for stale in sorted((out / "charts").glob("*.png")):  # an earlier run's charts must not outlive its eval.json
        stale.unlink()
    if options.charts:
        result.charts, note = _charts(out, report)
        if note:
            result.notes.append(note)
    return result


def _targets(options: EvalOptions, release: EvalRelease) -> dict[str, Target]:
    found: dict[str, Target] = {}
    if options.policy is not None:
        o = options.policy
        found["policy"] = resolve(
            o.value,
            role="evaluate-policy",
            option="--policy",
            recipe=release.recipe,
            model=o.model,
            profile=o.profile,
            key_env=o.key_env,
        )
        judge = release.recipe.stage("judge")  # the release's judge compares the policy's answers
        found["judge"] = Target("judge", judge.endpoint, judge.model, None, "stage judge")
    if options.accuracy is not None:
        o = options.accuracy
        found["accuracy"] = resolve(
            o.value,
            role="evaluate-accuracy",
            option="--accuracy-judge",
            recipe=release.recipe,
            model=o.model,
            profile=o.profile,
            key_env=o.key_env,
        )
    if options.reward is not None:
        o = options.reward
        url = o.value.strip().lower().startswith(("http://", "https://"))
        found["reward"] = resolve(
            o.value,
            role="evaluate-reward",
            option="--accuracy-reward",
            recipe=release.recipe,
            model=o.model,
            profile=(o.profile or "vllm") if url else o.profile,
            key_env=o.key_env,
        )
        band = release.recipe.stages.reward if o.value == "reward" else None
        if band is not None:  # the recipe's reward band: its route and score index, unless --*-route says
            options.reward_route = options.reward_route or band.route
            options.reward_score_index = band.score_index
    return found


def _default_out(release: Path, targets: dict[str, Target]) -> Path:
    if "policy" in targets:
        who = targets["policy"].model
    else:
        who = "accuracy-" + "-".join(targets[k].model for k in ("accuracy", "reward") if k in targets)
    tag = re.sub(r"[^a-z0-9.]+", "-", who.lower()).strip("-") or "policy"
    return release.with_name(f"{release.name}-eval-{tag}")


def _refuse_foreign_out(out: Path) -> None:
    """The output folder is new, empty, or an earlier evaluate output (its eval.json is replaced)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "eval.json").is_file())):
        raise InputError(f"--out {out}: exists and is not an evaluate output folder; choose another")


async def _run(
    options: EvalOptions, release: EvalRelease, pairs: list[dict[str, Any]], targets: dict[str, Target], work: Path
) -> tuple[dict[str, dict[str, list[Outcome]]], dict[str, Any]]:
    from tqdm import tqdm

    from wikipersona_data.heap import settled_heap
    from wikipersona_data.llm.cache import CallCache
    from wikipersona_data.llm.client import LLMClient
    from wikipersona_data.llm.ledger import Ledger
    from wikipersona_data.llm.preflight import preflight
    from wikipersona_data.stages.calls import StageLLM
    from wikipersona_data.stages.pipeline import embedded_simulator, endpoint_configs, price_table
    from wikipersona_data.stages.worklock import work_lock

    recipe = release.recipe
    work.mkdir(parents=True, exist_ok=True)
    with work_lock(work), contextlib.ExitStack() as stack:
        cache = CallCache(work / "cache", mode=options.cache_mode)  # type: ignore[arg-type]
        stack.callback(cache.close)
        sim_url = stack.enter_context(embedded_simulator(recipe, options.base_url))
        configs = endpoint_configs(recipe, options.base_url, sim_url)
        configs.update({t.endpoint: t.config for t in targets.values() if t.config is not None})
        client = LLMClient(configs, cache=cache, ledger=Ledger(price_table(recipe)), max_usd=options.max_usd)
        try:
            if options.cache_mode != "only":
                # a reward model answers no chat call: its endpoint is checked by its first call
                uses = sorted({(t.endpoint, t.model, "chat") for k, t in targets.items() if k != "reward"})
                await preflight(client, uses)
            ctx = winrate.JudgeContext(recipe, winrate.LedgerAs(client, recipe, winrate.JUDGE_STAGE))
            jobs: list[tuple[str, str, Any]] = []
            if "policy" in targets:
                params = winrate.policy_params(
                    options.policy_temperature, options.policy_max_tokens, options.policy_seed
                )
                for mode in options.modes:
                    for pair in pairs:
                        jobs.append(
                            (
                                "win_rate",
                                mode,
                                winrate.evaluate_pair(client, ctx, release, targets["policy"], params, pair, mode),
                            )
                        )
            if "accuracy" in targets:
                spec = recipe.stage("judge")
                params = StageLLM(client, recipe).params("judge")
                for mode in options.modes:
                    for pair in pairs:
                        persona = release.personas[pair["persona_id"]]
                        coro = accuracy.prefers(
                            client, targets["accuracy"], params, spec.max_tokens, spec.max_reasks, pair, persona, mode
                        )
                        jobs.append(("accuracy", mode, coro))
            if "reward" in targets:
                for mode in options.modes:
                    for pair in pairs:
                        persona = release.personas[pair["persona_id"]]
                        coro = accuracy.reward_prefers(
                            client,
                            targets["reward"],
                            options.reward_route or "classify",
                            options.reward_score_index,
                            pair,
                            persona,
                            mode,
                        )
                        jobs.append(("reward", mode, coro))
            bar = tqdm(total=len(jobs), desc=" evaluate", unit="pair", disable=not options.progress, dynamic_ncols=True)

            async def tracked(coro: Any) -> Any:
                try:
                    return await coro
                finally:
                    bar.update(1)

            with settled_heap():
                results = await asyncio.gather(*(tracked(c) for _, _, c in jobs), return_exceptions=True)
            bar.close()
            for value in results:
                if isinstance(value, WikipersonaError):
                    raise value  # budget reached, key refused, cache miss in 'only' mode: every paid call is cached
            for value in results:
                if isinstance(value, BaseException):
                    raise value
            outcomes: dict[str, dict[str, list[Outcome]]] = {}
            for (kind, mode, _), value in zip(jobs, results, strict=True):
                outcomes.setdefault(kind, {}).setdefault(mode, []).append(value)
            return outcomes, client.ledger.summary()
        finally:
            await client.aclose()


def _summaries(
    options: EvalOptions, pairs: list[dict[str, Any]], outcomes: dict[str, dict[str, list[Outcome]]]
) -> dict[str, dict[str, Any]]:
    by_id = {p["pair_id"]: p for p in pairs}
    out: dict[str, dict[str, Any]] = {}
    for kind, by_mode in outcomes.items():
        for mode, rows in by_mode.items():
            scored = [
                Scored(
                    pair_id=o.pair_id,
                    persona_id=by_id[o.pair_id]["persona_id"],
                    question_type=by_id[o.pair_id]["question_type"],
                    axis=by_id[o.pair_id]["axis"],
                    fold=by_id[o.pair_id]["persona_fold"],
                    score=o.score,
                )
                for o in rows
                if o.score is not None
            ]
            unseen = options.unseen_folds if kind == "win_rate" else None
            summary = (
                summarize(scored, replicates=options.replicates, seed=options.seed, unseen_folds=unseen)
                if scored
                else None
            )
            out.setdefault(kind, {})[mode] = summary
    return out


def _write(out: Path, report: dict[str, Any], outcomes: dict[str, dict[str, list[Outcome]]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"kind": kind, **o.as_json()}, ensure_ascii=False, sort_keys=True)
        for kind, by_mode in sorted(outcomes.items())
        for _, rows in sorted(by_mode.items())
        for o in sorted(rows, key=lambda o: o.pair_id)
    ]
    (out / "outcomes.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    (out / "eval.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _charts(out: Path, report: dict[str, Any]) -> tuple[dict[str, str], str | None]:
    """The charts, when matplotlib can draw them; never needed for eval.json or the table."""
    try:
        from wikipersona_data.evaluate.charts import render
    except ImportError as err:
        return {}, f"charts skipped: {err}"
    try:
        return render(out, report), None
    except (OSError, ValueError, RuntimeError) as err:
        return {}, f"charts skipped: {type(err).__name__}: {err}"
