"""``wikipersona scan`` and ``wikipersona show``: thin click wrappers over scan.py and lookup.py."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from wikipersona_data.conventions import index_candidates, index_or_beside, progress_option, want_progress
from wikipersona_data.errors import InputError
from wikipersona_data.wiki.bounded import DEFAULT_MAX_PAGE_BYTES, DEFAULT_PAGE_TIMEOUT
from wikipersona_data.wiki.scan import ScanOptions
from wikipersona_data.wiki.table import read_table, table_format

TABLE_PREVIEW = 20
EXECUTORS = ("local", "slurm", "ray")  # scan_run.py (imported on use: it imports datatrove)


@click.command(name="scan")
@click.argument("dump", type=click.Path(path_type=Path))
@click.option(
    "--index",
    type=click.Path(path_type=Path),
    help="Multistream index (.txt or .txt.bz2): parallel scan. Default: the one beside DUMP (-index.txt.bz2), if any.",
)
@click.option("--out", type=click.Path(path_type=Path), help="Candidate table: FILE.parquet or FILE.jsonl.")
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="local",
    show_default=True,
    help="Who runs the tasks (datatrove): this machine, a Slurm cluster (sbatch), or Ray (RAY_ADDRESS or a local "
    "cluster). See docs/scan.md.",
)
@click.option(
    "--tasks",
    type=click.IntRange(min=1),
    help="Number of tasks (ranges of bz2 streams). Default: ~16 MB of the dump each, at least 4 per worker.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Tasks run at the same time (local: processes, default all cores; slurm: array tasks at once, default "
    "no limit; ray: concurrent tasks, default no limit, and the CPUs of a local cluster).",
)
@click.option(
    "--logs",
    type=click.Path(path_type=Path),
    help="datatrove's folder (completions, stats, logs, task outputs); a rerun with it redoes only unfinished "
    "tasks. Default: OUT.scan-logs beside the table (a temporary folder without --out).",
)
@click.option("--slurm-partition", help="Slurm partition (needed with --executor slurm).")
@click.option("--slurm-time", default="24:00:00", show_default=True, help="Slurm time limit of one task.")
@click.option("--slurm-cpus-per-task", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--slurm-mem-per-cpu-gb", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--slurm-qos", help="Slurm QOS (default: none given, the cluster's default).")
@click.option(
    "--slurm-env-command",
    help="Shell line run before each task (e.g. 'source /path/venv/bin/activate'). Default: this Python first on PATH.",
)
@click.option("--slurm-sbatch-arg", "slurm_sbatch_args", multiple=True, help="Extra sbatch option KEY=VALUE.")
@click.option("--ray-cpus-per-task", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--ray-mem-per-cpu-gb", type=click.FloatRange(min=0, min_open=True), default=1, show_default=True)
@click.option("--shard", hidden=True, help="Removed: see docs/scan.md.")
@click.option("--combine", hidden=True, multiple=True, help="Removed: see docs/scan.md.")
@click.option(
    "--max-page-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PAGE_BYTES,
    show_default=True,
    help="Person pages with more wikitext are skipped and counted in errors= (parser guard); a page whose XML "
    "outgrows it is cut while decompressing, never held in memory.",
)
@click.option(
    "--page-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_PAGE_TIMEOUT,
    show_default=True,
    help="Seconds one page may take to parse before it is skipped and counted in errors=.",
)
@progress_option
def scan(
    dump: Path,
    index: Path | None,
    out: Path | None,
    executor: str,
    tasks: int | None,
    workers: int | None,
    logs: Path | None,
    slurm_partition: str | None,
    slurm_time: str,
    slurm_cpus_per_task: int,
    slurm_mem_per_cpu_gb: int,
    slurm_qos: str | None,
    slurm_env_command: str | None,
    slurm_sbatch_args: tuple[str, ...],
    ray_cpus_per_task: int,
    ray_mem_per_cpu_gb: float,
    shard: str | None,
    combine: tuple[str, ...],
    max_page_bytes: int,
    page_timeout: float,
    progress: bool | None,
) -> None:
    """One pass over DUMP: every person page -> candidate table (sorted by page id) with a fame signal.

    The scan is a datatrove pipeline: with --index, each task decompresses and parses its own range of
    multistream streams, and a second stage merges the fame counts and writes the table. Without an index
    (single-stream .xml.bz2 or .xml) it is one task reading everything in order: one core, much slower.
    A scan that was killed or had failed tasks, run again with the same --logs, redoes only those tasks.
    """
    from wikipersona_data.wiki.scan_run import (
        RayOptions,
        SlurmOptions,
        incomplete_ranks,
        plan_scan,
        run_local,
        run_ray,
        submit_slurm,
        task_errors,
    )

    if shard is not None or combine:
        raise InputError(
            "--shard/--combine were removed: run one scan with --executor slurm or --executor ray "
            "(or --executor local --tasks N on one machine); see docs/scan.md"
        )
    if out is not None:
        table_format(out)  # fail on a bad extension before hours of work
    elif executor == "slurm":
        raise InputError("--executor slurm needs --out: the table is written by a Slurm job")
    index = index_or_beside(dump, index, say=lambda msg: click.echo(msg, err=True))
    cores = os.cpu_count() or 1
    options = ScanOptions(
        workers=workers or cores,
        max_page_bytes=max_page_bytes,
        page_timeout=page_timeout,
        progress=want_progress(progress),
    )
    with tempfile.TemporaryDirectory(prefix="wikipersona-scan-") as tmp:
        table = out.resolve() if out is not None else Path(tmp) / "table.jsonl"
        if logs is None:
            logs = table.with_name(table.name + ".scan-logs") if out is not None else Path(tmp) / "logs"
        plan = plan_scan(dump, index, logs.resolve(), options, tasks, workers or cores)
        if executor == "slurm":
            slurm = SlurmOptions(
                partition=slurm_partition,
                time=slurm_time,
                cpus_per_task=slurm_cpus_per_task,
                mem_per_cpu_gb=slurm_mem_per_cpu_gb,
                qos=slurm_qos,
                env_command=slurm_env_command,
                sbatch_args=_key_values(slurm_sbatch_args),
            )
            first, second = submit_slurm(plan, table, options, workers, slurm)
            click.echo(
                f"submitted: stage 1 Slurm job {first} ({len(incomplete_ranks(plan))} of {plan.tasks} tasks to run), "
                f"stage 2 job {second} writes {table}; logs in {plan.logs}. "
                "Run the same command again to resubmit only unfinished tasks."
            )
            return
        if executor == "ray":
            summary = run_ray(plan, table, options, workers, RayOptions(ray_cpus_per_task, ray_mem_per_cpu_gb))
        else:
            summary = run_local(plan, table, options, workers or cores)
        for message in task_errors(plan):
            click.echo(f"warning: {message}", err=True)
        if out is None:
            _print_table(list(_take(read_table(table))), summary.people)
    click.echo(summary.line())


def _key_values(pairs: tuple[str, ...]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--slurm-sbatch-arg {pair!r}: expected KEY=VALUE, e.g. account=myproject")
        result[key.strip().lstrip("-")] = value
    return result


def _take(rows, n: int = TABLE_PREVIEW):  # type: ignore[no-untyped-def]
    for i, row in enumerate(rows):
        if i < n:
            yield row


def _print_table(rows: list[dict], total: int) -> None:  # type: ignore[type-arg]
    header = f"{'page_id':>9}  {'living':6}  {'born':10}  {'fame':>7}  title"
    click.echo(header)
    for row in rows:
        born = row["birth_date"] or ""
        living = "yes" if row["is_living"] else "no"
        click.echo(f"{row['page_id']:>9}  {living:6}  {born:10}  {row['fame_score']:7.3f}  {row['title']}")
    if total > len(rows):
        click.echo(f"... {total - len(rows)} more (use --out FILE.parquet for the full table)")


@click.command(name="show")
@click.argument("dump")
@click.argument("title", required=False)
@click.option(
    "--index",
    type=click.Path(path_type=Path),
    help="Multistream index (.txt or .txt.bz2). Default: the one beside DUMP (same prefix, -index.txt.bz2).",
)
@click.option(
    "--online",
    is_flag=True,
    help="No dump: fetch TITLE from the live wiki through Special:Export (current revision); give TITLE only.",
)
@click.option(
    "--wiki",
    default="enwiki",
    show_default=True,
    help="With --online: the wiki, named as its dumps are (enwiki, dewiki, simplewiki, ...).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the Biography record as JSON (fields: see the README, `show --json`).",
)
@click.option(
    "--max-page-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PAGE_BYTES,
    show_default=True,
    help="A page with more wikitext is refused (it is cut while decompressing, never held in memory).",
)
@click.option(
    "--page-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_PAGE_TIMEOUT,
    show_default=True,
    help="Seconds the page may take to parse before show gives up.",
)
def show(
    dump: str,
    title: str | None,
    index: Path | None,
    online: bool,
    wiki: str,
    as_json: bool,
    max_page_bytes: int,
    page_timeout: float,
) -> None:
    """Random access to one page of DUMP by TITLE (MediaWiki normalisation, redirects followed).

    With --online there is no DUMP: `wikipersona show --online TITLE` reads the page from the live wiki's
    Special:Export, and parses it with the same code as a dump page (same Biography, same sentence ids).
    """
    if online:
        if title is not None or index is not None:
            raise InputError("show --online takes TITLE only (no DUMP, no --index): wikipersona show --online TITLE")
        from wikipersona_data.wiki.online import OnlineReader

        reader_cm: Any = OnlineReader(wiki, max_page_bytes=max_page_bytes, page_timeout=page_timeout)
        title = dump
    else:
        if title is None:
            raise InputError("show needs DUMP and TITLE (or --online TITLE to read the page from the live wiki)")
        from wikipersona_data.wiki.lookup import DumpReader

        dump_path = Path(dump)
        index = index_or_beside(dump_path, index)
        if index is None:
            looked = (
                ", ".join(str(p) for p in index_candidates(dump_path))
                or "nothing: DUMP is not named *-multistream*.xml.bz2"
            )
            raise InputError(
                f"{dump_path}: show needs the multistream index; no --index given and none beside the dump "
                f"(looked for {looked})"
            )
        reader_cm = DumpReader(dump_path, index, max_page_bytes=max_page_bytes, page_timeout=page_timeout)

    with reader_cm as reader:
        page, chain = reader.follow(title)
        bio = reader.biography(page)
    if len(chain) > 1:  # on stderr with --json, so stdout stays one JSON document
        click.echo(f"redirect: {' -> '.join(chain)}", err=as_json)
    if as_json:
        click.echo(json.dumps(bio.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        click.echo(render_biography(bio))


def render_biography(bio) -> str:  # type: ignore[no-untyped-def]
    """The Biography as readable text."""
    lines = [bio.title, "=" * len(bio.title), f"url: {bio.url}", f"page id: {bio.page_id}  revision: {bio.revision_id}"]
    lines.append(f"person: {'yes' if bio.is_person else 'no'}  living: {'yes' if bio.is_living else 'no'}")
    if bio.birth_date or bio.death_year:
        lines.append(f"born: {bio.birth_date or '?'}  died: {bio.death_year or '-'}")
    if bio.short_description:
        lines.append(f"short description: {bio.short_description}")
    if bio.infobox is not None:
        lines.append(f"infobox: {bio.infobox.template}")
        lines.extend(f"  {name}: {value}" for name, value in bio.infobox.fields.items())
    if bio.categories:
        lines.append(f"categories: {'; '.join(bio.categories)}")
    lines += ["", "Lead", "----", bio.lead]
    for section in bio.sections:
        lines += ["", section.title, "-" * len(section.title), section.text]
    lines += ["", f"{len(bio.sentences)} sentences, {len(bio.links)} links"]
    return "\n".join(lines)


@click.command(name="get-dump")
@click.argument("wiki")
@click.argument("date")
@click.option(
    "--to",
    "to",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for the two files (created if needed); a NAME.part there is resumed.",
)
@click.option(
    "--mirror",
    default=None,
    help="Base URL of a mirror with the layout of https://dumps.wikimedia.org (<base>/<wiki>/<date>/...).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (date, files with size and sha1).")
@progress_option
def get_dump(wiki: str, date: str, to: Path, mirror: str | None, as_json: bool, progress: bool | None) -> None:
    """Download WIKI's multistream dump and its index of run DATE (YYYYMMDD or 'latest') into --to, resumably,
    each verified against the run's published sha1 before it gets its final name.

    The run's dumpstatus.json must say the multistream job is done. An interrupted download is kept as
    NAME.part and resumed by the next run (HTTP Range). Prints the two paths, dump first.
    Example: wikipersona get-dump enwiki latest --to dumps/
    """
    from wikipersona_data.wiki.download import as_json as files_json
    from wikipersona_data.wiki.download import get_dump as run

    run_date, files = run(
        wiki, date, to, mirror=mirror, progress=want_progress(progress), say=lambda msg: click.echo(msg, err=True)
    )
    if as_json:
        click.echo(files_json(wiki, run_date, files))
        return
    for f in files:
        click.echo(f.path)
