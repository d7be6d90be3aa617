"""The small public API a script needs; ``wikipersona_data`` re-exports it and the CLI commands call it.

Every function here is what one command does, minus the printing: errors are raised as
:class:`~wikipersona_data.errors.WikipersonaError` subclasses (one line each), results are returned.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from wikipersona_data.stages.recipe import Recipe, load_recipe
from wikipersona_data.wiki.lookup import DumpReader
from wikipersona_data.wiki.scan import ScanSummary

if TYPE_CHECKING:
    from wikipersona_data.evaluate.run import EndpointOptions, EvalResult
    from wikipersona_data.release.verify import VerifyReport

__all__ = ["DumpReader", "Recipe", "build", "evaluate", "extend", "load_recipe", "scan", "verify_release"]

Echo = Callable[[str], None]


def _quiet(_line: str) -> None:
    """Scripts get no log lines unless they pass ``echo``."""


def scan(
    dump: str | Path,
    index: str | Path | None = None,
    *,
    out: str | Path,
    workers: int | None = None,
) -> ScanSummary:
    """One pass over ``dump``: every person page into the candidate table ``out`` (``.parquet`` or ``.jsonl``),
    sorted by page id, with the fame signal. Returns the summary (pages, people, living, errors).

    The same datatrove pipeline as ``wikipersona scan --executor local`` (``wiki/scan_run.py``); its task logs
    go beside ``out`` (``<out>.scan-logs``), so a killed scan run again redoes only unfinished tasks."""
    from wikipersona_data.wiki.scan import ScanOptions
    from wikipersona_data.wiki.scan_run import plan_scan, run_local
    from wikipersona_data.wiki.table import table_format

    table = Path(out).resolve()
    table_format(table)  # a bad extension fails before the pass, not after it
    table.parent.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    options = ScanOptions(workers=workers, progress=False)
    logs = table.with_name(table.name + ".scan-logs")
    plan = plan_scan(Path(dump), Path(index) if index is not None else None, logs, options, None, workers)
    return run_local(plan, table, options, workers)


def build(
    recipe: str | Path,
    *,
    work: str | Path | None = None,
    out: str | Path | None = None,
    base_url: str | None = None,
    max_usd: float | None = None,
    cache_mode: str = "use",
    endpoint_urls: Mapping[str, str] | None = None,
    progress: bool = False,
    echo: Echo = _quiet,
    report: Echo | None = None,
) -> Path:
    """Run every stage of ``recipe`` (resumable; LLM calls cached under ``work``) and write the release folder.

    Returns the release folder (``out``, default ``<work>/release``; ``work`` defaults to ``work/<recipe name>``).
    ``echo`` receives the log, ``report`` the summary table and where the release went (default ``echo``)."""
    from wikipersona_data.stages.pipeline import build_recipe

    return build_recipe(
        recipe,
        work_dir=work,
        out_dir=out,
        base_url=base_url,
        max_usd=max_usd,
        cache_mode=cache_mode,
        progress=progress,
        echo=echo,
        report=report or echo,
        endpoint_urls=endpoint_urls,
    )


def extend(
    release: str | Path,
    personas: Mapping[str, Iterable[str]],
    *,
    out: str | Path | None = None,
    work: str | Path | None = None,
    recipe: str | Path | None = None,
    base_url: str | None = None,
    cache_mode: str = "use",
    dump: str | Path | None = None,
    index: str | Path | None = None,
    progress: bool = False,
    echo: Echo = _quiet,
) -> Path:
    """Add personas to ``release``: ``{"Wiki title": ["axis:category", ...]}``, as ``--persona/--axis`` do.

    Only the new personas' LLM calls are made; the old rows are kept byte for byte. Returns the new release
    folder (minor version bumped). Endpoints and prices come from ``recipe`` (else the demo's simulator)."""
    from wikipersona_data.release.extend import extend_release, pair_options

    tokens = [(option, value) for title, axes in personas.items() for option, value in _tokens(title, axes)]
    return extend_release(
        Path(release),
        pair_options(tokens),
        out=Path(out) if out is not None else None,
        work=Path(work) if work is not None else None,
        base_url=base_url,
        cache_mode=cache_mode,
        dump=Path(dump) if dump is not None else None,
        index=Path(index) if index is not None else None,
        progress=progress,
        echo=echo,
        recipe_path=Path(recipe) if recipe is not None else None,
    )


def _tokens(title: str, axes: Iterable[str]) -> list[tuple[str, str]]:
    if isinstance(axes, str):  # {"Title": "diet:vegan"} would otherwise be read letter by letter
        axes = [axes]
    return [("persona", title), *(("axis", a) for a in axes)]


def verify_release(release: str | Path) -> VerifyReport:
    """Re-check a release folder (schema, counts, checksums, leaks, duplicates); ``report.ok`` says if all pass."""
    from wikipersona_data.release.verify import verify_release as _verify

    return _verify(Path(release))


def evaluate(
    release: str | Path,
    *,
    policy: EndpointOptions | str | None = None,
    policy_model: str | None = None,
    accuracy: EndpointOptions | str | bool | None = None,
    reward: EndpointOptions | str | None = None,
    reward_route: str | None = None,
    prefix: str | Iterable[str] = "none,name,description,inferred,fewshot",
    recipe: str | Path | None = None,
    base_url: str | None = None,
    work: str | Path | None = None,
    out: str | Path | None = None,
    limit: int | None = None,
    max_usd: float | None = None,
    cache_mode: str = "use",
    replicates: int = 1000,
    seed: int = 0,
    unseen_folds: Iterable[int] | None = None,
    charts: bool = True,
    estimate: bool = False,
    progress: bool = False,
    echo: Echo = _quiet,
    policy_temperature: float = 0.0,
    policy_max_tokens: int = 512,
    policy_seed: int = 0,
) -> EvalResult:
    """The paper's evaluation of ``release`` (``wikipersona evaluate``): a policy's win rate against the test
    pairs' chosen answers under each prefix mode (``policy``: URL, recipe endpoint or stage; see
    ``evaluate/endpoints.py``), and/or a judge's preference accuracy (``accuracy=True`` for the release's judge,
    or a URL / endpoint / stage) and a reward model's (``reward``: a vLLM URL or a recipe endpoint).
    ``estimate=True`` only counts calls, tokens and cost. Writes ``eval.json``, ``outcomes.jsonl`` and charts
    into ``out``; returns the
    report and the table."""
    from wikipersona_data.evaluate.prompts import parse_modes
    from wikipersona_data.evaluate.run import EndpointOptions, EvalOptions
    from wikipersona_data.evaluate.run import evaluate as run

    if isinstance(policy, str):
        policy = EndpointOptions(policy, policy_model)
    if accuracy is True:
        accuracy = EndpointOptions("judge")
    elif isinstance(accuracy, str):
        accuracy = EndpointOptions(accuracy)
    elif accuracy is False:
        accuracy = None
    if isinstance(reward, str):
        reward = EndpointOptions(reward)
    modes = parse_modes(prefix if isinstance(prefix, str) else ",".join(prefix))
    options = EvalOptions(
        release=Path(release),
        modes=modes,
        policy=policy,
        accuracy=accuracy,
        reward=reward,
        reward_route=reward_route,
        recipe=Path(recipe) if recipe is not None else None,
        base_url=base_url,
        work=Path(work) if work is not None else None,
        out=Path(out) if out is not None else None,
        limit=limit,
        max_usd=max_usd,
        cache_mode=cache_mode,
        replicates=replicates,
        seed=seed,
        unseen_folds=frozenset(unseen_folds) if unseen_folds is not None else None,
        charts=charts,
        estimate=estimate,
        progress=progress,
        policy_temperature=policy_temperature,
        policy_max_tokens=policy_max_tokens,
        policy_seed=policy_seed,
    )
    return run(options, echo)
