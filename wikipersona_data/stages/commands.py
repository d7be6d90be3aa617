"""``wikipersona build`` and ``wikipersona estimate``: thin click wrappers over the pipeline."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--work", type=click.Path(path_type=Path), default=None, help="Work dir (default work/<recipe name>/).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Release folder (default <work>/release).")
@click.option("--base-url", default=None, help="OpenAI-compatible endpoint for every recipe endpoint.")
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
    )
    return 0


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
