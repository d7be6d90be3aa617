"""``wikipersona build`` and ``wikipersona estimate``: thin click wrappers over the pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from wikipersona_data.conventions import progress_option, want_progress
from wikipersona_data.errors import ConfigError


@click.command()
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--work", type=click.Path(path_type=Path), default=None, help="Work dir (default work/<recipe name>/).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Release folder (default <work>/release).")
@click.option("--base-url", default=None, help="OpenAI-compatible endpoint for every recipe endpoint.")
@click.option(
    "--endpoint-url",
    "endpoint_url",
    multiple=True,
    metavar="NAME=URL",
    help="URL of one recipe endpoint (repeatable); wins over --base-url, e.g. chat=URL1 --endpoint-url embed=URL2.",
)
@click.option("--max-usd", type=float, default=None, help="Stop scheduling calls once this much would be spent.")
@click.option(
    "--cache",
    "cache_mode",
    type=click.Choice(["use", "refresh", "only", "off"]),
    default="use",
    show_default=True,
    help="Call cache: use it, refresh it, replay only (fail on a miss), or bypass it.",
)
@progress_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (release, counts, ledger) on stdout.")
def build(
    recipe: Path,
    work: Path | None,
    out: Path | None,
    base_url: str | None,
    endpoint_url: tuple[str, ...],
    max_usd: float | None,
    cache_mode: str,
    progress: bool | None,
    as_json: bool,
) -> int:
    """Run every stage of RECIPE (resumable: a rerun computes only missing rows) and write the release.

    The summary table and where the release was written go to stdout; progress and logs to stderr.
    """
    from wikipersona_data.api import build as build_release

    path = build_release(
        recipe,
        work=work,
        out=out,
        base_url=base_url,
        max_usd=max_usd,
        cache_mode=cache_mode,
        progress=want_progress(progress),
        echo=lambda msg: click.echo(msg, err=True),
        report=(lambda _msg: None) if as_json else click.echo,
        endpoint_urls=parse_endpoint_urls(endpoint_url),
    )
    if as_json:
        click.echo(json.dumps(release_summary(path), indent=2, ensure_ascii=False))
    return 0


def release_summary(path: Path) -> dict[str, Any]:
    """What ``build --json`` prints: where the release is, its counts, and the ledger behind its data."""
    from wikipersona_data.release.manifest import Manifest

    manifest_path = Path(path) / "manifest.json"
    if not manifest_path.is_file():  # the release writer is not installed: only stage outputs exist
        return {"release": None, "work_dir": str(path)}
    data = Manifest.load(manifest_path).data
    return {
        "release": str(path),
        "version": data.version,
        "counts": data.counts,
        "ledger": {"totals": data.ledger.get("totals", {}), "by_stage_model": data.ledger.get("by_stage_model", [])},
    }


def parse_endpoint_urls(values: tuple[str, ...]) -> dict[str, str]:
    """``("chat=http://a/v1", "embed=http://b/v1")`` -> ``{"chat": ..., "embed": ...}``; one-line errors."""
    urls: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        name, url = name.strip(), url.strip()
        if not sep or not name or not url:
            raise ConfigError(f"--endpoint-url {value!r}: expected NAME=URL")
        if name in urls:
            raise ConfigError(f"--endpoint-url {name}: given twice")
        urls[name] = url
    return urls


@click.command()
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON (stages in pipeline order).")
def estimate(recipe: Path, as_json: bool) -> int:
    """Calls, tokens and an upper-bound cost per stage of RECIPE, computed before spending anything."""
    from wikipersona_data.stages.estimate import estimate as run_estimate
    from wikipersona_data.stages.estimate import format_estimate
    from wikipersona_data.stages.order import pipeline_rank
    from wikipersona_data.stages.recipe import load_recipe

    loaded = load_recipe(recipe, check_dump=False)  # counting needs no dump
    table = run_estimate(loaded)
    if as_json:
        rows = sorted(table["by_stage_model"], key=lambda r: (pipeline_rank(r["stage"]), r["model"]))
        click.echo(json.dumps({**table, "by_stage_model": rows}, indent=2))
    else:
        click.echo(format_estimate(table))
    return 0
