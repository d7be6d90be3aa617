"""``wikipersona verify``, ``publish`` and ``demo``: thin click wrappers over the release modules."""

from __future__ import annotations

from pathlib import Path

import click

from wikipersona_data.errors import WikipersonaError


@click.command()
@click.argument("release", type=click.Path(path_type=Path))
def verify(release: Path) -> int:
    """Re-check a release folder: checksums, schema, counts, ids, leaks, duplicates, splits, card."""
    from wikipersona_data.release.verify import verify_release

    report = verify_release(release)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        raise WikipersonaError(f"{release}: {len(report.failures)} check(s) failed, first: {report.failures[0].name}")
    return 0


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
    help="Release folder to write.",
)
@click.option(
    "--work",
    type=click.Path(path_type=Path),
    default=Path("work/demo"),
    show_default=True,
    help="Work dir of the stages (cache, intermediate JSONL); re-running reuses it.",
)
def demo(out: Path, work: Path) -> int:
    """Build builders/demo.toml on the bundled demo dump with the simulator, self-test it, show rows."""
    from wikipersona_data.release.demo import run_demo

    run_demo(out=out, work=work, echo=click.echo)
    return 0
