"""HTTP to Wikimedia's hosts (the dump server, ``Special:Export``) for ``get-dump`` and the online page source.

Those servers (or a mirror the user names, or whatever sits between) are untrusted input, treated as the
LLM client treats its endpoints (``llm/client.py``) and as ``release/trust.py`` treats a release:

* bounded: bodies are asked for and read as ``identity`` (no decompression bomb hides in a gzip layer); every
  small reply (status JSON, checksum list, directory listing, an export batch) is read up to a
  byte cap and a total deadline; a download is bounded by the size the run published and a stall timeout;
* redirects are followed by hand, at most :data:`MAX_REDIRECTS`, only to ``http``/``https`` and never from
  ``https`` down to ``http``; a URL carrying ``user:password@`` is refused;
* error lines name the URL without userinfo or query (:func:`shown`) and are scrubbed like every other error
  line (``redact.py``); a server's body never reaches an error line;
* no path is taken from the server: callers build file names themselves (``download.py``).

API etiquette (https://meta.wikimedia.org/wiki/User-Agent_policy, https://www.mediawiki.org/wiki/API:Etiquette):
a descriptive User-Agent with a way to reach the user (``WIKIPERSONA_CONTACT``, e.g. an e-mail address), at
most ``rate`` requests per second per :class:`Fetcher` (default 2, one at a time), and retries on 429/503 and
dropped connections that honour ``Retry-After`` up to :data:`MAX_RETRY_AFTER` seconds (a longer wait asked
for is an error, not a hang), else back off exponentially. Built on ``httpx2``, the HTTP client the OpenAI SDK
already brings in (timeouts, streaming, ranged reads), so no new dependency and no hand-rolled HTTP.
"""

from __future__ import annotations

import email.utils
import os
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx2

from wikipersona_data import __version__
from wikipersona_data.errors import InputError
from wikipersona_data.redact import safe_url

MAX_REDIRECTS = 5
MAX_RETRY_AFTER = 120.0  # seconds: a server asking for a longer pause gets an error, not a hang
MAX_ATTEMPTS = 5  # HTTP requests per small fetch (the first and 4 retries)
BACKOFF_BASE = 1.0  # seconds before the first retry without a Retry-After; doubles each time, capped below
BACKOFF_CAP = 30.0
SMALL_DEADLINE = 120.0  # seconds for one small reply, all attempts' reading included
CONNECT_TIMEOUT = 30.0
STALL_TIMEOUT = 60.0  # seconds without a byte before a read gives up
DEFAULT_RATE = 2.0  # requests per second, at most
RETRY_STATUSES = frozenset({429, 502, 503, 504})
CONTACT_ENV = "WIKIPERSONA_CONTACT"
PROJECT_URL = "https://pypi.org/project/wikipersona-data/"


