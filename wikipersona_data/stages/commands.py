"""``wikipersona build`` and ``wikipersona estimate``: thin click wrappers over the pipeline."""

from __future__ import annotations

from pathlib import Path

import click

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
@click.option("--no-progress", is_flag=True, help="No progress bars (logs, CI).")
def build(
    recipe: Path,
    work: Path | None,
    out: Path | None,
    base_url: str | None,
    endpoint_url: tuple[str, ...],
    max_usd: float | None,
    cache_mode: str,
    no_progress: bool,
) -> int:
    """Run every stage of RECIPE (resumable: a rerun computes only missing rows) and write the release."""
    from wikipersona_data.stages.pipeline import build_recipe

    build_recipe(
        recipe,
        work_dir=work,
        out_dir=out,
        base_url=base_url,
        max_usd=max_usd,
        cache_mode=cache_mode,
        progress=not no_progress,
        echo=lambda msg: click.echo(msg, err=True),
        report=click.echo,
        endpoint_urls=parse_endpoint_urls(endpoint_url),
    )
    return 0


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
def estimate(recipe: Path) -> int:
    """Calls, tokens and an upper-bound cost per stage of RECIPE, computed before spending anything."""
    from wikipersona_data.stages.estimate import estimate as run_estimate
    from wikipersona_data.stages.estimate import format_estimate
    from wikipersona_data.stages.recipe import load_recipe

    loaded = load_recipe(recipe, check_dump=False)  # counting needs no dump
    click.echo(format_estimate(run_estimate(loaded)))
    return 0
