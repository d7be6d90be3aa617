"""`wikipersona extend`: the demo release + the diet axis's extension person (axes.toml, role "extension").

Checked at the simulator and in the call cache: only that persona's calls are made, every new prompt is
about that persona (or one of its questions), nothing the release already paid for is asked again.
Checked in the files: every old row unchanged, minor bump, changelog, verify, load_dataset.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from lifecycle_fixtures import ROOT, SIM, demo_build

from wikipersona_data.cli import main
from wikipersona_data.llm.cache import CallCache
from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.release.extend import Addition, extend_release, read_rows
from wikipersona_data.release.verify import verify_release
from wikipersona_data.stages import registry
from wikipersona_data.stages.recipe import load_recipe
from wikipersona_data.stages.rows import DescriptionRow, JudgmentRow, PairRow, QuestionRow
from wikipersona_data.stages.store import read_jsonl

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

AXIS = "diet"


def extension_person(axis: str) -> tuple[str, str]:
    """(title, category) of the axis's 'extension' person in the demo roster."""
    roster = tomllib.loads((ROOT / "wikipersona_data" / "demo" / "axes.toml").read_text(encoding="utf-8"))
    (entry,) = [c for c in roster[axis].values() if c["role"] == "extension"]
    return entry["people"][0], entry["name"]


def cache_records(work: Path) -> dict[str, dict]:
    cache = CallCache(work / "cache", mode="use")
    try:
        keys = cache.keys()
        return {key: cache.peek(key) for key in keys}
    finally:
        cache.close()


def messages_text(record: dict) -> str:
    return "\n".join(m["content"] for m in record["spec"].get("messages", []))


