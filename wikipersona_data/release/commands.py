"""``wikipersona verify``, ``publish`` and ``demo``: thin click wrappers over the release modules."""

from __future__ import annotations

from pathlib import Path

import click

from wikipersona_data.conventions import progress_option, quiet_library_bars, release_endpoint_options, want_progress
from wikipersona_data.errors import WikipersonaError


@click.command()
@click.argument("release", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document (status per check).")
def verify(release: Path, as_json: bool) -> int:
    """Re-check a release folder: checksums, schema, counts, ids, leaks, duplicates, splits, card.

    A check that cannot run because another found its input broken is shown as skipped, not failed.
    """
    import json

    from wikipersona_data.api import verify_release

    report = verify_release(release)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    else:
        for line in report.lines():
            click.echo(line)
    if not report.ok:
        raise WikipersonaError(_verdict(release, report))
    return 0


def _verdict(release: Path, report: object) -> str:
    failures, skipped = report.failures, report.skipped  # type: ignore[attr-defined]
    first = failures[0].name if failures else skipped[0].name
    tail = f"; {len(skipped)} skipped" if skipped else ""
    return f"{release}: {len(failures)} check(s) failed, first: {first}{tail}"


def _require_token() -> None:
    """Say that no token was found, and where one is looked for, before anything is sent (never print one)."""
    from huggingface_hub import constants, get_token

    if get_token():
        return
    raise WikipersonaError(
        "no Hugging Face token found: set HF_TOKEN, or run `hf auth login` (it stores the token in "
        f"{constants.HF_TOKEN_PATH}); --dry-run needs none"
    )


@click.command()
@click.argument("release", type=click.Path(path_type=Path))
@click.option("--repo-id", required=True, help="Hub dataset repo, ORG/NAME.")
@click.option("--private", is_flag=True, help="Create the repo as private (if it does not exist yet).")
@click.option("--dry-run", is_flag=True, help="Show what would be uploaded and tagged; call nothing remote.")
def publish(release: Path, repo_id: str, private: bool, dry_run: bool) -> int:
    """Verify, upload to the Hugging Face Hub and tag vX.Y.Z (token from HF_TOKEN or `hf auth login`)."""
    from wikipersona_data.release.publish import publish_release

    api = None
    if not dry_run:
        _require_token()
        from huggingface_hub import HfApi

        api = HfApi()  # reads HF_TOKEN / the stored login itself; the token never passes through our code
    publish_release(release, repo_id, api=api, private=private, dry_run=dry_run, echo=click.echo)
    return 0


@click.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("demo-release"),
    show_default=True,
    help="Release folder.",
)
@click.option(
    "--work",
    type=click.Path(path_type=Path),
    default=Path("work/demo"),
    show_default=True,
    help="Work dir of the stages (cache, intermediate JSONL); re-running reuses it.",
)
@progress_option
def demo(out: Path, work: Path, progress: bool | None) -> int:
    """Build builders/demo.toml on the bundled demo dump with the simulator, self-test it, show rows.

    Results (the build table, verify, loaded rows) on stdout; the simulator's URL and progress on stderr.
    """
    from wikipersona_data.release.demo import run_demo

    quiet_library_bars()
    run_demo(
        out=out, work=work, echo=click.echo, log=lambda msg: click.echo(msg, err=True), progress=want_progress(progress)
    )
    return 0


class _OrderedOptions(click.Command):
    """Keeps the command-line order of --persona and --axis (click groups a repeated option's values),
    so each --axis can belong to the --persona written before it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        tokens: list[tuple[str, str]] = []
        it = iter(args)
        for arg in it:
            name, eq, value = arg.partition("=")
            if name in ("--persona", "--axis"):
                tokens.append((name[2:], value if eq else next(it, "")))
        ctx.meta["extend_order"] = tokens
        return super().parse_args(ctx, args)


@click.command(cls=_OrderedOptions)
@click.argument("release", type=click.Path(path_type=Path))
@click.option("--persona", "titles", multiple=True, required=True, help="Wikipedia title to add (repeatable).")
@click.option(
    "--axis",
    "axes",
    multiple=True,
    required=True,
    help="AXIS:CATEGORY of the --persona written before it (one or more per persona).",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="New release folder (default RELEASE-vX.Y.Z)."
)
@click.option(
    "--work",
    type=click.Path(path_type=Path),
    default=None,
    help="Work dir of the build (default: work/<recipe> beside RELEASE; its path is printed).",
)
@release_endpoint_options
@click.option(
    "--cache",
    "cache_mode",
    type=click.Choice(["use", "only"]),
    default="use",
    show_default=True,
    help="Call cache: use it (new calls are made and cached), or replay only (fail on a miss). build's "
    "refresh and off are not offered: the release's own rows are replayed from the cache, and refreshing or "
    "bypassing it would pay for them again.",
)
@click.option(
    "--dump", type=click.Path(path_type=Path), default=None, help="Dump file, if the recipe's is a file path."
)
@click.option(
    "--index", type=click.Path(path_type=Path), default=None, help="Its multistream index (default: the one beside it)."
)
@click.option(
    "--source",
    type=click.Choice(["dump", "online"]),
    default=None,
    help="Where the new personas' pages come from: the dump, or the live wiki's Special:Export (no download; "
    "revision ids go into the manifest). Default: the release recipe's [dump] source.",
)
@progress_option
def extend(
    release: Path,
    titles: tuple[str, ...],
    axes: tuple[str, ...],
    out: Path | None,
    work: Path | None,
    recipe_path: Path | None,
    base_url: str | None,
    cache_mode: str,
    dump: Path | None,
    index: Path | None,
    source: str | None,
    progress: bool | None,
) -> int:
    """Add personas to RELEASE (minor version bump; existing rows unchanged; only new LLM calls are paid).

    Each --persona TITLE is followed by its --axis AXIS:CATEGORY options, e.g.

      wikipersona extend demo-release --persona "Mariana Teixeira Lopes" --axis diet:pescatarian
      --persona "Wade Brunner" --axis politics:libertarian

    Where calls go and with which key come from --recipe (your recipe) or --base-url, never from the
    release; without --recipe only the demo's simulator is used.
    """
    from wikipersona_data.release.extend import extend_release, pair_options
    from wikipersona_data.release.verify import verify_release

    additions = pair_options(click.get_current_context().meta["extend_order"])
    path = extend_release(
        release,
        additions,
        out=out,
        work=work,
        base_url=base_url,
        cache_mode=cache_mode,
        dump=dump,
        index=index,
        progress=want_progress(progress),
        echo=lambda msg: click.echo(msg, err=True),
        report=click.echo,
        recipe_path=recipe_path,
        source=source,
    )
    report = verify_release(path)
    click.echo(report.lines()[-1])
    if not report.ok:
        raise WikipersonaError(_verdict(path, report))
    return 0
