"""``wikipersona batch export`` / ``wikipersona batch import``: the offline round trip (``llm/batch_offline.py``)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def batch() -> None:
    """Offline batch files for `vllm run-batch` (endpoints in mode "offline"; docs/batch.md)."""


@batch.command("export")
@click.argument("work_dir", type=click.Path(path_type=Path))
@click.option("--shards", type=int, default=1, show_default=True, help="Number of files (e.g. one per GPU node).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Folder (default WORK_DIR/batch/export).")
def export(work_dir: Path, shards: int, out: Path | None) -> int:
    """Write the requests the build of WORK_DIR waits for as SHARDS JSONL files (OpenAI batch input format)."""
    from wikipersona_data.llm.batch_offline import export as run_export

    for path in run_export(work_dir, shards, out):
        click.echo(str(path))
    return 0


@batch.command("import")
@click.argument("work_dir", type=click.Path(path_type=Path))
@click.argument("results", nargs=-1, type=click.Path(path_type=Path))
def import_(work_dir: Path, results: tuple[Path, ...]) -> int:
    """Check RESULTS (`vllm run-batch` output files) and load their replies into WORK_DIR's call cache."""
    from wikipersona_data.llm.batch_offline import import_results

    click.echo(import_results(work_dir, list(results)).line())
    return 0
