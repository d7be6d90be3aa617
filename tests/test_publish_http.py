"""publish through the real huggingface_hub client against an HTTP-level fake Hub (httpx2 MockTransport).

The HfApi double in test_publish_release.py pins down our calls; this pins down that the real library turns them
into the commit we mean: exactly the release's files, stale shards deleted, the tag on the returned commit, and a
401 leaving nothing tagged. No network: every request goes to the in-process handler.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx2
import huggingface_hub.constants
import pytest
from huggingface_hub import HfApi
from huggingface_hub.utils import _http as hub_http
from release_fixtures import write_synthetic_release

from wikipersona_data.errors import WikipersonaError
from wikipersona_data.release.manifest import Manifest
from wikipersona_data.release.publish import publish_release

REPO = "wikipersona/WikiPersona"
OID = "b" * 40
TOKEN = "hf_" + "T" * 34  # a fake token: must never be echoed


class FakeHubServer:
    def __init__(self, commit_status: int = 200, remote_files: list[str] | None = None) -> None:
        self.commit_status = commit_status
        self.remote_files = remote_files or []
        self.requests: list[tuple[str, str]] = []
        self.commit_lines: list[dict] = []
        self.created: dict | None = None
        self.tagged: tuple[str, dict] | None = None
        self.auth: set[str] = set()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        self.requests.append((request.method, path))
        if "authorization" in request.headers:
            self.auth.add(request.headers["authorization"])
        if path == f"/api/datasets/{REPO}/refs":
            return httpx2.Response(200, json={"branches": [], "converts": [], "tags": []})
        if path == "/api/repos/create":
            self.created = json.loads(request.content)
            return httpx2.Response(200, json={"url": f"https://huggingface.co/datasets/{REPO}"})
        if path.startswith(f"/api/datasets/{REPO}/tree/"):
            return httpx2.Response(
                200, json=[{"type": "file", "path": p, "oid": "0", "size": 1} for p in self.remote_files]
            )
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={})
        if path == f"/api/datasets/{REPO}/preupload/main":
            files = json.loads(request.content)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith((".parquet", ".png")) else "regular"}
                for f in files
            ]
            return httpx2.Response(200, json={"files": [{**m, "shouldIgnore": False} for m in modes]})
        if path == f"/datasets/{REPO}.git/info/lfs/objects/batch":
            objects = json.loads(request.content)["objects"]  # no "actions": the Hub already has the blobs
            return httpx2.Response(200, json={"objects": [{"oid": o["oid"], "size": o["size"]} for o in objects]})
        if path == f"/api/datasets/{REPO}/commit/main":
            self.commit_lines = [json.loads(line) for line in request.content.decode().splitlines()]
            if self.commit_status != 200:
                return httpx2.Response(self.commit_status, json={"error": "Invalid credentials"})
            return httpx2.Response(200, json={"commitUrl": f"https://huggingface.co/c/{OID}", "commitOid": OID})
        if path.startswith(f"/api/datasets/{REPO}/tag/"):
            self.tagged = (path.rsplit("/", 1)[-1], json.loads(request.content))
            return httpx2.Response(200, json={})
        return httpx2.Response(404, json={"error": f"no route {path}"})

    def committed(self, key: str) -> list[str]:
        return sorted(line["value"]["path"] for line in self.commit_lines if line["key"] == key)


@pytest.fixture
def fake_hub(monkeypatch) -> callable:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    installed = []

    def install(server: FakeHubServer) -> HfApi:
        hub_http.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(server)))
        installed.append(server)
        return HfApi(token=TOKEN)

    yield install
    hub_http.set_client_factory(hub_http.default_client_factory)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return write_synthetic_release(tmp_path_factory.mktemp("http") / "release")


@pytest.fixture
def release(built: Path, tmp_path: Path) -> Path:
    out = Path(shutil.copytree(built, tmp_path / "release"))
    (out / "scratch.log").write_text("not part of the release")
    return out


def test_real_client_commits_exactly_the_release_and_tags_it(release: Path, fake_hub) -> None:
    server = FakeHubServer(remote_files=["data/pairs/train-00000-of-00002.parquet", "notes/keep.txt", "README.md"])
    lines: list[str] = []
    result = publish_release(release, REPO, api=fake_hub(server), private=True, echo=lines.append)
    manifest = Manifest.load(release / "manifest.json")

    assert server.created == {
        "name": "WikiPersona",
        "organization": "wikipersona",
        "type": "dataset",
        "visibility": "private",
    }
    header = next(line["value"] for line in server.commit_lines if line["key"] == "header")
    assert header["summary"] == f"Release v1.0.0 ({manifest.data_sha256()[:12]})"
    assert server.committed("lfsFile") == sorted(manifest.data.files)  # parquet + png as LFS
    assert server.committed("file") == ["README.md", "manifest.json"]
    assert server.committed("deletedFile") == ["data/pairs/train-00000-of-00002.parquet"]  # stale shard only
    assert server.tagged == (OID, {"tag": "v1.0.0", "message": header["summary"]})
    assert result.commit == OID and result.status == "published"
    assert server.auth == {f"Bearer {TOKEN}"}
    assert all(TOKEN not in line for line in lines)


def test_real_client_401_on_commit_is_one_line_and_nothing_is_tagged(release: Path, fake_hub) -> None:
    server = FakeHubServer(commit_status=401)
    with pytest.raises(WikipersonaError) as info:
        publish_release(release, REPO, api=fake_hub(server))
    assert str(info.value).startswith("publish failed at 'upload': HTTP 401 (not authenticated")
    assert str(info.value).endswith("nothing was tagged")
    assert TOKEN not in str(info.value)
    assert server.tagged is None
    assert not any("/tag/" in path for _, path in server.requests)
