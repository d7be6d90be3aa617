"""Semantic versions of the dataset and its changelog.

MAJOR = a column renamed or removed (schema break), MINOR = rows added (new personas, ``extend``),
PATCH = card or metadata fixes with identical data. ``build`` refuses nothing: it records the recipe's
``version``; ``extend`` bumps MINOR of the release it extends. The changelog lives in the manifest so the card
can list every version, and each entry records what it added so users can tell versions apart.
"""

from __future__ import annotations

from wikipersona_data.errors import ConfigError
from wikipersona_data.release.manifest import SEMVER, ChangelogEntry, ManifestData

PARTS = ("major", "minor", "patch")
COUNTED = ("personas", "pairs_train", "pairs_test")


def parse(version: str) -> tuple[int, int, int]:
    match = SEMVER.match(version)
    if not match:
        raise ConfigError(f"version {version!r} is not semantic (X.Y.Z)")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def bump(version: str, part: str) -> str:
    """``bump("1.2.3", "minor") == "1.3.0"``."""
    if part not in PARTS:
        raise ConfigError(f"version part {part!r} is not one of {', '.join(PARTS)}")
    major, minor, patch = parse(version)
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def counts_added(new: dict[str, int], old: dict[str, int] | None) -> dict[str, int]:
    """What a version adds over the previous one, for the counts users care about."""
    old = old or {}
    return {k: new.get(k, 0) - old.get(k, 0) for k in COUNTED if new.get(k, 0) != old.get(k, 0)}


def with_entry(
    data: ManifestData,
    *,
    summary: str,
    date: str | None = None,
    previous: ManifestData | None = None,
    personas: list[str] | None = None,
    models: dict[str, str] | None = None,
    filters: dict[str, int] | None = None,
):
    """Return ``data`` with a changelog entry for its version (replacing an older entry of that version).

    ``previous`` is the manifest of the version this one extends: its changelog is carried over so
    the card lists every version, and the counts added are measured against it. ``personas``,
    ``models`` and ``filters`` say what was added, by which models, and what the filters dropped of it.
    """
    history = list(previous.changelog if previous is not None else data.changelog)
    history = [e for e in history if e.version != data.version]
    entry = ChangelogEntry(
        version=data.version,
        date=date,
        summary=summary,
        counts_added=counts_added(data.counts, previous.counts if previous is not None else None),
        personas=personas or [],
        models=models or {},
        filters=filters or {},
    )
    ordered = sorted([*history, entry], key=lambda e: parse(e.version))
    return data.model_copy(update={"changelog": ordered})
