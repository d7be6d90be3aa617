"""``wikipersona get-dump``: a verified, resumable download of a multistream dump and its index.

A run of the Wikimedia dumps lives at ``<base>/<wiki>/<date>/`` (base ``https://dumps.wikimedia.org`` or a
mirror with the same layout). Its ``dumpstatus.json`` says, per job, whether it is ``done`` and lists the
job's files with size and sha1; ``<wiki>-<date>-sha1sums.txt`` publishes the sums again. The multistream
file and its index come from job ``articlesmultistreamdumprecombine`` on big wikis (one file recombined from
the parts) and from ``articlesmultistreamdump`` on small ones.

Why it is built this way:

* the file names are ours (``<wiki>-<date>-pages-articles-multistream.xml.bz2`` and ``...-index.txt.bz2``,
  WIKI and DATE checked against strict patterns); the server's status file is only asked about those names,
  and its ``url`` fields are never used, so no path or URL comes from the server;
* a file is written as ``NAME.part`` beside a ``NAME.part.json`` that records which published size and sha1
  it is a prefix of; a later run resumes with an HTTP ``Range`` request (a server that ignores it is
  detected and the file restarts), and only a file whose sha1 equals the published one is renamed to NAME.
  A mismatching download is deleted, so it can never be mistaken for a dump;
* bounded: never more bytes than the published size are written, a stalled connection times out, a dropped
  one is resumed (at once when it had made progress, with backoff otherwise, at most ``MAX_STALLS`` times in
  a row), and free disk space is checked before starting;
* every failure is one line: run not finished, file missing, checksum mismatch (both sums), disk full.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx2

from wikipersona_data.errors import InputError
from wikipersona_data.wiki.http import Fetcher, FetchError, check_identity, check_url, retry_after, shown

DEFAULT_BASE = "https://dumps.wikimedia.org"
JOBS = ("articlesmultistreamdumprecombine", "articlesmultistreamdump")
"""Jobs that write the single multistream file and its index, in the order they are looked for."""
STATUS_CAP = 4 << 20  # bytes of dumpstatus.json (enwiki's is ~100 KB)
SUMS_CAP = 1 << 20  # bytes of the sha1sums list (enwiki's is ~60 KB)
LISTING_CAP = 2 << 20  # bytes of the wiki's directory listing (one line per run)
LATEST_TRIES = 4  # newest runs looked at for "latest"
MAX_FILE_BYTES = 1 << 40  # a published size above 1 TiB is not believed
CHUNK = 1 << 20
MAX_STALLS = 5  # failed attempts in a row (no byte gained) before giving up
HASH_BLOCK = 8 << 20

WIKI_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,40}")
DATE_PATTERN = re.compile(r"(19|20)\d{6}")
_SHA1 = re.compile(r"[0-9a-f]{40}")
_SUM_LINE = re.compile(r"([0-9a-fA-F]{40})\s+\*?(\S+)")
_RUN_LINK = re.compile(r'href="(?:\./)?((?:19|20)\d{6})/?"')


@dataclass(frozen=True)
class RemoteFile:
    """One file of the run, as published: our own name, the size and sha1 the run states."""

    name: str
    url: str
    size: int
    sha1: str


@dataclass(frozen=True)
class Fetched:
    """A verified file on disk (what ``get-dump --json`` prints per file)."""

    name: str
    path: str
    size: int
    sha1: str
    url: str
    resumed_from: int  # bytes already on disk when this run started (0: fresh)
    downloaded: int  # bytes received in this run


def file_names(wiki: str, date: str) -> tuple[str, str]:
    stem = f"{wiki}-{date}-pages-articles-multistream"
    return f"{stem}.xml.bz2", f"{stem}-index.txt.bz2"


def check_wiki_date(wiki: str, date: str) -> None:
    if WIKI_PATTERN.fullmatch(wiki) is None or "wik" not in wiki:
        raise InputError(f"WIKI {wiki!r}: expected a wiki database name such as enwiki, dewiki or simplewiki")
    if date != "latest" and DATE_PATTERN.fullmatch(date) is None:
        raise InputError(f"DATE {date!r}: expected YYYYMMDD (a dump run, e.g. 20261101) or 'latest'")


# ------------------------------------------------------------------------------------------ the run's metadata


def _json(body: bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{where}: not JSON ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: not a JSON object")
    return data


def _fetch_unless_missing(fetcher: Fetcher, url: str, what: str, cap: int) -> bytes | None:
    """The body at ``url``, or None on a 404 (each caller says what a missing file means); other errors raise."""
    try:
        return fetcher.fetch(url, what=what, max_bytes=cap)
    except FetchError as err:
        if err.status == 404:
            return None
        raise


def read_status(fetcher: Fetcher, base: str, wiki: str, date: str) -> dict[str, Any]:
    url = f"{base}/{wiki}/{date}/dumpstatus.json"
    body = _fetch_unless_missing(fetcher, url, "dump status", STATUS_CAP)
    if body is None:
        raise InputError(f"no dump run {wiki}/{date} at {shown(base)} ({shown(url)} is missing)")
    status = _json(body, shown(url))
    if not isinstance(status.get("jobs"), dict):
        raise InputError(f"{shown(url)}: no 'jobs' object (not a dumpstatus.json)")
    return status


def job_files(status: dict[str, Any], wiki: str, date: str, where: str) -> tuple[str, dict[str, Any]]:
    """``(job name, files)`` of the finished job listing both our names; one-line errors for an unfinished run
    or a missing file. A job still running lists no files yet, so it is reported as such, not as "missing"."""
    wanted = file_names(wiki, date)
    jobs: dict[str, Any] = status["jobs"]
    found = [(name, job) for name in JOBS if isinstance(job := jobs.get(name), dict)]
    for name, job in found:
        files = job.get("files")
        if job.get("status") == "done" and isinstance(files, dict) and all(w in files for w in wanted):
            return name, files
    for name, job in found:
        state = job.get("status")
        if state not in ("done", "skipped"):
            updated = job.get("updated")
            when = f", updated {str(updated)[:40]}" if updated else ""
            raise InputError(
                f"dump run {wiki}/{date} is not finished: job {name} is {str(state)[:40]!r}{when}; "
                "wait for it, or ask for an earlier DATE or 'latest'"
            )
    known = sorted(n for n in jobs if isinstance(n, str))[:12]
    raise InputError(
        f"file missing: {where} lists no {wanted[0]} and {wanted[1]} in jobs {', '.join(JOBS)} "
        f"(jobs listed: {', '.join(known) or 'none'})"
    )


def read_sums(fetcher: Fetcher, base: str, wiki: str, date: str) -> dict[str, str]:
    """name -> sha1 from ``<wiki>-<date>-sha1sums.txt`` ({} if the run has none)."""
    url = f"{base}/{wiki}/{date}/{wiki}-{date}-sha1sums.txt"
    body = _fetch_unless_missing(fetcher, url, "sha1 sums", SUMS_CAP)
    if body is None:
        return {}
    sums: dict[str, str] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        match = _SUM_LINE.fullmatch(line.strip())
        if match:
            sums[match.group(2)] = match.group(1).lower()
    return sums


def plan(fetcher: Fetcher, base: str, wiki: str, date: str) -> list[RemoteFile]:
    """The dump and its index with their published sizes and sha1 sums (status file and sums file agreeing)."""
    status = read_status(fetcher, base, wiki, date)
    where = shown(f"{base}/{wiki}/{date}/dumpstatus.json")
    _, files = job_files(status, wiki, date, where)
    sums = read_sums(fetcher, base, wiki, date)
    out = []
    for name in file_names(wiki, date):
        info = files[name]
        size = info.get("size") if isinstance(info, dict) else None
        if type(size) is not int or not 0 < size <= MAX_FILE_BYTES:
            raise InputError(f"{where}: {name} has no usable size ({str(size)[:30]!r})")
        listed = str(info.get("sha1") or "").lower()
        published = sums.get(name, listed)
        if not _SHA1.fullmatch(published or ""):
            raise InputError(f"{where}: no published sha1 for {name} (neither in the status file nor in the sums file)")
        if listed and _SHA1.fullmatch(listed) and listed != published:
            raise InputError(
                f"{where}: the run publishes two sha1 sums for {name}: {listed} (dumpstatus.json) and "
                f"{published} ({wiki}-{date}-sha1sums.txt)"
            )
        out.append(RemoteFile(name=name, url=f"{base}/{wiki}/{date}/{name}", size=size, sha1=published))
    return out


def latest_run(fetcher: Fetcher, base: str, wiki: str, say: Callable[[str], None]) -> str:
    """The newest run of ``wiki`` whose multistream job is done (the newest few runs are asked, newest first)."""
    url = f"{base}/{wiki}/"
    listing = _fetch_unless_missing(fetcher, url, "list of dump runs", LISTING_CAP)
    if listing is None:
        raise InputError(f"no dumps of {wiki!r} at {shown(base)} ({shown(url)} is missing)")
    runs = sorted(set(_RUN_LINK.findall(listing.decode("utf-8", "replace"))), reverse=True)
    if not runs:
        raise InputError(f"{shown(url)}: lists no dump runs (no YYYYMMDD/ links)")
    reasons = []
    for date in runs[:LATEST_TRIES]:
        try:
            status = read_status(fetcher, base, wiki, date)
            job_files(status, wiki, date, date)
        except InputError as err:
            reasons.append(f"{date}: {str(err)[:120]}")
            continue
        say(f"latest finished run of {wiki}: {date}")
        return date
    raise InputError(f"no finished run among the newest {len(reasons)} of {wiki}: " + "; ".join(reasons))


# ------------------------------------------------------------------------------------------ one file


def sha1_of(path: Path, bar: Any = None, limit: int | None = None) -> Any:
    """A sha1 object fed with the first ``limit`` bytes of ``path`` (all when None)."""
    digest = hashlib.sha1()
    left = limit
    with path.open("rb") as f:
        while left is None or left > 0:
            block = f.read(HASH_BLOCK if left is None else min(HASH_BLOCK, left))
            if not block:
                break
            digest.update(block)
            if left is not None:
                left -= len(block)
            if bar is not None:
                bar.update(len(block))
    return digest


def _bar(total: int, initial: int, desc: str, progress: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )


class _Part:
    """``NAME.part`` and its ``NAME.part.json`` (which published file it is a prefix of)."""

    def __init__(self, folder: Path, remote: RemoteFile) -> None:
        self.remote = remote
        self.path = folder / f"{remote.name}.part"
        self.meta = folder / f"{remote.name}.part.json"
        self.final = folder / remote.name

    def expected(self) -> dict[str, Any]:
        return {"name": self.remote.name, "size": self.remote.size, "sha1": self.remote.sha1}

    def usable_length(self) -> int:
        """Bytes of a previous run's part that belong to the same published file (0 otherwise: discarded)."""
        try:
            meta = json.loads(self.meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = None
        size = self.path.stat().st_size if self.path.is_file() else 0
        if meta != self.expected() or size > self.remote.size:
            self.discard()
            return 0
        return size

    def start(self) -> None:
        self.meta.write_text(json.dumps(self.expected(), sort_keys=True), encoding="utf-8")

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)


