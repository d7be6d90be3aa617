"""Write a release folder: parquet shards, charts, README.md card, manifest.json.

Everything is written into a temporary folder beside ``out_dir`` and renamed into place at the
end, so a crash or a bad row never leaves a half-written folder that looks like a release. The
same rows and manifest give byte-identical files: rows are sorted by id, parquet is written with
fixed options (pyarrow stores no timestamps), charts drop their software tag, JSON keys are sorted.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from wikipersona_data.errors import InputError, NoDataError
from wikipersona_data.release.card import render_card
from wikipersona_data.release.charts import grounding_threshold, render_charts
from wikipersona_data.release.manifest import FileEntry, Manifest
from wikipersona_data.release.tables import DEFAULT_MAX_SHARD_BYTES, SPLITS, shard_name, to_table
from wikipersona_data.release.versions import with_entry
from wikipersona_data.stages.worklock import try_lock

ROW_GROUP_SIZE = 10_000
WRITER_LOCK = ".writer.lock"
STALE_SECONDS = 3600  # a partial without a writer lock (crash before it was made) untouched this long is stale
log = logging.getLogger(__name__)


def write_release(
    out_dir: Path,
    *,
    pairs: dict[str, list[dict]],
    personas: list[dict],
    manifest: Manifest,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    template_path: Path | None = None,
) -> Path:
    """Write the release for ``pairs`` ({"train": rows, "test": rows}) and ``personas``; return ``out_dir``.

    Counts of what is in the files (personas, pairs per split, personal/divergent), grounding
    mean/min, ``files`` and a changelog entry for this version (if the caller gave none) are
    filled in here from the rows, so they cannot disagree with the data; all other manifest facts
    are the caller's.
    """
    out_dir = Path(out_dir)
    unknown = sorted(set(pairs) - set(SPLITS["pairs"]))
    if unknown:
        raise InputError(f"pairs: unknown split {unknown[0]!r} (expected {', '.join(SPLITS['pairs'])})")
    pair_tables = {split: to_table("pairs", split, pairs.get(split, [])) for split in SPLITS["pairs"]}
    persona_table = to_table("personas", "train", personas)
    _refuse_empty({**{("pairs", split): t for split, t in pair_tables.items()}, ("personas", "train"): persona_table})
    refuse_to_clobber(out_dir)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_partials(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    writer_fd = try_lock(tmp / WRITER_LOCK)  # held while we write: a cleaner can tell we are alive
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would make the release unreadable to other users
        files: dict[str, FileEntry] = {}
        split_bytes: dict[tuple[str, str], int] = {}
        for split, table in pair_tables.items():
            split_bytes[("pairs", split)] = _write_split(tmp, "pairs", split, table, files, max_shard_bytes)
        split_bytes[("personas", "train")] = _write_split(tmp, "personas", "train", persona_table, files, 2**62)
        threshold = grounding_threshold(manifest.data.recipe.text)
        charts = render_charts(tmp, pair_tables, persona_table, min_grounding_score=threshold)
        for rel in sorted(charts.values()):
            files[rel] = _entry(tmp / rel, rows=None)

        data = manifest.data.model_copy(
            update={
                "counts": {**manifest.data.counts, **_counts(pair_tables, persona_table)},
                "grounding": _grounding(persona_table) or manifest.data.grounding,
                "files": dict(sorted(files.items())),
            }
        )
        if not any(e.version == data.version for e in data.changelog):
            summary = "Initial release." if not data.changelog else "New release."
            data = with_entry(data, summary=summary)
        run = manifest.run
        if not run.libraries:
            run = run.model_copy(update={"libraries": _library_versions()})
        try:
            final = Manifest.model_validate({"data": data.model_dump(), "run": run.model_dump()})
        except ValidationError as err:
            first = err.errors()[0]
            raise InputError(f"release manifest: {first['msg']}") from None

        card = render_card(
            final,
            pairs=pair_tables,
            personas=persona_table,
            split_bytes=split_bytes,
            charts=charts,
            template_path=template_path,
        )
        (tmp / "README.md").write_text(card, encoding="utf-8")
        (tmp / "manifest.json").write_text(final.to_json(), encoding="utf-8")
        (tmp / WRITER_LOCK).unlink()  # not part of the release; the recent mtime still protects tmp until renamed
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if writer_fd is not None:
            os.close(writer_fd)
    return out_dir


def clean_stale_partials(out_dir: Path) -> list[Path]:
    """Remove ``.NAME.partial-*`` folders whose writer is gone (a SIGKILL mid-write), and ``.NAME.old-*`` ones
    left after a finished swap. A partial is stale when its writer lock can be taken (the kernel dropped the
    dead writer's ``flock``) or, without a lock file, when it has not changed for ``STALE_SECONDS``."""
    parent = out_dir.parent
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for entry in sorted(parent.iterdir()):
        name = entry.name
        if entry.is_symlink() or not entry.is_dir():
            continue
        stale = False
        if name.startswith(f".{out_dir.name}.partial-"):
            stale = _writer_gone(entry)
        elif name.startswith(f".{out_dir.name}.old-"):
            stale = out_dir.is_dir()  # the new release is in place; only the rmtree was missed
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
            log.warning("removed %s: a release folder left half-written by a run that is gone", entry)
    return removed


def _writer_gone(partial: Path) -> bool:
    lock = partial / WRITER_LOCK
    try:
        fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        try:
            return time.time() - partial.stat().st_mtime > STALE_SECONDS
        except OSError:
            return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _write_split(
    root: Path, config: str, split: str, table: pa.Table, files: dict[str, FileEntry], max_shard_bytes: int
) -> int:
    """Write ``table`` as push_to_hub-style shards; return the split's Arrow size (``num_bytes``)."""
    shards = min(max(1, table.num_rows), int(table.nbytes / max_shard_bytes) + 1)
    bounds = [round(i * table.num_rows / shards) for i in range(shards + 1)]
    num_bytes = 0
    for i in range(shards):
        rel = shard_name(config, split, i, shards)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        part = table.slice(bounds[i], bounds[i + 1] - bounds[i])
        pq.write_table(part, path, compression="zstd", row_group_size=ROW_GROUP_SIZE)
        num_bytes += pq.read_table(path, use_threads=False).nbytes  # no thread pool: ~10 MB of arenas kept
        files[rel] = _entry(path, rows=part.num_rows)
    return num_bytes


def _entry(path: Path, rows: int | None) -> FileEntry:
    return FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size, rows=rows)


