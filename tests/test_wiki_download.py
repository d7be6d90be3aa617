"""``wikipersona get-dump`` against a local dump server (tests/wikimedia_server.py): status file, sha1 sums,
ranged resume, a dropped connection, a wrong checksum, an unfinished run, a missing file, full disks."""

from __future__ import annotations

import errno
import hashlib
import json
import re
from pathlib import Path

import pytest
from wikimedia_server import DATE, DUMP_NAME, INDEX_NAME, OLDER, WIKI, WikimediaServer

from wikipersona_data.cli import main
from wikipersona_data.demo.paths import DEMO_DUMP, DEMO_INDEX
from wikipersona_data.errors import InputError
from wikipersona_data.wiki import download
from wikipersona_data.wiki.http import Fetcher, user_agent
from wikipersona_data.wiki.lookup import DumpReader


@pytest.fixture
def server():
    with WikimediaServer() as srv:
        yield srv


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _fetcher(waits: list[float]) -> Fetcher:
    return Fetcher(rate=0, sleep=waits.append)  # records the pauses instead of taking them


def test_get_dump_downloads_verifies_and_the_dump_reads(server: WikimediaServer, tmp_path: Path, capsys) -> None:
    to = tmp_path / "dumps"
    assert main(["get-dump", WIKI, DATE, "--to", str(to), "--mirror", server.url, "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [str(to / DUMP_NAME), str(to / INDEX_NAME)]
    assert _sha1(to / DUMP_NAME) == _sha1(DEMO_DUMP) and _sha1(to / INDEX_NAME) == _sha1(DEMO_INDEX)
    assert sorted(p.name for p in to.iterdir()) == sorted([DUMP_NAME, INDEX_NAME])  # no .part left behind
    with DumpReader(to / DUMP_NAME, to / INDEX_NAME) as reader:  # the files are a usable dump
        assert reader.get("Adaeze Okafor").page_id == 1000
    asked = [entry.path for entry in server.log]
    assert asked[:2] == [f"/{WIKI}/{DATE}/dumpstatus.json", f"/{WIKI}/{DATE}/{WIKI}-{DATE}-sha1sums.txt"]
    assert {e.headers["user-agent"] for e in server.log} == {user_agent()}
    assert user_agent().startswith("wikipersona-data/") and "pypi.org/project/wikipersona-data" in user_agent()
    # a second run finds both verified files and downloads nothing
    before = len(server.log)
    assert main(["get-dump", WIKI, DATE, "--to", str(to), "--mirror", server.url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [f["downloaded"] for f in data["files"]] == [0, 0]
    assert [f["sha1"] for f in data["files"]] == [_sha1(DEMO_DUMP), _sha1(DEMO_INDEX)]
    assert all(not e.path.endswith(".bz2") for e in server.log[before:])


def test_a_dropped_connection_is_resumed_with_a_range_request(server: WikimediaServer, tmp_path: Path) -> None:
    size = len(server.files[DUMP_NAME])
    server.faults.drop_after[DUMP_NAME] = size // 2
    waits: list[float] = []
    _, files = download.get_dump(WIKI, DATE, tmp_path, mirror=server.url, fetcher=_fetcher(waits), say=lambda m: None)
    assert _sha1(tmp_path / DUMP_NAME) == _sha1(DEMO_DUMP)
    ranges = [e.headers.get("range") for e in server.log if e.path.endswith(DUMP_NAME)]
    assert ranges == [None, f"bytes={size // 2}-"]
    assert files[0].downloaded == size and waits == []  # progress had been made: resumed at once


def test_a_part_file_from_an_earlier_run_is_resumed(server: WikimediaServer, tmp_path: Path) -> None:
    size = len(server.files[DUMP_NAME])
    server.faults.drop_after[DUMP_NAME] = 20_000
    server.faults.drop_every_time = True  # the server keeps dropping: the run gives up, keeping the part
    with pytest.raises(InputError) as err:
        download.get_dump(WIKI, DATE, tmp_path, mirror=server.url, fetcher=_fetcher([]), say=lambda m: None)
    message = str(err.value)
    part = tmp_path / f"{DUMP_NAME}.part"
    assert message.startswith(f"download of {DUMP_NAME} stopped at ") and "run again to resume" in message
    assert part.is_file() and 0 < part.stat().st_size < size and not (tmp_path / DUMP_NAME).exists()
    kept = part.stat().st_size
    server.faults.drop_after.clear()
    said: list[str] = []
    _, files = download.get_dump(WIKI, DATE, tmp_path, mirror=server.url, fetcher=_fetcher([]), say=said.append)
    assert _sha1(tmp_path / DUMP_NAME) == _sha1(DEMO_DUMP)
    assert files[0].resumed_from == kept and files[0].downloaded == size - kept
    assert f"{DUMP_NAME}: resuming at byte {kept} of {size}" in said
    assert [e.headers.get("range") for e in server.log if e.path.endswith(DUMP_NAME)][-1] == f"bytes={kept}-"


def test_a_server_that_ignores_range_restarts_the_file(server: WikimediaServer, tmp_path: Path) -> None:
    size = len(server.files[DUMP_NAME])
    server.faults.drop_after[DUMP_NAME] = size // 3
    server.faults.ignore_range = True
    download.get_dump(WIKI, DATE, tmp_path, mirror=server.url, fetcher=_fetcher([]), say=lambda m: None)
    assert _sha1(tmp_path / DUMP_NAME) == _sha1(DEMO_DUMP)


def test_wrong_checksum_names_both_sums_and_keeps_nothing(server: WikimediaServer, tmp_path: Path, capsys) -> None:
    server.faults.wrong_sum.add(DUMP_NAME)  # same bytes; the status file and the sums file agree on a wrong sum
    assert main(["get-dump", WIKI, DATE, "--to", str(tmp_path), "--mirror", server.url]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: checksum mismatch for {DUMP_NAME}: sha1 of the download is {_sha1(DEMO_DUMP)}, the run publishes "
        f"{'0' * 40} (source {server.url}/{WIKI}/{DATE}/{DUMP_NAME}); the download was removed, run again"
    )
    assert list(tmp_path.iterdir()) == []  # neither the file nor a part: nothing looks like a dump


def test_status_and_sums_disagreeing_is_refused(server: WikimediaServer, tmp_path: Path, monkeypatch) -> None:
    real = server.status

    def tampered(date: str):
        status = real(date)
        status["jobs"]["articlesmultistreamdumprecombine"]["files"][INDEX_NAME]["sha1"] = "1" * 40
        return status

    monkeypatch.setattr(server, "status", tampered)
    with pytest.raises(InputError, match=r"two sha1 sums for .*-index\.txt\.bz2: 1{40} \(dumpstatus\.json\)"):
        download.get_dump(WIKI, DATE, tmp_path, mirror=server.url, fetcher=_fetcher([]), say=lambda m: None)
    assert list(tmp_path.iterdir()) == []


def test_unfinished_run_is_one_line(server: WikimediaServer, tmp_path: Path, capsys) -> None:
    server.faults.job_status = "in-progress"
    assert main(["get-dump", WIKI, DATE, "--to", str(tmp_path), "--mirror", server.url]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: dump run {WIKI}/{DATE} is not finished: job articlesmultistreamdumprecombine is 'in-progress', "
        "updated 2026-11-03 08:00:00; wait for it, or ask for an earlier DATE or 'latest'\n"
    )
    assert not any(e.path.endswith(".bz2") for e in server.log)


def test_latest_skips_an_unfinished_run(server: WikimediaServer, tmp_path: Path, capsys) -> None:
    server.faults.job_status = "in-progress"
    assert main(["get-dump", WIKI, "latest", "--to", str(tmp_path), "--mirror", server.url, "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["date"] == OLDER
    assert f"latest finished run of {WIKI}: {OLDER}" in captured.err
    names = [Path(f["path"]).name for f in data["files"]]
    assert names == [DUMP_NAME.replace(DATE, OLDER), INDEX_NAME.replace(DATE, OLDER)]
    assert _sha1(tmp_path / names[0]) == _sha1(DEMO_DUMP)


def test_missing_file_and_missing_run(server: WikimediaServer, tmp_path: Path, capsys) -> None:
    server.faults.missing.add(INDEX_NAME)
    assert main(["get-dump", WIKI, DATE, "--to", str(tmp_path), "--mirror", server.url]) == 2
    err = capsys.readouterr().err
    url = f"{server.url}/{WIKI}/{DATE}/{INDEX_NAME}"
    assert err == f"error: file missing: {url} answered HTTP 404 (the status file lists it)\n"
    assert (tmp_path / DUMP_NAME).is_file()  # the dump itself was complete and verified
    assert main(["get-dump", WIKI, "20250101", "--to", str(tmp_path), "--mirror", server.url]) == 2
    err = capsys.readouterr().err
    status = f"{server.url}/{WIKI}/20250101/dumpstatus.json"
    assert err == f"error: no dump run {WIKI}/20250101 at {server.url} ({status} is missing)\n"
    assert main(["get-dump", "frwiki", DATE, "--to", str(tmp_path), "--mirror", server.url]) == 2
    assert "no dump run frwiki/20261101" in capsys.readouterr().err


def test_503_with_retry_after_is_honoured_within_a_bound(server: WikimediaServer, tmp_path: Path) -> None:
    server.faults.unavailable, server.faults.retry_after = 2, "3"
    waits: list[float] = []
    download.get_dump(WIKI, DATE, tmp_path, mirror=server.url, fetcher=_fetcher(waits), say=lambda m: None)
    assert waits == [3.0, 3.0] and (tmp_path / DUMP_NAME).is_file()
    server.faults.unavailable, server.faults.retry_after = 1, "3600"
    with pytest.raises(InputError, match=r"the server asks to wait 3600 s, more than 120 s: try again later"):
        download.get_dump(WIKI, DATE, tmp_path / "b", mirror=server.url, fetcher=_fetcher([]), say=lambda m: None)


def test_a_redirect_to_a_file_url_is_refused(server: WikimediaServer, tmp_path: Path) -> None:
    server.faults.redirect_to = "file:///etc/passwd"
    with pytest.raises(InputError, match=r"refusing a redirect to a non-http\(s\) URL"):
        download.get_dump(WIKI, DATE, tmp_path, mirror=server.url, fetcher=_fetcher([]), say=lambda m: None)
    assert list(tmp_path.glob("*.bz2")) == []


def test_disk_full_before_and_during(server: WikimediaServer, tmp_path: Path, monkeypatch, capsys) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 100, 100))
    assert main(["get-dump", WIKI, DATE, "--to", str(tmp_path), "--mirror", server.url]) == 2
    size = len(server.files[DUMP_NAME])
    assert capsys.readouterr().err == (
        f"error: disk full: {DUMP_NAME} needs {size} more bytes, 100 are free in {tmp_path}; "
        "free some space or choose another --to\n"
    )
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 0, 10**12))

    class Full:
        """A file whose writes fail with ENOSPC once 8 KiB are written, as a full disk does."""

        def __init__(self, f):
            self.f, self.n = f, 0

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            if self.n + len(data) > 8192:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.n += len(data)
            return self.f.write(data)

    real_open = Path.open

    def open_part(self: Path, mode: str = "r", *args, **kwargs):
        handle = real_open(self, mode, *args, **kwargs)
        return Full(handle) if self.suffix == ".part" and mode in ("wb", "r+b") else handle

    monkeypatch.setattr(Path, "open", open_part)
    assert main(["get-dump", WIKI, DATE, "--to", str(tmp_path), "--mirror", server.url]) == 2
    err = capsys.readouterr().err
    part = tmp_path / (DUMP_NAME + ".part")
    assert err.startswith(f"error: disk full: {part} stopped at {part.stat().st_size} of {size} bytes")
    assert err.endswith("free some space and run again to resume\n") and part.stat().st_size <= 8192


def test_bad_arguments_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["get-dump", "../etc", DATE, "--to", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: WIKI '../etc': expected a wiki database name")
    assert main(["get-dump", WIKI, "2026-11-01", "--to", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: DATE '2026-11-01': expected YYYYMMDD")
    assert main(["get-dump", WIKI, DATE, "--to", str(tmp_path), "--mirror", "ftp://example.org"]) == 2
    assert capsys.readouterr().err == "error: --mirror 'ftp://example.org' is not an http(s) URL with a host\n"
    assert main(["get-dump", WIKI, DATE, "--to", str(tmp_path), "--mirror", "https://u:secretpass@example.org"]) == 2
    err = capsys.readouterr().err
    assert "secretpass" not in err and "credentials in the URL" in err
    assert main(["get-dump", WIKI, DATE, "--to", str(tmp_path), "--mirror", "https://m.org/d?key=tok3n-value"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --mirror 'https://m.org/d': a base URL takes no query or fragment (paths are added to it)\n"


def test_progress_shows_rate_and_eta_on_stderr(server: WikimediaServer, tmp_path: Path, capsys) -> None:
    assert main(["get-dump", WIKI, DATE, "--to", str(tmp_path), "--mirror", server.url, "--progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [str(tmp_path / DUMP_NAME), str(tmp_path / INDEX_NAME)]
    assert DUMP_NAME in captured.err and "B/s" in captured.err  # tqdm's bar: bytes, rate
    assert re.search(r"\d+:\d\d<\d+:\d\d", captured.err)  # elapsed<remaining (the ETA)


def test_which_job_holds_the_files() -> None:
    names = download.file_names("simplewiki", DATE)
    files = {n: {"size": 1, "sha1": "a" * 40} for n in names}
    small = {
        "articlesmultistreamdumprecombine": {"status": "skipped", "files": {}},
        "articlesmultistreamdump": {"status": "done", "files": files},
    }
    assert download.job_files({"jobs": small}, "simplewiki", DATE, "w") == ("articlesmultistreamdump", files)
    running = {"articlesmultistreamdump": {"status": "in-progress", "files": files}}
    with pytest.raises(InputError, match=r"is not finished: job articlesmultistreamdump is 'in-progress'"):
        download.job_files({"jobs": running}, "simplewiki", DATE, "w")
    other = {"articlesmultistreamdump": {"status": "done", "files": {"x.bz2": {}}}, "xmlstubsdump": {"status": "done"}}
    with pytest.raises(InputError) as err:
        download.job_files({"jobs": other}, "simplewiki", DATE, "w")
    assert str(err.value) == (
        f"file missing: w lists no {names[0]} and {names[1]} in jobs articlesmultistreamdumprecombine, "
        "articlesmultistreamdump (jobs listed: articlesmultistreamdump, xmlstubsdump)"
    )