def _disk_full(path: Path, have: int, size: int) -> InputError:
    free = shutil.disk_usage(path.parent).free
    return InputError(
        f"disk full: {path} stopped at {have} of {size} bytes ({free} bytes free in {path.parent}); "
        "free some space and run again to resume"
    )


def _content_range_start(value: str | None, size: int) -> int | None:
    """``bytes S-E/T`` -> S, if T is the published size and E its last byte."""
    match = re.fullmatch(r"bytes\s+(\d+)-(\d+)/(\d+)", (value or "").strip())
    if match is None or int(match.group(3)) != size or int(match.group(2)) != size - 1:
        return None
    return int(match.group(1))


def download(
    fetcher: Fetcher, remote: RemoteFile, folder: Path, *, progress: bool, say: Callable[[str], None]
) -> Fetched:
    """``remote`` into ``folder`` (resumed, verified, renamed): see the module docstring."""
    part = _Part(folder, remote)
    if part.final.exists():
        with _bar(remote.size, 0, f"verify {remote.name}", progress) as bar:
            got = sha1_of(part.final, bar).hexdigest()
        if got != remote.sha1:
            raise InputError(
                f"checksum mismatch: {part.final} exists with sha1 {got}, the run publishes {remote.sha1}; "
                "remove it (or choose another --to) and run again"
            )
        say(f"{part.final}: already here, sha1 verified")
        return Fetched(remote.name, str(part.final), remote.size, got, shown(remote.url), remote.size, 0)
    have = part.usable_length()
    resumed_from = have
    free = shutil.disk_usage(folder).free
    if free < remote.size - have:
        raise InputError(
            f"disk full: {remote.name} needs {remote.size - have} more bytes, {free} are free in {folder}; "
            "free some space or choose another --to"
        )
    if not part.path.exists():
        part.path.touch()
    part.start()
    with _bar(remote.size, 0, remote.name, progress) as bar:
        digest = sha1_of(part.path, bar, limit=have) if have else hashlib.sha1()
        if have:
            say(f"{remote.name}: resuming at byte {have} of {remote.size}")
        have, digest = _receive(fetcher, remote, part, have, digest, bar)
    got = digest.hexdigest()
    if got != remote.sha1:
        part.discard()
        raise InputError(
            f"checksum mismatch for {remote.name}: sha1 of the download is {got}, the run publishes {remote.sha1} "
            f"(source {shown(remote.url)}); the download was removed, run again"
        )
    os.replace(part.path, part.final)
    part.meta.unlink(missing_ok=True)
    return Fetched(remote.name, str(part.final), remote.size, got, shown(remote.url), resumed_from, have - resumed_from)


