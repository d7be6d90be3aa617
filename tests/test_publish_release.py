"""publish: dry-run touches nothing; the real flow calls create_repo -> upload_folder -> create_tag on the upload's
commit; an existing tag is compared by manifest content; failures leave nothing tagged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import httpx2
import pytest
from huggingface_hub import CommitInfo, GitRefInfo, GitRefs
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.utils import filter_repo_objects
from release_fixtures import make_manifest, write_synthetic_release

from wikipersona_data.cli import main
from wikipersona_data.errors import InputError, WikipersonaError
from wikipersona_data.release.manifest import Manifest
from wikipersona_data.release.publish import publish_release, release_files

REPO = "wikipersona/WikiPersona"
OID = "c0ffee" + "0" * 34


def _http_error(status: int, url: str = "https://huggingface.co/api/datasets/x") -> HfHubHTTPError:
    response = httpx2.Response(status, request=httpx2.Request("POST", url))
    return HfHubHTTPError(f"{status} Client Error", response=response)


class FakeHub:
    """An HfApi double that records calls and computes which files upload_folder would send (with the Hub
    library's own pattern filter), with optional published tags and injected failures."""

    def __init__(self, tags: dict[str, str] | None = None, fail: dict[str, Exception] | None = None, repo=True):
        self.tags = tags or {}  # tag -> manifest.json text at that tag
        self.fail = fail or {}
        self.repo_exists = repo
        self.calls: list[tuple[str, tuple, dict]] = []
        self.uploaded: list[str] = []

    def _record(self, name: str, args: tuple, kwargs: dict) -> None:
        self.calls.append((name, args, kwargs))
        if name in self.fail:
            raise self.fail[name]

    def list_repo_refs(self, *args, **kwargs):
        self._record("list_repo_refs", args, kwargs)
        if not self.repo_exists:
            raise RepositoryNotFoundError(
                "no repo", response=httpx2.Response(404, request=httpx2.Request("GET", "https://hf.co"))
            )
        return GitRefs(branches=[], converts=[], tags=[GitRefInfo(t, f"refs/tags/{t}", OID) for t in self.tags])

    def hf_hub_download(self, repo_id, filename, **kwargs):
        self._record("hf_hub_download", (repo_id, filename), kwargs)
        path = Path(kwargs["cache_dir"]) / filename
        path.write_text(self.tags[kwargs["revision"]])
        return str(path)

    def create_repo(self, *args, **kwargs):
        self._record("create_repo", args, kwargs)
        return SimpleNamespace(repo_id=args[0])

    def upload_folder(self, **kwargs):
        self._record("upload_folder", (), kwargs)
        root = Path(kwargs["folder_path"])
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        self.uploaded = list(filter_repo_objects(files, allow_patterns=kwargs["allow_patterns"]))
        return CommitInfo(commit_url=f"https://hf.co/c/{OID}", commit_message="m", commit_description="", oid=OID)

    def create_tag(self, *args, **kwargs):
        self._record("create_tag", args, kwargs)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


class ExplodingHub:
    """Fails the test on any attribute access: dry-run must not touch the Hub."""

    def __getattr__(self, name):
        raise AssertionError(f"dry-run called HfApi.{name}")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return write_synthetic_release(tmp_path_factory.mktemp("pub") / "release")


@pytest.fixture
def release(built: Path, tmp_path: Path) -> Path:
    out = Path(shutil.copytree(built, tmp_path / "release"))
    (out / "notes.txt").write_text("local scratch file that must not be uploaded")
    return out


def test_dry_run_prints_plan_and_calls_nothing(release: Path) -> None:
    lines: list[str] = []
    result = publish_release(release, REPO, api=ExplodingHub(), dry_run=True, echo=lines.append)
    out = "\n".join(lines)
    assert result.status == "dry-run" and result.tag == "v1.0.0"
    assert f"repo:    {REPO}" in out and "tag:     v1.0.0" in out
    manifest = Manifest.load(release / "manifest.json")
    for name, entry in manifest.data.files.items():
        assert f"sha256 {entry.sha256}" in out and name in out
    assert "README.md" in out and "manifest.json" in out and "notes.txt" not in out
    assert "  license: cc-by-sa-4.0" in out and "  - config_name: pairs" in out


def test_dry_run_cli(release: Path, capsys) -> None:
    assert main(["publish", str(release), "--repo-id", REPO, "--dry-run"]) == 0
    assert "dry run: nothing is sent to the Hub" in capsys.readouterr().out


def test_publish_calls_create_repo_upload_and_tags_the_returned_commit(release: Path) -> None:
    hub = FakeHub(repo=False)
    manifest = Manifest.load(release / "manifest.json")
    lines: list[str] = []
    result = publish_release(release, REPO, api=hub, private=True, echo=lines.append)
    assert hub.names() == ["list_repo_refs", "create_repo", "upload_folder", "create_tag"]
    assert hub.calls[1] == ("create_repo", (REPO,), {"repo_type": "dataset", "private": True, "exist_ok": True})
    upload = hub.calls[2][2]
    assert upload["repo_id"] == REPO and upload["repo_type"] == "dataset"
    assert Path(upload["folder_path"]) == release
    assert upload["delete_patterns"] == ["data/**", "charts/**"]
    assert upload["commit_message"] == f"Release v1.0.0 ({manifest.data_sha256()[:12]})"
    expected = sorted(["README.md", "manifest.json", *manifest.data.files])
    assert sorted(hub.uploaded) == expected == [f.path for f in release_files(release)]
    assert hub.calls[3][1] == (REPO,)
    assert hub.calls[3][2]["tag"] == "v1.0.0" and hub.calls[3][2]["revision"] == OID
    assert hub.calls[3][2]["repo_type"] == "dataset"
    assert result.status == "published" and result.commit == OID
    assert any(OID in line for line in lines)


def test_refuses_a_release_that_fails_verify(release: Path) -> None:
    (release / "data/personas/train-00000-of-00001.parquet").write_bytes(b"garbage")
    hub = FakeHub()
    with pytest.raises(InputError, match=r"refusing to publish, verify failed .* first: checksums"):
        publish_release(release, REPO, api=hub)
    assert hub.calls == []


def test_existing_tag_with_same_content_is_a_no_op(release: Path) -> None:
    ours = json.loads((release / "manifest.json").read_text())
    ours["run"]["wall_seconds"] = 123.0  # another build of the same data
    hub = FakeHub(tags={"v1.0.0": json.dumps(ours)})
    lines: list[str] = []
    result = publish_release(release, REPO, api=hub, echo=lines.append)
    assert result.status == "already-published"
    assert hub.names() == ["list_repo_refs", "hf_hub_download"]
    assert hub.calls[1][2]["revision"] == "v1.0.0"
    assert "already published" in lines[0]


def test_existing_tag_with_different_content_is_refused(release: Path) -> None:
    other = make_manifest(counts={"questions": 999}).to_json()
    hub = FakeHub(tags={"v0.9.0": "{}", "v1.0.0": other})
    with pytest.raises(InputError, match=r"tag v1\.0\.0 already exists with different content.*bump the version"):
        publish_release(release, REPO, api=hub)
    assert "upload_folder" not in hub.names() and "create_tag" not in hub.names()


def test_upload_401_gives_one_line_and_no_tag(release: Path, capsys, monkeypatch) -> None:
    hub = FakeHub(fail={"upload_folder": _http_error(401)})
    with pytest.raises(WikipersonaError) as info:
        publish_release(release, REPO, api=hub)
    message = str(info.value)
    assert message == (
        "publish failed at 'upload': HTTP 401 (not authenticated: set HF_TOKEN or run `hf auth login`); "
        "nothing was tagged"
    )
    assert "create_tag" not in hub.names()
    # the same through the CLI: one error line, exit 2
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: FakeHub(fail={"upload_folder": _http_error(401)}))
    monkeypatch.setenv("HF_TOKEN", "rejected-by-the-fake-hub")  # a token is found, the Hub refuses it
    assert main(["publish", str(release), "--repo-id", REPO]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: publish failed at 'upload': HTTP 401") and err.count("\n") == 1


def test_network_down_and_tag_conflict(release: Path) -> None:
    hub = FakeHub(fail={"create_repo": httpx2.ConnectError("[Errno 111] Connection refused")})
    with pytest.raises(WikipersonaError, match=r"at 'create the repo': ConnectError: .*nothing was uploaded or tagged"):
        publish_release(release, REPO, api=hub)
    assert hub.names() == ["list_repo_refs", "create_repo"]
    hub = FakeHub(fail={"create_tag": _http_error(409)})
    with pytest.raises(WikipersonaError, match=r"at 'tag v1\.0\.0': HTTP 409 .*uploaded but not tagged"):
        publish_release(release, REPO, api=hub)


def test_bad_repo_id(release: Path) -> None:
    with pytest.raises(InputError, match="not ORG/NAME"):
        publish_release(release, "just-a-name", api=ExplodingHub(), dry_run=True)
