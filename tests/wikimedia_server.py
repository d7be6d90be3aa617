"""A local stand-in for Wikimedia's hosts, on 127.0.0.1: a dump run directory and a ``Special:Export`` endpoint.

The dump run is built from the bundled demo dump (the same bytes under Wikimedia's names), with its
``dumpstatus.json``, ``<wiki>-<date>-sha1sums.txt`` and a directory listing; files honour ``Range``. Faults
are switched on per test through :class:`Faults`: a connection dropped mid-file, a wrong published sum, an
unfinished run, a missing file, a server that ignores ``Range``, 503 with ``Retry-After``, a redirect to a
``file:`` URL. Every request is logged (method, path, headers, time) so tests can check what was asked.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from wikipersona_data.demo.paths import DEMO_DUMP, DEMO_INDEX

WIKI = "enwiki"
DATE = "20261101"
OLDER = "20261020"
DUMP_NAME = f"{WIKI}-{DATE}-pages-articles-multistream.xml.bz2"
INDEX_NAME = f"{WIKI}-{DATE}-pages-articles-multistream-index.txt.bz2"


@dataclass
class Faults:
    drop_after: dict[str, int] = field(default_factory=dict)  # name -> bytes sent before the connection drops (once)
    drop_every_time: bool = False  # drop at that byte on every request (no progress past it), not only once
    wrong_sum: set[str] = field(default_factory=set)  # names whose published sha1 is wrong
    job_status: str = "done"  # status of the multistream job of DATE
    missing: set[str] = field(default_factory=set)  # names answered with 404 (still listed)
    ignore_range: bool = False
    unavailable: int = 0  # first N requests get 503
    retry_after: str | None = None  # Retry-After sent with those 503s
    redirect_to: str | None = None  # every file request is redirected there (e.g. a file: URL)
    export_maxlag: int = 0  # first N export requests get the maxlag 503


@dataclass
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    at: float
    form: dict[str, list[str]] = field(default_factory=dict)


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-reply (the downloader aborting, a dropped connection) is normal here: not a
    traceback on the test's captured stderr, which the tests compare line for line. Other errors still print."""

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class WikimediaServer:
    """Serve ``files`` (name -> bytes) as run DATE of WIKI, plus an older finished run, plus Special:Export."""

    def __init__(self, export_pages: dict[str, bytes] | None = None, export_head: bytes = b"") -> None:
        self.files = {DUMP_NAME: DEMO_DUMP.read_bytes(), INDEX_NAME: DEMO_INDEX.read_bytes()}
        self.faults = Faults()
        self.log: list[Logged] = []
        self.export_pages = export_pages or {}  # normalised title -> <page> XML
        self.export_head = export_head  # <mediawiki ...><siteinfo>...</siteinfo>
        self._dropped: set[str] = set()
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"owner": self})
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> WikimediaServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def sha1(self, name: str) -> str:
        if name in self.faults.wrong_sum:
            return "0" * 40
        return hashlib.sha1(self.files[name]).hexdigest()

    def status(self, date: str) -> dict[str, Any]:
        files = {
            name.replace(DATE, date): {
                "size": len(data),
                "url": f"/{WIKI}/{date}/{name.replace(DATE, date)}",
                "md5": hashlib.md5(data).hexdigest(),
                "sha1": self.sha1(name),
            }
            for name, data in self.files.items()
        }
        state = self.faults.job_status if date == DATE else "done"
        job = {"status": state, "updated": "2026-11-03 08:00:00", "files": files if state == "done" else {}}
        return {
            "jobs": {
                "articlesmultistreamdumprecombine": job,
                "articlesmultistreamdump": {"status": "done", "updated": "2026-11-02 20:00:00", "files": {}},
                "xmlstubsdump": {"status": "done", "files": {}},
            },
            "version": "0.8",
        }


class _Handler(BaseHTTPRequestHandler):
    owner: WikimediaServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _record(self, form: dict[str, list[str]] | None = None) -> None:
        self.owner.log.append(
            Logged(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, time.monotonic(), form or {}
            )
        )

    def _send(self, status: int, body: bytes, ctype: str = "text/plain", extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _unavailable(self) -> bool:
        faults = self.owner.faults
        with self.owner._lock:
            if faults.unavailable <= 0:
                return False
            faults.unavailable -= 1
        extra = {"Retry-After": faults.retry_after} if faults.retry_after is not None else {}
        self._send(503, b"try later", extra=extra)
        return True

    def do_GET(self) -> None:
        self._record()
        if self._unavailable():
            return
        path = urllib.parse.urlsplit(self.path).path
        parts = [p for p in path.split("/") if p]
        owner = self.owner
        if parts == [WIKI]:
            listing = "".join(f'<a href="{d}/">{d}/</a>\n' for d in (OLDER, DATE, "latest"))
            self._send(200, f"<html><body>{listing}</body></html>".encode(), "text/html")
            return
        if len(parts) == 3 and parts[0] == WIKI and parts[1] in (DATE, OLDER):
            date, name = parts[1], parts[2]
            if name == "dumpstatus.json":
                self._send(200, json.dumps(owner.status(date)).encode(), "application/json")
                return
            if name == f"{WIKI}-{date}-sha1sums.txt":
                lines = "".join(f"{owner.sha1(n)}  {n.replace(DATE, date)}\n" for n in owner.files)
                self._send(200, lines.encode())
                return
            original = name.replace(date, DATE)
            if original in owner.files and original not in owner.faults.missing:
                if owner.faults.redirect_to is not None:
                    self._send(302, b"", extra={"Location": owner.faults.redirect_to})
                    return
                self._file(original)
                return
        self._send(404, b"not found")

    def _file(self, name: str) -> None:
        data = self.owner.files[name]
        start = 0
        rng = self.headers.get("Range")
        faults = self.owner.faults
        if rng and not faults.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self._send(416, b"", extra={"Content-Range": f"bytes */{len(data)}"})
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        drop = faults.drop_after.get(name)
        if drop is not None:
            with self.owner._lock:
                first = name not in self.owner._dropped
                self.owner._dropped.add(name)
            if faults.drop_every_time or first:
                self.wfile.write(body[: max(drop - start, 0)])  # the connection drops at file byte `drop`
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # fewer bytes than Content-Length, then the socket closes
                return
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
        self._record(form)
        path = urllib.parse.urlsplit(self.path).path
        if path != "/w/index.php" or form.get("title") != ["Special:Export"]:
            self._send(404, b"not found")
            return
        self._export(form)

    def _export(self, form: dict[str, list[str]]) -> None:
        owner = self.owner
        with owner._lock:
            lagged = owner.faults.export_maxlag > 0
            if lagged:
                owner.faults.export_maxlag -= 1
        if lagged and form.get("maxlag"):
            extra = {"Retry-After": "5", "X-Database-Lag": "7"}
            self._send(503, b"Waiting for a database server: 7 seconds lagged", extra=extra)
            return
        if self._unavailable():
            return
        from wikipersona_data.wiki.titles import normalize_title

        titles = [t for t in (form.get("pages") or [""])[0].split("\n") if t.strip()]
        pages = [
            owner.export_pages[k] for k in dict.fromkeys(normalize_title(t) for t in titles) if k in owner.export_pages
        ]
        body = owner.export_head + b"\n" + b"\n".join(pages) + b"\n</mediawiki>\n"
        self._send(200, body, "application/xml; charset=utf-8")
