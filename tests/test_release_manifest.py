"""Manifest: refuses local paths and keys, separates deterministic data from run facts; semver helpers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from release_fixtures import RECIPE_TEXT, make_manifest

from wikipersona_data.errors import ConfigError, InputError
from wikipersona_data.release.manifest import Manifest, find_leaks, redact_base_url
from wikipersona_data.release.versions import bump, counts_added, with_entry


@pytest.mark.parametrize(
    "bad_recipe_text",
    [
        'dump = "/home/alice/dumps/enwiki.xml.bz2"\n',
        "dump = '/tmp/x/enwiki.xml.bz2'\n",
        'cache = "~/wiki/cache"\n',
        'dump = "C:\\Users\\alice\\enwiki.xml.bz2"\n',
        'dump = "file:///srv/dumps/enwiki.xml.bz2"\n',
        'api_key = "sk-proj-abcdefghijklmnopqrstuvwx"\n',
        'token = "hf_' + "abcdefghijklmnopqrstuvwxyz012345" + '"\n',  # split: no key-shaped literal in the repo
    ],
)
def test_rejects_absolute_paths_and_keys(bad_recipe_text: str) -> None:
    good = make_manifest()
    payload = good.model_dump()
    payload["data"]["recipe"]["text"] = RECIPE_TEXT + bad_recipe_text
    with pytest.raises(ValidationError, match=r"manifest\.data\.recipe\.text: (absolute path|local file URL|key-)"):
        Manifest.model_validate(payload)


def test_rejects_secret_named_fields_and_never_echoes_the_key() -> None:
    payload = make_manifest().model_dump()
    payload["data"]["ledger"]["api_key"] = "not-obviously-a-key"
    with pytest.raises(ValidationError, match=r"manifest\.data\.ledger\.api_key: a field named like a secret"):
        Manifest.model_validate(payload)
    payload = make_manifest().model_dump()
    payload["run"]["libraries"]["auth"] = "Bearer abcdefghijklmnopqrstuvwxyz"
    with pytest.raises(ValidationError) as info:
        Manifest.model_validate(payload)
    assert "abcdefghijklmnop" not in str(info.value)


def test_accepts_urls_and_relative_paths() -> None:
    assert find_leaks("see https://en.wikipedia.org/w/index.php?oldid=1 and data/pairs/train-*.parquet") == []
    assert find_leaks('base = "http://127.0.0.1:8000/v1" and axis/category, and/or') == []
    payload = make_manifest().model_dump()
    payload["data"]["recipe"]["text"] = 'dump = "demo/enwiki.xml.bz2"\nendpoint = "https://api.openai.com/v1"\n'
    assert Manifest.model_validate(payload).data.recipe.text.startswith("dump")


def test_version_and_repo_id_are_validated() -> None:
    with pytest.raises(ValidationError, match="not semantic"):
        make_manifest("1.0")
    payload = make_manifest().model_dump()
    payload["data"]["repo_id"] = "no-slash"
    with pytest.raises(ValidationError, match="ORG/NAME"):
        Manifest.model_validate(payload)


def test_data_hash_ignores_run_facts() -> None:
    a = make_manifest()
    b = a.model_copy(update={"run": a.run.model_copy(update={"wall_seconds": 99.0, "built_at": "2027-01-01T00:00Z"})})
    assert a.data_sha256() == b.data_sha256()
    assert a.to_json() != b.to_json()
    c = make_manifest(counts={"questions": 53})
    assert c.data_sha256() != a.data_sha256()
    assert a.tag == "v1.0.0"


def test_load_gives_one_line_errors(tmp_path) -> None:
    with pytest.raises(InputError, match=r"manifest\.json is missing"):
        Manifest.load(tmp_path / "manifest.json")
    (tmp_path / "manifest.json").write_text('{"data": {"version": "x"}}')
    with pytest.raises(InputError, match=r"invalid manifest at data\.") as info:
        Manifest.load(tmp_path / "manifest.json")
    assert "\n" not in str(info.value)
    (tmp_path / "manifest.json").write_text(make_manifest().to_json())
    assert Manifest.load(tmp_path / "manifest.json") == make_manifest()


def test_redact_base_url() -> None:
    assert redact_base_url("http://127.0.0.1:41234/v1") == "local"
    assert redact_base_url("http://localhost:8000/v1") == "local"
    assert redact_base_url("https://api.openai.com/v1?key=sk-x") == "https://api.openai.com"


def test_semver_bump_and_changelog() -> None:
    assert bump("1.2.3", "major") == "2.0.0"
    assert bump("1.2.3", "minor") == "1.3.0"
    assert bump("1.2.3", "patch") == "1.2.4"
    with pytest.raises(ConfigError):
        bump("1.2", "minor")
    with pytest.raises(ConfigError):
        bump("1.2.3", "huge")
    assert counts_added({"personas": 6, "pairs_train": 30}, {"personas": 4, "pairs_train": 30}) == {"personas": 2}
    previous = make_manifest("1.0.0").data
    new = make_manifest("1.1.0", counts={"personas": 6}, changelog=[]).data
    new = with_entry(new, summary="Two more personas.", date="2026-11-27", previous=previous)
    assert [e.version for e in new.changelog] == ["1.0.0", "1.1.0"]
    assert new.changelog[-1].counts_added == {"personas": 6}