def sha256_file(path: Path) -> str:
    from wikipersona_data.release.files import open_regular

    digest = hashlib.sha256()
    with open_regular(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _counts(pairs: dict[str, pa.Table], personas: pa.Table) -> dict[str, int]:
    types = [t for table in pairs.values() for t in table.column("question_type").to_pylist()]
    return {
        "personas": personas.num_rows,
        "pairs_train": pairs["train"].num_rows,
        "pairs_test": pairs["test"].num_rows,
        "personal": types.count("personal"),
        "divergent": types.count("divergent"),
    }


def _grounding(personas: pa.Table) -> dict[str, float]:
    scores = [s for s in personas.column("grounding_score").to_pylist() if s is not None]
    if not scores:
        return {}
    return {"mean": round(sum(scores) / len(scores), 6), "min": round(min(scores), 6)}


def _library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the files (run facts: they may differ between machines)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("pyarrow", "datasets", "huggingface-hub", "matplotlib", "jinja2", "pydantic"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _refuse_empty(tables: dict[tuple[str, str], pa.Table]) -> None:
    """A split with no rows is not a release: ``datasets`` cannot even load it (ArrowInvalid: BatchSize)."""
    for (config, split), table in tables.items():
        if table.num_rows == 0:
            raise NoDataError(f"{config}/{split}: no rows; a release with an empty split is refused (nothing written)")


def refuse_to_clobber(out_dir: Path) -> None:
    """Only an empty folder or a previous release may be replaced: never delete a user's other files."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / "manifest.json").exists()):
        raise InputError(f"{out_dir}: exists and is not a release folder (no manifest.json); choose another --out")


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        tmp.rename(out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{tmp.name.rsplit('-', 1)[-1]}")
    out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