@dataclass
class _Progress:
    have: int
    digest: Any


def _receive(fetcher: Fetcher, remote: RemoteFile, part: _Part, have: int, digest: Any, bar: Any) -> tuple[int, Any]:
    """Append the missing bytes to the part file until it has ``remote.size``; resume after drops."""
    state = _Progress(have, digest)
    stalls = 0
    while state.have < remote.size:
        before = state.have
        why = ""
        hint: float | None = None
        headers = {"Range": f"bytes={state.have}-"} if state.have else {}
        try:
            with fetcher.open("GET", remote.url, headers=headers) as response:
                status = response.status_code
                if status in (429, 500, 502, 503, 504):
                    why, hint = f"HTTP {status}", retry_after(response.headers.get("retry-after"))
                else:
                    _check_reply(response, remote, state, bar)
                    _append(response, part, state, bar, truncate=status == 200)
        except httpx2.TransportError as err:
            why = f"connection lost at byte {state.have} ({type(err).__name__})"
        if state.have < remote.size and not why:
            why = f"the reply ended at byte {state.have} of {remote.size}"
        if state.have > before:
            stalls = 0
            continue  # progress was made: resume at once
        stalls += 1
        if stalls >= MAX_STALLS:
            raise InputError(
                f"download of {remote.name} stopped at {state.have} of {remote.size} bytes after {stalls} failed "
                f"attempts (last: {why}); {part.path} is kept: run again to resume"
            )
        fetcher.backoff(stalls, remote.url, hint, why)
    return state.have, state.digest


