"""The release manifest: every fact the card, ``verify`` and ``publish`` rely on, in one JSON file.

It is split in two on purpose. ``data`` holds only facts that follow from the inputs (recipe, dump,
templates, seeds, cached LLM answers, the rows themselves), so rebuilding the same recipe gives the
same ``data`` byte for byte and ``publish`` can tell "already published" from "different content".
``run`` holds what changes on every build (timestamps, wall time, library versions).

A manifest is uploaded to a public repo, so it must never carry an API key or a path of the build
machine: the model refuses both at construction time, not at upload time.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError, field_validator, model_validator

from wikipersona_data.errors import InputError
from wikipersona_data.fileio import canonical_json
from wikipersona_data.redact import KEY_PATTERNS

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")

# A path segment starting right after a separator (start, space, quote, '=', '(' ...) that is itself
# followed by another segment: "/home/x", "/tmp/y", 'dump = "/work/..."'. URLs do not match because
# their "/" follows a host name character.
_ABS_POSIX = re.compile(r"(?:^|[\s\"'=(\[,:;<>`])(/[A-Za-z0-9._~-]+/[^\s\"'`)]*)")
_ABS_HOME = re.compile(r"(?:^|[\s\"'=(\[,;<>`])(~/[^\s\"'`)]+)")
_ABS_WINDOWS = re.compile(r"(?:^|[\s\"'=(\[,;<>`])([A-Za-z]:\\[^\s\"'`]*)")
_FILE_URL = re.compile(r"file://\S+")
_KEYS = KEY_PATTERNS  # the one list of key shapes (wikipersona_data/redact.py)
# Wikipedia text is CC BY-SA: a dataset made from it must be shared alike (Hub license identifiers).
KNOWN_LICENSES = ("cc-by-sa-4.0", "cc-by-sa-3.0", "gfdl")
_COUNT_KEYS = re.compile(r"(^|_)(calls|cache_hits|tokens|prompt_tokens|completion_tokens|requests|count|n)$|cost|usd")
_SECRET_FIELD_NAMES = {"api_key", "apikey", "token", "hf_token", "access_token", "secret", "password", "authorization"}


def find_leaks(text: str) -> list[str]:
    """Return what in ``text`` looks like a local absolute path or a credential (empty if clean).

    Shared by the manifest model and ``verify`` (which re-scans the card text too), so both
    apply the same rule.
    """
    found: list[str] = []
    for pattern in (_ABS_POSIX, _ABS_HOME, _ABS_WINDOWS):
        found += [f"absolute path {m.group(1)!r}" for m in pattern.finditer(text)]
    found += [f"local file URL {m.group(0)!r}" for m in _FILE_URL.finditer(text)]
    for pattern in _KEYS:
        # never echo a credential back: show only its first characters
        found += [f"key-looking string {m.group(0)[:6]!r}..." for m in pattern.finditer(text)]
    return found


def _walk(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield where, str(key)
            if str(key).lower() in _SECRET_FIELD_NAMES and item not in (None, ""):
                yield f"{where}.{key}", "\x00secret-field"
            yield from _walk(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk(item, f"{where}[{i}]")


def _refuse_leaks(payload: dict[str, Any], root: str) -> None:
    for where, text in _walk(payload, root):
        if text == "\x00secret-field":
            raise ValueError(f"{where}: a field named like a secret cannot be part of the manifest")
        leaks = find_leaks(text)
        if leaks:
            raise ValueError(f"{where}: {leaks[0]}; the manifest is published, keep it free of local paths and keys")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Recipe(_Strict):
    name: str
    sha256: str
    text: str


class Dump(_Strict):
    name: str
    date: str


class OnlinePage(_Strict):
    """A page a build read from the live wiki (``[dump] source = "online"``): which revision it used."""

    title: str
    page_id: int
    revision_id: int | None


class Endpoint(_Strict):
    name: str
    profile: str
    base_url_redacted: str  # "scheme://host" for public hosts, "local" for loopback


class ModelUse(_Strict):
    requested: str
    served: list[str] = Field(default_factory=list)


class FilterCounts(_Strict):
    kept: int = Field(ge=0)
    dropped: dict[str, NonNegativeInt] = Field(default_factory=dict)


class FileEntry(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    rows: int | None = Field(default=None, ge=0)


def _negative_numbers(value: Any, where: str) -> Iterator[str]:
    """Paths of negative costs or counts in the free-form ledger (keys named like a count or a cost)."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}"
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                if _COUNT_KEYS.search(str(key)) and item < 0:
                    yield f"{path} = {item}"
            else:
                yield from _negative_numbers(item, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _negative_numbers(item, f"{where}[{i}]")


class ChangelogEntry(_Strict):
    version: str
    date: str | None = None
    summary: str
    counts_added: dict[str, int] = Field(default_factory=dict)
    personas: list[str] = Field(default_factory=list, description="Personas added in this version (names).")
    models: dict[str, str] = Field(default_factory=dict, description="Stage -> model that made the added rows.")
    filters: dict[str, int] = Field(default_factory=dict, description="Added rows dropped, by filter reason.")


class ExtensionPersona(_Strict):
    title: str = Field(description="Wikipedia title as given to `wikipersona extend`.")
    persona_id: str
    axes: list[str] = Field(description="'axis:category' memberships.")


class Extension(_Strict):
    """One `wikipersona extend` run: with the recipe, enough to regenerate the version."""

    version: str
    base_version: str
    personas: list[ExtensionPersona]


class AuditFigures(_Strict):
    """Agreement of two raters over the same items (``release/kappa.py``)."""

    items: int = Field(ge=1)
    agreement: float = Field(ge=0.0, le=1.0, description="Raw agreement: share of items with the same label.")
    kappa: float | None = Field(description="Cohen's kappa; null when chance agreement is 1 (undefined).")


class JudgeAudit(_Strict):
    """``wikipersona audit import``: people's choices on a sample of test pairs against the judge's."""

    sheet_id: str
    seed: int
    sample: int = Field(ge=1)
    annotators: list[str]
    vs_judge: dict[str, dict[str, AuditFigures]] = Field(
        description="Annotator -> 'overall' or axis ('personal' for personal questions) -> figures."
    )
    between_annotators: dict[str, dict[str, AuditFigures]] = Field(
        default_factory=dict, description="'a / b' -> group -> figures, for every two annotators."
    )
    choices: dict[str, dict[str, float]] = Field(
        description="Annotator -> share of items where they picked the judge's chosen, its rejected, or tie."
    )


class ManifestData(_Strict):
    """The deterministic part: equal inputs give equal ``data``."""

    name: str = "WikiPersona"
    version: str
    description: str = Field(default="", description="The recipe's description, shown on the card.")
    fictional_people: bool = Field(
        default=False, description="The personas are invented people: the card must not present them as real."
    )
    recipe: Recipe
    dump: Dump
    online_pages: list[OnlinePage] | None = Field(
        default=None,
        description="With [dump] source = 'online': every article read from Special:Export and its revision id.",
    )
    endpoints: list[Endpoint] = Field(default_factory=list)
    models: dict[str, ModelUse] = Field(default_factory=dict)
    templates: dict[str, str] = Field(default_factory=dict)
    seeds: dict[str, int] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    filter_report: dict[str, dict[str, FilterCounts]] = Field(default_factory=dict)
    ledger: dict[str, Any] = Field(default_factory=dict)
    divergence: dict[str, float] = Field(default_factory=dict)
    grounding: dict[str, float] = Field(default_factory=dict)
    files: dict[str, FileEntry] = Field(default_factory=dict)
    changelog: list[ChangelogEntry] = Field(default_factory=list)
    stage_fingerprints: dict[str, str] = Field(
        default_factory=dict,
        description="Per stage: hash of its settings, templates and upstream (stages/fingerprint.py).",
    )
    extensions: list[Extension] = Field(
        default_factory=list, description="Personas added by `wikipersona extend` on top of the recipe, in order."
    )
    judge_audit: JudgeAudit | None = Field(
        default=None,
        exclude_if=lambda v: v is None,  # absent until audited: manifests of unaudited releases keep their bytes
        description="Judge vs people on a sample of test pairs (`wikipersona audit import`).",
    )
    license: str = "cc-by-sa-4.0"
    source_url: str = "https://en.wikipedia.org"
    repo_id: str | None = None

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not SEMVER.match(value):
            raise ValueError(f"version {value!r} is not semantic (X.Y.Z)")
        return value

    @field_validator("license")
    @classmethod
    def _license(cls, value: str) -> str:
        if value not in KNOWN_LICENSES:
            known = ", ".join(KNOWN_LICENSES)
            raise ValueError(f"unknown license {value!r}: Wikipedia text needs a share-alike license, one of {known}")
        return value

    @field_validator("counts")
    @classmethod
    def _counts(cls, value: dict[str, int]) -> dict[str, int]:
        negative = [f"{k} = {v}" for k, v in value.items() if v < 0]
        if negative:
            raise ValueError(f"negative count {negative[0]}")
        return value

    @field_validator("divergence", "grounding")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        """Divergence is a share of questions, grounding a mean/min of [0, 1] scores."""
        bad = [f"{k} = {v}" for k, v in value.items() if not 0.0 <= v <= 1.0]
        if bad:
            raise ValueError(f"{bad[0]} is outside [0, 1]")
        return value

    @field_validator("ledger")
    @classmethod
    def _ledger(cls, value: dict[str, Any]) -> dict[str, Any]:
        negative = next(_negative_numbers(value, "ledger"), None)
        if negative is not None:
            raise ValueError(f"negative cost or count {negative}")
        return value

    @field_validator("repo_id")
    @classmethod
    def _repo_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", value):
            raise ValueError(f"repo_id {value!r} is not ORG/NAME")
        return value


class RunInfo(_Strict):
    """Volatile facts of one build; excluded from content comparisons."""

    built_at: str | None = None
    wall_seconds: float | None = None
    package_version: str | None = None
    python: str | None = None
    libraries: dict[str, str] = Field(default_factory=dict)
    durations: dict[str, float] = Field(default_factory=dict)


class Manifest(_Strict):
    data: ManifestData
    run: RunInfo = Field(default_factory=RunInfo)

    @model_validator(mode="after")
    def _no_paths_or_keys(self) -> Manifest:
        _refuse_leaks(self.model_dump(mode="json"), "manifest")
        return self

    @property
    def version(self) -> str:
        return self.data.version

    @property
    def tag(self) -> str:
        return f"v{self.data.version}"

    def data_json(self) -> str:
        """Canonical JSON of ``data``: what "same content" means for publish."""
        return canonical_json(self.data.model_dump(mode="json"))

    def data_sha256(self) -> str:
        return hashlib.sha256(self.data_json().encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        """The manifest.json text: sorted keys, indent 2, trailing newline, stable across runs."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read manifest.json; any problem becomes one line naming the file."""
        from wikipersona_data.release.files import read_text

        try:
            text = read_text(path)
        except InputError:
            raise
        except FileNotFoundError:
            raise InputError(f"{path}: manifest.json is missing") from None
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: cannot read manifest ({err})") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "<root>"
            raise InputError(f"{path}: invalid manifest at {loc}: {first['msg']}") from None


def redact_base_url(base_url: str) -> str:
    """``scheme://host`` for public endpoints, ``local`` for loopback, so no port/path/key is published."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host in {"localhost", "::1"} or host.startswith("127.") or host == "0.0.0.0":
        return "local"
    return f"{parts.scheme}://{host}" if host else "unknown"