@pytest.fixture(scope="module")
def ext(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = demo_build(tmp_path_factory)
    title, category = extension_person(AXIS)
    out = tmp_path_factory.mktemp("extended") / "release-v0.2.0"
    before = cache_records(base["work"])
    log: list[str] = []
    with SimServer(SimConfig(**SIM)) as sim:
        path = extend_release(
            base["release"],
            [Addition(title, ((AXIS, category),))],
            out=out,
            work=base["work"],
            base_url=sim.base_url,
            progress=False,
            echo=log.append,
        )
        stats = sim.stats()
    after = cache_records(base["work"])
    new_records = {k: r for k, r in after.items() if k not in before}
    ext_dirs = list((base["work"] / "extend").iterdir())
    assert len(ext_dirs) == 1
    return {
        **base,
        "title": title,
        "category": category,
        "out": path,
        "stats": stats,
        "new_records": new_records,
        "log": log,
        "ext_dir": ext_dirs[0],
    }


def test_only_the_new_personas_calls_are_made(ext: dict) -> None:
    stats, new = ext["stats"], ext["new_records"]
    # every request was a call not yet in the cache (nothing paid twice), and every new call was one request
    # (the preflight's GET /models and tiny calls, never cached, are counted apart)
    assert stats["requests"] == len(new) > 0 and stats["preflight_requests"] > 0
    assert set(stats["by_schema"]) <= {
        "describe",
        "questions_personal",
        "respond_categories",
        "respond",
        "judge",
        "prefixes_infer",
    }
    assert "questions_divergent" not in stats["by_schema"]  # the axis's divergent questions are reused
    by_schema = Counter(r["spec"]["schema"]["name"] for r in new.values() if r["spec"]["api"] == "chat")
    assert dict(by_schema) == stats["by_schema"]

    work, ext_dir = ext["work"], ext["ext_dir"]
    old_claims = {c.text for d in read_jsonl(work / "describe" / "rows.jsonl", DescriptionRow) for c in d.claims}
    description = read_jsonl(ext_dir / "describe" / "rows.jsonl", DescriptionRow)[0]
    personal = {q.text for q in read_jsonl(ext_dir / "questions" / "rows.jsonl", QuestionRow)}
    judged = read_jsonl(ext_dir / "judge" / "rows.jsonl", JudgmentRow)
    train = [p.chosen for p in read_jsonl(ext_dir / "split" / "rows.jsonl", PairRow) if p.split == "train"]
    name = ext["title"]
    assert description.persona_id == "mariana-teixeira-lopes" and len(personal) == 12
    claims = [c.text for c in description.claims]
    assert not set(claims) & old_claims
    # each new prompt carries the new persona's marker: its article, its name, one of its questions, its claims
    # (other personas' names may appear in its article's sentences, so names alone are no marker)
    markers = {
        "describe": lambda text: f"Article: {name}" in text,
        "questions_personal": lambda text: f"Now the person: {name}." in text,
        "respond_categories": lambda text: any(q in text for q in personal),  # persona-blind
        "respond": lambda text: any(q in text for q in personal),
        "judge": lambda text: any(c in text for c in claims) and not any(c in text for c in old_claims),
        "prefixes_infer": lambda text: any(c in text for c in train),
    }
    for record in new.values():
        if record["spec"]["api"] == "chat":
            schema = record["spec"]["schema"]["name"]
            assert markers[schema](messages_text(record)), f"a {schema} prompt is not about the new persona"
    # judged on its own personal questions and on every released divergent question of the axis
    divergent_released = {
        r["question_id"] for rows in read_rows(ext["release"])[0].values() for r in rows if r["axis"] == AXIS
    }
    assert {j.question_id for j in judged if j.question_type == "divergent"} == divergent_released
    assert all(j.persona_id == description.persona_id for j in judged)
    assert by_schema["judge"] == sum(len(m.votes) for j in judged for m in j.matches)


def test_old_rows_are_unchanged(ext: dict) -> None:
    old_pairs, old_personas = read_rows(ext["release"])
    new_pairs, new_personas = read_rows(ext["out"])
    for split in ("train", "test"):
        after = {r["pair_id"]: r for r in new_pairs[split]}
        assert all(after[r["pair_id"]] == r for r in old_pairs[split])  # every column of every old row
        added = [r for pid, r in after.items() if pid not in {o["pair_id"] for o in old_pairs[split]}]
        assert added and {r["persona_id"] for r in added} == {"mariana-teixeira-lopes"}
    by_id = {p["persona_id"]: p for p in new_personas}
    assert all(by_id[p["persona_id"]] == p for p in old_personas)
    assert set(by_id) - {p["persona_id"] for p in old_personas} == {"mariana-teixeira-lopes"}


def test_new_persona_keeps_the_axis_split_and_gets_a_free_fold(ext: dict) -> None:
    old_pairs, old_personas = read_rows(ext["release"])
    new_pairs, new_personas = read_rows(ext["out"])
    side = {r["question_id"]: s for s, rows in old_pairs.items() for r in rows if r["question_type"] == "divergent"}
    added = [(s, r) for s, rows in new_pairs.items() for r in rows if r["persona_id"] == "mariana-teixeira-lopes"]
    divergent = [(s, r) for s, r in added if r["question_type"] == "divergent"]
    assert divergent and all(side[r["question_id"]] == s for s, r in divergent)  # a test question stays test
    assert all(r["category"] == ext["category"] and r["axis"] == AXIS for _, r in divergent)
    personal = Counter(s for s, r in added if r["question_type"] == "personal")
    assert personal == {"train": 6, "test": 6}
    # chosen/rejected come from the same kept candidates the other diet members were judged on
    members = {r["chosen_id"] for rows in old_pairs.values() for r in rows if r["axis"] == AXIS}
    members |= {r["rejected_id"] for rows in old_pairs.values() for r in rows if r["axis"] == AXIS}
    pair_rows = read_jsonl(ext["ext_dir"] / "split" / "rows.jsonl", PairRow)
    assert any(p.chosen_id in members for p in pair_rows if p.question_type == "divergent")
    new = next(p for p in new_personas if p["persona_id"] == "mariana-teixeira-lopes")
    diet_folds = {p["persona_fold"] for p in old_personas if p["axes"][0]["axis"] == AXIS}
    assert new["persona_fold"] not in diet_folds and 0 <= new["persona_fold"] < 4
    assert {r["persona_fold"] for _, r in added} == {new["persona_fold"]}
    assert new["prefix_inferred"] and new["claims"]


def test_minor_bump_changelog_and_manifest(ext: dict) -> None:
    old = json.loads((ext["release"] / "manifest.json").read_text())["data"]
    data = json.loads((ext["out"] / "manifest.json").read_text())["data"]
    assert (old["version"], data["version"]) == ("0.1.0", "0.2.0")
    assert [e["version"] for e in data["changelog"]] == ["0.1.0", "0.2.0"]
    assert data["changelog"][0] == old["changelog"][0]
    entry = data["changelog"][1]
    assert entry["personas"] == ["Mariana Teixeira Lopes"]
    assert entry["counts_added"]["personas"] == 1
    assert entry["counts_added"]["pairs_train"] + entry["counts_added"]["pairs_test"] == 12 + 12
    assert entry["models"]["judge"] == "sim-large" and entry["models"]["respond"] == "sim-small"
    assert data["extensions"] == [
        {
            "version": "0.2.0",
            "base_version": "0.1.0",
            "personas": [
                {"title": ext["title"], "persona_id": "mariana-teixeira-lopes", "axes": [f"{AXIS}:{ext['category']}"]}
            ],
        }
    ]
    assert data["recipe"] == old["recipe"] and data["stage_fingerprints"] == old["stage_fingerprints"]
    assert data["ledger"]["totals"]["calls"] > old["ledger"]["totals"]["calls"]
    assert data["counts"]["personas"] == old["counts"]["personas"] + 1
    card = (ext["out"] / "README.md").read_text()
    changelog = card.split("## Changelog", 1)[1]
    assert "**v0.2.0**" in changelog and "**v0.1.0**" in changelog
    assert "personas added: Mariana Teixeira Lopes" in changelog
    assert 'revision="v0.2.0"' in card


def test_extended_ledger_is_one_sum_over_every_rows_cited_calls(ext: dict) -> None:
    """The ledger behind an extended release is summed again from the call cache over the build's rows and the
    extension's (issue 12 item 2: one usage sum for build and extend), not the old ledger plus a new one."""
    from wikipersona_data.stages.pipeline import price_table
    from wikipersona_data.stages.rows import RejectRow
    from wikipersona_data.stages.usage import data_ledger, keys_of

    recipe = load_recipe(ROOT / "builders" / "demo.toml")
    keys: dict[str, set[str]] = {}
    seen: set[str] = set()
    for stage in registry.active(recipe):
        rows = [
            row
            for work in (ext["work"], ext["ext_dir"])
            for row in [
                *read_jsonl(work / stage.name / "rows.jsonl", stage.row),
                *read_jsonl(work / stage.name / "rejects.jsonl", RejectRow),
            ]
        ]
        keys[stage.name] = keys_of(rows) - seen
        seen |= keys[stage.name]
    cache = CallCache(ext["work"] / "cache", mode="use")
    try:
        want = data_ledger(cache, price_table(recipe), keys)
    finally:
        cache.close()
    got = json.loads((ext["out"] / "manifest.json").read_text())["data"]["ledger"]
    old = json.loads((ext["release"] / "manifest.json").read_text())["data"]["ledger"]
    assert {k: got[k] for k in want} == want
    assert got["build"] == old["build"]  # the build's own figures stay the release's
    assert sum(m["calls"] for m in got["by_mode"]) == got["totals"]["calls"] > old["totals"]["calls"]


def test_extending_an_extension_needs_the_earlier_extensions_rows(
    ext: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    title, category = extension_person("religion")
    argv = ["extend", str(ext["out"]), "--persona", title, "--axis", f"religion:{category}"]
    code = main([*argv, "--out", str(tmp_path / "never"), "--work", str(tmp_path / "work"), "--cache", "only"])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the note on the recipe
    assert code == 2 and err.startswith("error: "), err
    # the folder named is the one the first extend made (its name is rebuilt from the manifest's extensions)
    assert f"{tmp_path / 'work' / 'extend' / ext['ext_dir'].name}: missing (the rows of an earlier" in err, err
    assert not (tmp_path / "never").exists()


def test_extended_release_verifies_and_loads(ext: dict, tmp_path: Path) -> None:
    from datasets import load_dataset

    report = verify_release(ext["out"])
    assert report.ok, report.lines()
    personas = load_dataset(str(ext["out"]), "personas", cache_dir=str(tmp_path))
    pairs = load_dataset(str(ext["out"]), "pairs", cache_dir=str(tmp_path))
    assert "Mariana Teixeira Lopes" in personas["train"]["name"]
    assert personas["train"].num_rows == 9
    assert pairs["train"].num_rows + pairs["test"].num_rows == 192 + 24


def test_extend_again_via_the_cli_sends_nothing_and_gives_the_same_bytes(
    ext: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "again"
    with SimServer(SimConfig(**SIM)) as sim:
        argv = ["extend", str(ext["release"]), "--persona", ext["title"], "--axis", f"{AXIS}:{ext['category']}"]
        argv += ["--out", str(out), "--work", str(ext["work"]), "--base-url", sim.base_url, "--cache", "only"]
        assert main([*argv, "--no-progress"]) == 0
        assert sim.stats()["requests"] == 0
    assert "release OK" in capsys.readouterr().out
    files = lambda root: {p.relative_to(root): p.read_bytes() for p in (root / "data").rglob("*.parquet")}  # noqa: E731
    assert files(out) == files(ext["out"])
    same = lambda root: json.loads((root / "manifest.json").read_text())["data"]  # noqa: E731
    assert same(out) == same(ext["out"])
    assert pq.read_table(next((out / "data" / "personas").glob("*.parquet"))).num_rows == 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--persona", "Mariana Lopes", "--axis", "diet:pescatarian"], "did you mean: 'Mariana Teixeira Lopes'"),
        (["--persona", "Blue Kettle Foods", "--axis", "diet:pescatarian"], "is not about a person"),
        (["--persona", "Edmund Faraway", "--axis", "diet:pescatarian"], "is not a living person"),
        (["--persona", "Ada Okafor", "--axis", "diet:pescatarian"], "already a persona"),  # a redirect
        (
            ["--persona", "Kirsty Maddock", "--axis", "sport:ultramarathon running"],
            "axis 'sport' is not in the release",
        ),
        (["--persona", "Mariana Teixeira Lopes", "--axis", "diet:paleo"], "category 'paleo' is not in axis 'diet'"),
        (["--persona", "Mariana Teixeira Lopes", "--axis", "diet"], "expected AXIS:CATEGORY"),
        (["--axis", "diet:pescatarian", "--persona", "Mariana Teixeira Lopes"], "comes before any --persona"),
        (
            ["--persona", "Mariana Teixeira Lopes", "--persona", "Wade Brunner", "--axis", "politics:libertarian"],
            "needs at least one --axis",
        ),
    ],
)
def test_bad_additions_are_one_line_and_write_nothing(
    ext: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "never"
    code = main(["extend", str(ext["release"]), *args, "--out", str(out), "--work", str(tmp_path / "work")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err and message in err, err
    assert not out.exists() and not (tmp_path / "work").exists()


def test_out_equal_to_the_release_is_refused(ext: dict, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.stat().st_mtime_ns for p in ext["release"].rglob("*")}
    argv = ["extend", str(ext["release"]), "--persona", ext["title"], "--axis", f"{AXIS}:{ext['category']}"]
    code = main([*argv, "--out", str(ext["release"])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: --out") and "\n" not in err
    assert {p: p.stat().st_mtime_ns for p in ext["release"].rglob("*")} == before


def test_a_work_dir_that_does_not_reproduce_the_release_is_refused(
    ext: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A release whose rows the work dir does not give back (here: one chosen answer edited, checksums
    re-made so it still verifies) must not be extended from that work dir: it would mix two datasets."""
    from wikipersona_data.release.manifest import Manifest
    from wikipersona_data.release.writer import write_release

    pairs, personas = read_rows(ext["release"])
    edited = dict(pairs["train"][0], chosen=[{"role": "assistant", "content": "An answer nobody generated."}])
    pairs["train"][0] = edited
    manifest = Manifest.load(ext["release"] / "manifest.json")
    other = write_release(tmp_path / "other", pairs=pairs, personas=personas, manifest=manifest)
    assert verify_release(other).ok
    argv = ["extend", str(other), "--persona", ext["title"], "--axis", f"{AXIS}:{ext['category']}"]
    code = main([*argv, "--out", str(tmp_path / "never"), "--work", str(ext["work"]), "--cache", "only"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "does not hold the stages of this release" in err and edited["pair_id"] in err, err
    assert not (tmp_path / "never").exists()


def test_default_work_dir_is_beside_the_release_and_named(
    ext: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run from another folder without --work: the work dir is work/<recipe> beside the release, said on stderr,
    and nothing is created in the current folder."""
    home = tmp_path / "datasets"
    release = Path(shutil.copytree(ext["release"], home / "demo-release"))
    shutil.copytree(ext["work"], home / "work" / "demo", ignore=shutil.ignore_patterns("extend"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with SimServer(SimConfig(**SIM)) as sim:
        argv = ["extend", str(release), "--persona", ext["title"], "--axis", f"{AXIS}:{ext['category']}"]
        assert main([*argv, "--base-url", sim.base_url, "--cache", "only"]) == 0
    out, err = capsys.readouterr()
    assert f"work dir: {home.resolve() / 'work' / 'demo'} (beside the release; --work to choose another)" in err
    assert "release OK" in out and "written to" in out
    assert list(elsewhere.iterdir()) == []
    assert (home / "demo-release-v0.2.0" / "manifest.json").is_file()


def test_extend_in_batch_mode_gives_the_online_extension_at_the_batch_price(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The same extension, once online and once with the recipe's endpoint in batch mode (rounds of the
    simulator's batch API), from two copies of the release and its work dir: the same data files; the batch
    one paid through batches only, at half the price. The technology axis's extension person: no other test
    extends the shared build with it, so its calls are not in the copied cache."""
    base = demo_build(tmp_path_factory)
    title, category = extension_person("technology")
    recipe_text = (ROOT / "builders" / "demo.toml").read_text(encoding="utf-8")
    anchor = "max_concurrency = 16\n"
    assert anchor in recipe_text
    results = {}
    for mode in ("online", "batch"):
        root = tmp_path_factory.mktemp(f"extend-{mode}")
        shutil.copytree(base["work"], root / "work")
        shutil.copytree(base["release"], root / "release-v0.1.0")
        recipe = root / "recipe.toml"
        recipe.write_text(recipe_text.replace(anchor, f'{anchor}mode = "{mode}"\nbatch_poll_s = 0.02\n'), "utf-8")
        with SimServer(SimConfig(**SIM)) as sim:
            out = extend_release(
                root / "release-v0.1.0",
                [Addition(title, (("technology", category),))],
                out=root / "release-v0.2.0",
                work=root / "work",
                base_url=sim.base_url,
                recipe_path=recipe,
                progress=False,
                echo=lambda _msg: None,
            )
            stats = sim.stats()
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        data = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}
        results[mode] = (stats, manifest, data)
    (online_stats, online_manifest, online_data), (batch_stats, batch_manifest, batch_data) = results.values()
    assert online_stats["requests"] > 0  # the extension made new calls (none were cached already)
    assert batch_data == online_data and len(batch_data) == 3
    assert online_stats.get("batches_created", 0) == 0 and batch_stats["batches_created"] > 0
    assert set(batch_stats["requests_by_route"]) <= {
        "/v1/files", "/v1/files/{file_id}/content", "/v1/batches", "/v1/batches/{batch_id}", "/v1/models",
        "/v1/chat/completions", "/v1/embeddings",  # the preflight's tiny online calls
    }  # fmt: skip
    assert batch_stats["requests_by_route"].get("/v1/chat/completions", 0) <= 2
    online_modes = {m["mode"]: m for m in online_manifest["data"]["ledger"]["by_mode"]}
    batch_modes = {m["mode"]: m for m in batch_manifest["data"]["ledger"]["by_mode"]}
    assert set(online_modes) == {"online"} and set(batch_modes) == {"online", "batch"}
    added = online_modes["online"]["calls"] - batch_modes["online"]["calls"]  # the release's own calls are online
    assert batch_modes["batch"]["calls"] == added > 0
    online_cost = online_modes["online"]["cost_usd"] - batch_modes["online"]["cost_usd"]
    assert 0.4 * online_cost < batch_modes["batch"]["cost_usd"] < 0.6 * online_cost  # half, up to cache hits
