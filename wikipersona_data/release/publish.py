"""Upload a verified release to the Hugging Face Hub and tag it ``vX.Y.Z``.

The order is what makes a version trustworthy: verify locally, refuse to overwrite a tag that
points at different content, upload exactly the release's files in one ``upload_folder`` (stale
shards of the previous version deleted), and tag only the commit that upload returned. If anything
remote fails, nothing is tagged, so a tag always means "this exact manifest is on the Hub".

The ``HfApi`` is passed in, so tests drive the whole flow with a double and the CLI with the real
client; the token is resolved by ``huggingface_hub`` itself (``HF_TOKEN`` or the stored login) and
never passes through, or is printed by, this module.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from wikipersona_data.errors import InputError, WikipersonaError
from wikipersona_data.release.files import read_text, refuse_special
from wikipersona_data.release.manifest import Manifest
from wikipersona_data.release.verify import verify_release
from wikipersona_data.release.versions import bump
from wikipersona_data.release.writer import sha256_file

ALLOW_PATTERNS = ["README.md", "manifest.json", "data/**", "charts/**"]
DELETE_PATTERNS = ["data/**", "charts/**"]
REPO_TYPE = "dataset"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")

T = TypeVar("T")


class PublishError(WikipersonaError):
    """The Hub refused or could not be reached; the message says what was (not) done."""


@dataclass(frozen=True)
class ReleaseFile:
    path: str
    bytes: int
    sha256: str


@dataclass
class PublishResult:
    repo_id: str
    tag: str
    status: str  # "dry-run" | "published" | "already-published"
    files: list[ReleaseFile] = field(default_factory=list)
    commit: str | None = None


def release_files(root: Path) -> list[ReleaseFile]:
    """The files ``upload_folder`` will send, selected by the same allowlist the upload uses."""
    from huggingface_hub.utils import filter_repo_objects

    refuse_special(root)
    candidates = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    chosen = filter_repo_objects(candidates, allow_patterns=ALLOW_PATTERNS)
    return [ReleaseFile(rel, (root / rel).stat().st_size, sha256_file(root / rel)) for rel in chosen]


def commit_message(manifest: Manifest) -> str:
    return f"Release {manifest.tag} ({manifest.data_sha256()[:12]})"


def publish_release(
    release: Path,
    repo_id: str,
    *,
    api: Any,
    private: bool = False,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> PublishResult:
    """Verify ``release``, then upload and tag it on ``repo_id`` (or only show the plan with ``dry_run``)."""
    release = Path(release)
    if not _REPO_ID.fullmatch(repo_id):
        raise InputError(f"--repo-id {repo_id!r} is not ORG/NAME")
    report = verify_release(release)
    if not report.ok:
        first = report.failures[0]
        raise InputError(
            f"{release}: refusing to publish, verify failed {len(report.failures)} check(s); "
            f"first: {first.name}: {first.detail} (run `wikipersona verify {release}`)"
        )
    manifest = Manifest.load(release / "manifest.json")
    tag = manifest.tag
    files = release_files(release)

    if dry_run:
        _print_plan(release, repo_id, manifest, files, private, echo)
        return PublishResult(repo_id, tag, "dry-run", files)

    if api is None:
        raise InputError("publish needs a Hub client (HfApi) unless --dry-run")
    published = _published_manifest(api, repo_id, tag)
    if published is not None:
        if published.data_json() == manifest.data_json():
            echo(f"{repo_id}@{tag} is already published with this content (manifest {manifest.data_sha256()[:12]})")
            return PublishResult(repo_id, tag, "already-published", files)
        raise InputError(
            f"{repo_id}: tag {tag} already exists with different content (Hub manifest "
            f"{published.data_sha256()[:12]}, local {manifest.data_sha256()[:12]}); a published version never "
            f"changes: bump the version (e.g. {bump(manifest.version, 'patch')} for card fixes, "
            f"{bump(manifest.version, 'minor')} for new rows) and rebuild"
        )

    _remote(
        "create the repo",
        "nothing was uploaded or tagged",
        lambda: api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True),
    )
    commit = _remote(
        "upload",
        "nothing was tagged",
        lambda: api.upload_folder(
            repo_id=repo_id,
            repo_type=REPO_TYPE,
            folder_path=str(release),
            allow_patterns=list(ALLOW_PATTERNS),
            delete_patterns=list(DELETE_PATTERNS),
            commit_message=commit_message(manifest),
        ),
    )
    oid = getattr(commit, "oid", None)
    if not oid:
        raise PublishError(f"{repo_id}: the upload returned no commit id; nothing was tagged")
    _remote(
        f"tag {tag}",
        f"commit {oid[:12]} is uploaded but not tagged; re-run publish to tag it",
        lambda: api.create_tag(
            repo_id, tag=tag, revision=oid, repo_type=REPO_TYPE, tag_message=commit_message(manifest)
        ),
    )
    echo(f"published {repo_id}@{tag}: commit {oid}")
    echo(f'load it with: load_dataset("{repo_id}", "pairs", revision="{tag}")')
    return PublishResult(repo_id, tag, "published", files, oid)


def _print_plan(release: Path, repo_id: str, manifest: Manifest, files: list[ReleaseFile], private: bool, echo) -> None:
    echo("dry run: nothing is sent to the Hub")
    echo(f"repo:    {repo_id} (dataset{', private if created' if private else ''})")
    echo(f"tag:     {manifest.tag}")
    echo(f"commit:  {commit_message(manifest)}")
    echo(f"delete:  remote files matching {', '.join(DELETE_PATTERNS)} that are not in this release")
    echo(f"files:   {len(files)} ({sum(f.bytes for f in files):,} bytes)")
    width = max(len(f.path) for f in files)
    for f in files:
        echo(f"  {f.path:<{width}}  {f.bytes:>12,}  sha256 {f.sha256}")
    echo("card front matter:")
    text = read_text(release / "README.md")
    parts = text.split("---\n", 2)
    for line in (parts[1] if len(parts) == 3 else "").splitlines():
        echo(f"  {line}")


def _published_manifest(api: Any, repo_id: str, tag: str) -> Manifest | None:
    """The manifest at ``tag`` on the Hub, or None if the repo or the tag does not exist yet."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    try:
        refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
    except RepositoryNotFoundError:
        return None
    except Exception as err:
        raise PublishError(f"{repo_id}: cannot list tags ({_describe(err)}); nothing was uploaded or tagged") from None
    if tag not in {ref.name for ref in refs.tags}:
        return None
    with tempfile.TemporaryDirectory(prefix="wikipersona-publish-") as cache:
        try:
            path = api.hf_hub_download(repo_id, "manifest.json", repo_type=REPO_TYPE, revision=tag, cache_dir=cache)
        except EntryNotFoundError:
            raise InputError(
                f"{repo_id}: tag {tag} already exists but has no manifest.json; bump the version and rebuild"
            ) from None
        except Exception as err:
            raise PublishError(
                f"{repo_id}: cannot read manifest.json at {tag} ({_describe(err)}); nothing was uploaded or tagged"
            ) from None
        text = Path(path).read_text(encoding="utf-8")
    try:
        return Manifest.model_validate_json(text)
    except ValueError:
        raise InputError(
            f"{repo_id}: tag {tag} already exists with an unreadable manifest.json; bump the version and rebuild"
        ) from None


def _remote(step: str, consequence: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except WikipersonaError:
        raise
    except Exception as err:  # network down, HTTP errors, offline mode: one line, and what state we left
        raise PublishError(f"publish failed at '{step}': {_describe(err)}; {consequence}") from None


def _describe(err: BaseException) -> str:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(err, HfHubHTTPError) and err.response is not None:
        status = err.response.status_code
        hint = {
            401: "not authenticated: set HF_TOKEN or run `hf auth login`",
            403: "the token may not write to this repo",
            404: "repo not found",
            409: "conflict: it already exists",
        }.get(status, "")
        return f"HTTP {status}" + (f" ({hint})" if hint else "")
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__