def _check_reply(response: httpx2.Response, remote: RemoteFile, state: _Progress, bar: Any) -> None:
    """A 206 that starts where we asked, or a 200 of the published size (then the file starts over)."""
    status = response.status_code
    if status == 404:
        raise InputError(f"file missing: {shown(remote.url)} answered HTTP 404 (the status file lists it)")
    if status == 206:
        start = _content_range_start(response.headers.get("content-range"), remote.size)
        if start != state.have:
            raise FetchError(
                f"{shown(remote.url)}: asked for bytes from {state.have}, the server sent "
                f"{str(response.headers.get('content-range'))[:60]!r}"
            )
    elif status == 200:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) != remote.size:
            raise FetchError(f"{shown(remote.url)}: the server sends {declared} bytes, the run publishes {remote.size}")
        if state.have:  # the server ignored Range: start over
            bar.write(f"{remote.name}: the server ignores Range requests; starting over", file=sys.stderr)
            state.have, state.digest = 0, hashlib.sha1()
            bar.reset(total=remote.size)
    else:
        raise FetchError(f"{shown(remote.url)} answered HTTP {status}", status)
    check_identity(response, remote.url, remote.name)


def _append(response: httpx2.Response, part: _Part, state: _Progress, bar: Any, *, truncate: bool) -> None:
    """Write the reply's bytes after the first ``state.have`` bytes of the part file; ``state`` follows every
    chunk, so a dropped connection keeps what arrived."""
    size = part.remote.size
    try:
        with part.path.open("wb" if truncate else "r+b") as f:
            f.seek(state.have)
            f.truncate()
            try:
                for chunk in response.iter_raw():  # as received: a chunker would lose its buffer on a drop
                    if state.have + len(chunk) > size:
                        raise FetchError(f"{shown(part.remote.url)}: sent more than the {size} bytes the run publishes")
                    f.write(chunk)
                    state.digest.update(chunk)
                    state.have += len(chunk)
                    bar.update(len(chunk))
            finally:
                f.flush()
                os.fsync(f.fileno())
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _disk_full(part.path, state.have, size) from None
        raise InputError(f"{part.path}: cannot write ({err.strerror})") from None


# ------------------------------------------------------------------------------------------ the command's body


def get_dump(
    wiki: str,
    date: str,
    to: Path,
    *,
    mirror: str | None = None,
    progress: bool = False,
    say: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
    fetcher: Fetcher | None = None,
) -> tuple[str, list[Fetched]]:
    """Download and verify the multistream dump and index of ``wiki``'s run ``date`` (or the latest finished
    one) into ``to``; returns the run's date and the two files (dump first)."""
    check_wiki_date(wiki, date)
    base = check_url(mirror or DEFAULT_BASE, "--mirror")
    try:
        to.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--to {to}: cannot create the folder ({err.strerror})") from None
    own = fetcher is None
    fetcher = fetcher or Fetcher()
    try:
        if date == "latest":
            date = latest_run(fetcher, base, wiki, say)
        remotes = plan(fetcher, base, wiki, date)
        return date, [download(fetcher, r, to, progress=progress, say=say) for r in remotes]
    finally:
        if own:
            fetcher.close()


def as_json(wiki: str, date: str, files: list[Fetched]) -> str:
    return json.dumps({"wiki": wiki, "date": date, "files": [asdict(f) for f in files]}, indent=2)
