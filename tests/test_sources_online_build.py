"""A build and an extend with ``[dump] source = "online"``: no dump file, pages from a local Special:Export built
from the demo dump's pages. Same pages, so the release must be byte-identical to the pinned demo release; the
revisions read are recorded in the manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from lifecycle_fixtures import SIM
from test_build_demo import GOLDEN_PARQUET
from test_extend import AXIS, extension_person
from test_wiki_online import demo_export
from wikimedia_server import WikimediaServer

from wikipersona_data.cli import main
from wikipersona_data.demo.paths import DEMO_DUMP, DEMO_RECIPE
from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.release.extend import Addition, extend_release
from wikipersona_data.stages.pipeline import build_recipe
from wikipersona_data.stages.recipe import load_recipe, parse_recipe

FILES = 'path = "package:demo"\nindex = "package:demo"\n'


def online_recipe(folder: Path) -> Path:
    text = DEMO_RECIPE.read_text(encoding="utf-8")
    assert FILES in text
    path = folder / "online.toml"
    path.write_text(text.replace(FILES, 'source = "online"\n'), encoding="utf-8")
    return path


def test_online_build_and_extend_need_no_dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    head, pages = demo_export()
    recipe = online_recipe(tmp_path)
    work = tmp_path / "work"
    with WikimediaServer(export_pages=pages, export_head=head) as wiki, SimServer(SimConfig(**SIM)) as sim:
        monkeypatch.setenv("WIKIPERSONA_WIKI_URL", wiki.url)
        release = build_recipe(
            recipe, work_dir=work, base_url=sim.base_url, progress=False, echo=lambda m: None, report=lambda m: None
        )
        got = {
            str(p.relative_to(release / "data")): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (release / "data").rglob("*.parquet")
        }
        assert got == GOLDEN_PARQUET  # the online pages give the very bytes of the pinned dump build
        asked = [e for e in wiki.log if e.method == "POST"]
        # one batch of the recipe's 8 titles, then one of the redirect targets among them ("Ada Okafor")
        assert [len(e.form["pages"][0].split("\n")) for e in asked] == [8, 1]
        manifest = json.loads((release / "manifest.json").read_text())["data"]
        personas = pq.read_table(next((release / "data" / "personas").glob("*.parquet"))).to_pylist()
        recorded = {p["title"]: p["revision_id"] for p in manifest["online_pages"]}
        assert {p["wiki_title"]: p["wiki_revision_id"] for p in personas}.items() <= recorded.items()
        assert (work / "sources" / "online-pages.jsonl").is_file()

        # a resume reads the stored pages: the wiki is not asked again
        build_recipe(recipe, work_dir=work, base_url=sim.base_url, progress=False, echo=print, report=lambda m: None)
        assert len([e for e in wiki.log if e.method == "POST"]) == 2

        # extend: the release's recipe says online, so the new persona comes from the wiki too
        title, category = extension_person(AXIS)
        out = extend_release(
            release,
            [Addition(title, ((AXIS, category),))],
            out=tmp_path / "release-v0.2.0",
            work=work,
            base_url=sim.base_url,
            progress=False,
            echo=lambda m: None,
        )
        assert [e.form["pages"][0] for e in wiki.log if e.method == "POST"][2:] == [title]

        # the same extension from the dump file (CLI, --source dump): byte-identical data files
        argv = ["extend", str(release), "--persona", title, "--axis", f"{AXIS}:{category}", "--work", str(work)]
        argv += ["--base-url", sim.base_url, "--no-progress", "--out", str(tmp_path / "from-dump")]
        assert main([*argv, "--source", "online", "--dump", str(DEMO_DUMP)]) == 2
        assert capsys.readouterr().err == "error: --source online reads no dump: drop --dump/--index\n"
        assert main([*argv, "--source", "dump", "--dump", str(DEMO_DUMP)]) == 0
        capsys.readouterr()
    assert _data_sha256(tmp_path / "from-dump") == _data_sha256(out)
    data = json.loads((out / "manifest.json").read_text())["data"]
    added = [p for p in data["online_pages"] if p["title"] == title]
    rows = pq.read_table(next((out / "data" / "personas").glob("*.parquet"))).to_pylist()
    assert [p["revision_id"] for p in added] == [r["wiki_revision_id"] for r in rows if r["wiki_title"] == title]
    assert {p["title"] for p in manifest["online_pages"]} < {p["title"] for p in data["online_pages"]}
    assert main(["verify", str(out)]) == 0
    capsys.readouterr()


def _data_sha256(release: Path) -> dict[str, str]:
    return {str(p.relative_to(release)): hashlib.sha256(p.read_bytes()).hexdigest() for p in release.rglob("*.parquet")}


def test_online_recipe_keys(tmp_path: Path) -> None:
    recipe = load_recipe(online_recipe(tmp_path))  # no dump file is looked for
    assert recipe.dump.source == "online" and recipe.dump.path is None
    with pytest.raises(ConfigError, match=r"dump\.path: not set \(dump\.source is 'online'"):
        recipe.dump_paths()
    text = DEMO_RECIPE.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="path and index are required"):
        parse_recipe(text.replace(FILES, ""), tmp_path / "r.toml")
    bad = text.replace(FILES, 'source = "online"\n').replace('name = "enwiki-demo-20261101"', 'name = "demo"')
    with pytest.raises(ConfigError, match="does not start with a Wikipedia database name"):
        parse_recipe(bad, tmp_path / "r.toml")
