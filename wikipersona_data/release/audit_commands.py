"""``wikipersona audit export`` / ``audit import``: thin click wrappers over ``release/audit.py``."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def audit() -> None:
    """Judge audit: people label a seeded sample of test pairs; their agreement with the judge goes in the release."""


@audit.command("export")
@click.argument("release", type=click.Path(path_type=Path))
@click.option("--sample", "sample", type=int, required=True, help="Number of test pairs to sample.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample and of the A/B order.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for sheet.csv and sheet.jsonl (default RELEASE-audit-seedS-nN beside RELEASE).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
def export(release: Path, sample: int, seed: int, out: Path | None, as_json: bool) -> int:
    """Write an annotation sheet: persona card, question, two answers as A/B, an empty `choice` column.

    The sheet shows no judge verdict; fill `choice` with A, B or tie, one copy per annotator.
    """
    from wikipersona_data.release.audit import export_sheet

    done = export_sheet(release, sample=sample, seed=seed, out=out)
    if as_json:
        payload = {"sheet_id": done.sheet_id, "items": done.items, "csv": str(done.csv), "jsonl": str(done.jsonl)}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        click.echo(f"sheet {done.sheet_id}: {done.items} items -> {done.csv}, {done.jsonl}")
    return 0


@audit.command("import")
@click.argument("release", type=click.Path(path_type=Path))
@click.argument("sheets", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--annotator-col",
    "columns",
    multiple=True,
    default=("choice",),
    show_default=True,
    help="Column holding one annotator's choices (repeatable: several annotators in one sheet).",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="New release folder (default RELEASE-vX.Y.Z)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON document.")
def import_(release: Path, sheets: tuple[Path, ...], columns: tuple[str, ...], out: Path | None, as_json: bool) -> int:
    """Agreement and Cohen's kappa of filled sheets with the judge (and between annotators), overall and per
    axis, written into a patch version of RELEASE (manifest, card, changelog)."""
    from wikipersona_data.errors import WikipersonaError
    from wikipersona_data.release.audit import import_sheets, table
    from wikipersona_data.release.commands import _verdict
    from wikipersona_data.release.verify import verify_release

    logs: list[str] = []
    path, figures, version = import_sheets(release, list(sheets), columns=tuple(columns), out=out, echo=logs.append)
    report = verify_release(path)
    if as_json:
        payload = {"release": str(path), "version": version, "verify_ok": report.ok, **figures.model_dump(mode="json")}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        for line in [*table(figures), *logs, report.lines()[-1]]:
            click.echo(line)
    if not report.ok:
        raise WikipersonaError(_verdict(path, report))
    return 0