class FetchError(InputError):
    """A request that failed for good; ``status`` is the HTTP status (None: no reply)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def user_agent() -> str:
    """``wikipersona-data/0.1.0 (<project URL>; <contact>) httpx2/X``: Wikimedia asks for a way to reach the user."""
    contact = " ".join(os.environ.get(CONTACT_ENV, "").split())[:200]
    who = f"{PROJECT_URL}; {contact}" if contact else PROJECT_URL
    return f"wikipersona-data/{__version__} ({who}) httpx2/{httpx2.__version__}"


def shown(url: str) -> str:
    """``url`` for a message: no userinfo, no query or fragment (they can carry tokens)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return safe_url(url).split("?", 1)[0]
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_url(url: str, what: str) -> str:
    """``url`` without a trailing slash if it is an ``http(s)`` URL with a host and no credentials."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InputError(f"{what} {shown(url)!r} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InputError(f"{what} {shown(url)!r} is not an http(s) URL with a host")
    if "@" in parts.netloc:
        raise InputError(f"{what} {shown(url)!r}: credentials in the URL (user:password@) are not supported")
    if parts.query or parts.fragment:
        raise InputError(f"{what} {shown(url)!r}: a base URL takes no query or fragment (paths are added to it)")
    return url.strip().rstrip("/")


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None if absent/unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


@dataclass
class Fetcher:
    """One polite client: rate limit, bounded replies, safe redirects, bounded retries (see the module docstring).

    ``sleep`` and ``clock`` are injectable so tests can check the waits without waiting.
    """

    rate: float = DEFAULT_RATE
    max_retry_after: float = MAX_RETRY_AFTER
    max_attempts: int = MAX_ATTEMPTS
    stall_timeout: float = STALL_TIMEOUT
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    waits: list[float] = field(default_factory=list)  # every pause taken (rate limit excluded), for reports and tests
    _client: httpx2.Client | None = None
    _last_start: float | None = None

    def client(self) -> httpx2.Client:
        if self._client is None:
            self._client = httpx2.Client(
                follow_redirects=False,
                headers={"User-Agent": user_agent(), "Accept-Encoding": "identity"},
                timeout=httpx2.Timeout(self.stall_timeout, connect=CONNECT_TIMEOUT),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ pacing
    def _pace(self) -> None:
        """At most ``rate`` request starts per second."""
        if self.rate > 0 and self._last_start is not None:
            gap = 1.0 / self.rate - (self.clock() - self._last_start)
            if gap > 0:
                self.sleep(gap)
        self._last_start = self.clock()

    def backoff(self, attempt: int, url: str, hint: float | None, why: str) -> None:
        """Wait before retry ``attempt`` (1-based): ``Retry-After`` if given (bounded), else exponential."""
        if hint is not None and hint > self.max_retry_after:
            raise FetchError(
                f"{shown(url)}: {why}; the server asks to wait {hint:.0f} s, more than {self.max_retry_after:.0f} s: "
                "try again later"
            )
        wait = hint if hint is not None else min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_CAP)
        self.waits.append(wait)
        if wait > 0:
            self.sleep(wait)

    # ------------------------------------------------------------------ requests
    @contextmanager
    def open(
        self,
        method: str,
        url: str,
        *,
        data: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[httpx2.Response]:
        """A streamed response after safe redirects (one request per hop, each paced). The caller reads the body
        and checks the status; transport errors propagate as ``httpx2.TransportError``."""
        hops = 0
        current = url
        while True:
            self._pace()
            request = self.client().build_request(method, current, data=data, params=params, headers=headers)
            response = self.client().send(request, stream=True)
            if response.status_code not in (301, 302, 303, 307, 308):
                try:
                    yield response
                finally:
                    response.close()
                return
            location = response.headers.get("location", "")
            response.close()
            hops += 1
            target = urllib.parse.urljoin(str(response.url), location)
            old_scheme = urllib.parse.urlsplit(current).scheme.lower()
            new = urllib.parse.urlsplit(target)
            if hops > MAX_REDIRECTS:
                raise FetchError(f"{shown(url)}: more than {MAX_REDIRECTS} redirects", response.status_code)
            if new.scheme.lower() not in ("http", "https") or not new.hostname or "@" in new.netloc:
                raise FetchError(f"{shown(url)}: refusing a redirect to a non-http(s) URL", response.status_code)
            if old_scheme == "https" and new.scheme.lower() == "http":
                raise FetchError(f"{shown(url)}: refusing a redirect from https to http ({shown(target)})")
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, data = "GET", None
            current, params = target, None  # the query is in the Location

    def fetch(
        self,
        url: str,
        *,
        what: str,
        max_bytes: int,
        method: str = "GET",
        data: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        deadline: float = SMALL_DEADLINE,
    ) -> bytes:
        """A small body, read whole: at most ``max_bytes``, within ``deadline`` seconds; retries on 429/5xx/drops.

        A 404 raises :class:`FetchError` with ``status=404`` (callers turn it into "file missing").
        """
        started = self.clock()
        for attempt in range(1, self.max_attempts + 1):
            why: str
            hint: float | None = None
            try:
                with self.open(method, url, data=data, params=params) as response:
                    status = response.status_code
                    if status == 200:
                        return self._read_capped(response, url, what, max_bytes, started + deadline)
                    if status not in RETRY_STATUSES:
                        raise FetchError(f"{what}: {shown(url)} answered HTTP {status}", status)
                    why = f"HTTP {status}"
                    hint = retry_after(response.headers.get("retry-after"))
            except httpx2.TransportError as err:
                why = f"{type(err).__name__}"
            if attempt == self.max_attempts or self.clock() - started > deadline:
                raise FetchError(f"{what}: {shown(url)} failed {attempt} times (last: {why})")
            self.backoff(attempt, url, hint, why)
        raise AssertionError("unreachable")

    def _read_capped(self, response: httpx2.Response, url: str, what: str, max_bytes: int, until: float) -> bytes:
        check_identity(response, url, what)
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(f"{what}: {shown(url)} announces {declared} bytes, more than the {max_bytes} allowed")
        body = bytearray()
        for chunk in response.iter_raw():
            body += chunk
            if len(body) > max_bytes:
                raise FetchError(f"{what}: {shown(url)} sent more than {max_bytes} bytes")
            if self.clock() > until:
                raise FetchError(f"{what}: {shown(url)} took longer than allowed to answer")
        return bytes(body)


def check_identity(response: httpx2.Response, url: str, what: str) -> None:
    """We ask for ``identity``; a compressed body would make the byte caps and ranged reads meaningless."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchError(f"{what}: {shown(url)} sent a {encoding[:20]!r}-encoded body, though asked for identity")
