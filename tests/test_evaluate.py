"""``wikipersona evaluate`` on the demo release over real HTTP (issue 14, items 1 and 2).

The demo is built once (``lifecycle_fixtures.demo_build``, shared with the audit/extend/regenerate tests) and
never changed: every evaluate run here has its own work dir and output folder.

The oracle policies are simulator servers whose plain-text answers are replaced (``register_responder``, as a
test may) by the pair's chosen or rejected answer, found from the system prefix and the question they are sent:
no evaluate code path knows they are oracles.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lifecycle_fixtures import SIM, demo_build

from wikipersona_data.cli import main
from wikipersona_data.evaluate.stats import Bootstrap, Scored, summarize
from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.llm.sim.responders import ResponderRequest, register_responder, unregister_responder
from wikipersona_data.release.extend import read_rows

MODES = ("none", "name", "description", "inferred", "fewshot")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return demo_build(tmp_path_factory)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["evaluate", *args, "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def full_run(demo: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The simulator as policy (stage respond) and as judge, every prefix mode, one simulator we can count."""
    root = tmp_path_factory.mktemp("evaluate")
    args = [str(demo["release"]), "--policy", "respond", "--work", str(root / "work"), "--out", str(root / "out")]
    with SimServer(SimConfig(**SIM)) as sim:
        args += ["--base-url", sim.base_url, "--bootstrap", "300"]
        first = main(["evaluate", *args, "--no-progress"])
        report = json.loads((root / "out" / "eval.json").read_text(encoding="utf-8"))
        before = sim.stats()["requests"]
        assert before == report["run"]["new_calls"]  # what the ledger calls new is what reached the server
        again = main(["evaluate", *args, "--no-progress"])
        rerun = json.loads((root / "out" / "eval.json").read_text(encoding="utf-8"))
        after = sim.stats()["requests"]
        replay = main(["evaluate", *args, "--cache", "only", "--no-progress"])
        replayed = sim.stats()["requests"]
    return {
        "root": root,
        "codes": (first, again, replay),
        "report": report,
        "rerun": rerun,
        "requests": (before, after, replayed),
    }


def test_end_to_end_writes_table_json_and_charts(
    full_run: dict[str, Any], demo: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert full_run["codes"] == (0, 0, 0)
    report, out = full_run["report"], full_run["root"] / "out"
    pairs, _ = read_rows(demo["release"])
    n = len(pairs["test"])
    assert report["pairs_evaluated"] == n and report["complete"]
    by_mode = report["win_rate"]["by_mode"]
    assert list(by_mode) == list(MODES)
    for mode, s in by_mode.items():
        assert s["pairs"] == n, mode
        for fig in [s["rate"], *s["by_type"].values(), *s["by_axis"].values(), *s["by_fold"].values()]:
            low, high = fig["ci95"]
            assert 0 <= low <= fig["value"] <= high <= 1, (mode, fig)
        assert set(s["by_axis"]) == {p["axis"] for p in pairs["test"] if p["question_type"] == "divergent"}
        assert set(s["by_fold"]) == {str(p["persona_fold"]) for p in pairs["test"]}
        assert set(s["by_persona"]) == {p["persona_id"] for p in pairs["test"]}
        rates = [f["value"] for f in s["by_persona"].values()]
        assert s["equity"]["min"]["value"] == pytest.approx(min(rates), abs=1e-6)
        assert s["equity"]["std"]["value"] == pytest.approx(float(np.std(rates)), abs=1e-6)
        assert s["equity"]["share_below_half"]["value"] == pytest.approx(sum(r < 0.5 for r in rates) / len(rates))
    # the figures are the outcomes': recompute the overall rates from outcomes.jsonl
    rows = [json.loads(line) for line in (out / "outcomes.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == n * len(MODES)
    for mode in MODES:
        scores = [r["score"] for r in rows if r["mode"] == mode]
        assert by_mode[mode]["rate"]["value"] == pytest.approx(sum(scores) / len(scores), abs=1e-6)
        assert all(len(r["votes"]) == 2 for r in rows if r["mode"] == mode)  # both orders
    # the simulated policy reads its system prompt: told who asks, it does better than with nothing
    assert by_mode["description"]["rate"]["value"] > by_mode["none"]["rate"]["value"]
    for chart in ("win_rate_by_prefix_axis.png", "win_rate_per_persona.png"):
        assert (out / "charts" / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the CLI's table: a row per prefix mode with its interval
    code, table, _ = _run(
        [str(demo["release"]), "--policy", "respond", "--work", str(full_run["root"] / "work"), "--out",
         str(full_run["root"] / "out-table"), "--cache", "only", "--bootstrap", "300", "--no-charts"],
        capsys,
    )  # fmt: skip
    assert code == 0
    for mode in MODES:
        line = next(ln for ln in table.splitlines() if ln.startswith(mode + " "))
        low, high = by_mode[mode]["rate"]["ci95"]
        assert f"{by_mode[mode]['rate']['value']:.2f} [{low:.2f},{high:.2f}]" in line
    assert not (full_run["root"] / "out-table" / "charts").exists()


def test_rerun_costs_no_new_calls(full_run: dict[str, Any]) -> None:
    first, rerun = full_run["report"], full_run["rerun"]
    assert first["run"]["new_calls"] > 0
    assert (
        rerun["run"]["new_calls"] == 0
        and rerun["run"]["cache_hits"] == first["run"]["new_calls"] + first["run"]["cache_hits"]
    )
    before, after, replayed = full_run["requests"]
    # the rerun sent the preflight only (the simulator counts it apart): one tiny chat per model, judge and policy
    assert rerun["run"]["preflight_calls"] == 2 and after == before
    assert replayed == after  # --cache only sends nothing, not even the preflight
    assert {k: v for k, v in first.items() if k != "run"} == {k: v for k, v in rerun.items() if k != "run"}


# ------------------------------------------------------------------ oracle policies


@pytest.fixture
def oracle(demo: dict[str, Any]) -> Iterator[str]:
    """A simulator whose plain answers are the pair's chosen (model oracle-chosen) or rejected (oracle-rejected)
    answer, looked up by (system prefix, question). Per test: the override is the process's 'text' responder
    while it lasts, so it must not outlive the test that wants it."""
    pairs, personas = read_rows(demo["release"])
    by_id = {p["persona_id"]: p for p in personas}
    answers: dict[tuple[str, str, str], str] = {}
    for pair in pairs["test"]:
        key = (by_id[pair["persona_id"]]["prefix_name"], pair["prompt"][0]["content"])
        answers[("oracle-chosen", *key)] = pair["chosen"][0]["content"]
        answers[("oracle-rejected", *key)] = pair["rejected"][0]["content"]

    def echo(req: ResponderRequest) -> str:
        return answers.get((req.model, req.system_text, req.user_text), "OK")  # "OK": the preflight's tiny call

    register_responder("text")(echo)
    try:
        with SimServer(SimConfig(seed=0, models=("oracle-chosen", "oracle-rejected"))) as sim:
            yield sim.base_url
    finally:
        unregister_responder("text")


@pytest.mark.parametrize("answer", ["chosen", "rejected"])
def test_oracle_policies(
    answer: str, oracle: str, demo: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(
        [str(demo["release"]), "--policy", oracle, "--policy-model", f"oracle-{answer}", "--policy-profile", "sim",
         "--prefix", "name", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--no-charts"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    rate = json.loads((tmp_path / "out" / "eval.json").read_text())["win_rate"]["by_mode"]["name"]["rate"]
    low, high = rate["ci95"]
    if answer == "chosen":  # the same text on both sides: the judge can only tie (or disagree with itself)
        assert low <= 0.5 <= high and rate["value"] == pytest.approx(0.5, abs=0.05)
    else:  # the judge preferred chosen over the rejected answer when it built the release: it must again
        assert high < 0.35 and rate["value"] < 0.25


# ------------------------------------------------------------------ preference accuracy


@pytest.fixture
def oracle_judge(demo: dict[str, Any]) -> Iterator[str]:
    """A judge that prefers the answer the release chose for the persona its prompt describes (model
    oracle-judge), or the other one (contrarian). Divergent questions share candidates across personas, so the
    pair is found by the question and the persona prefix quoted in the prompt."""
    from wikipersona_data.llm.sim.template_fields import field

    pairs, personas = read_rows(demo["release"])
    by_id = {p["persona_id"]: p for p in personas}
    known = [
        (by_id[p["persona_id"]][f"prefix_{mode}"], p["prompt"][0]["content"], p["chosen"][0]["content"])
        for p in pairs["test"]
        for mode in ("name", "description")
    ]

    def pick(req: ResponderRequest) -> dict[str, str]:
        question = field(req.user_text, "preference", "question")
        (chosen,) = {c for prefix, q, c in known if q == question and prefix in req.user_text}
        a_is_chosen = field(req.user_text, "preference", "answer_a") == chosen
        return {"rationale": "oracle", "preferred": "a" if a_is_chosen == (req.model == "oracle-judge") else "b"}

    register_responder("preference")(pick)
    try:
        with SimServer(SimConfig(seed=0, models=("oracle-judge", "contrarian"))) as sim:
            yield sim.base_url
    finally:
        unregister_responder("preference")


def test_preference_accuracy_maps_orders_back(
    oracle_judge: str, demo: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for model, expected in (("oracle-judge", 1.0), ("contrarian", 0.0)):
        out = tmp_path / model
        code, table, err = _run(
            [str(demo["release"]), "--accuracy-judge", oracle_judge, "--accuracy-model", model,
             "--accuracy-profile", "sim", "--prefix", "name,description", "--limit", "12",
             "--work", str(tmp_path / "work"), "--out", str(out)],
            capsys,
        )  # fmt: skip
        assert code == 0, err
        report = json.loads((out / "eval.json").read_text())
        assert report["win_rate"] is None and report["pairs_evaluated"] == 12
        for mode in ("name", "description"):
            assert report["accuracy"]["by_mode"][mode]["rate"]["value"] == expected
        assert "preference accuracy" in table and (out / "charts" / "accuracy_by_prefix_axis.png").is_file()


def test_release_judge_accuracy_and_reward_model(
    demo: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The release's own judge (simulated) on chosen vs rejected, told who asks by the description, beats being
    told nothing; the simulated reward model reads no prefix, so its accuracy is the same in every mode."""
    code, _, err = _run(
        [str(demo["release"]), "--accuracy", "--accuracy-reward", "sim", "--accuracy-reward-model", "sim-reward",
         "--prefix", "none,description", "--limit", "24", "--work", str(tmp_path / "work"),
         "--out", str(tmp_path / "out"), "--bootstrap", "200"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    acc, reward = report["accuracy"]["by_mode"], report["reward"]["by_mode"]
    assert acc["description"]["rate"]["value"] > acc["none"]["rate"]["value"]
    assert reward["description"]["rate"] == reward["none"]["rate"]


# ------------------------------------------------------------------ errors and statistics


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prefix", "name,bogus", "--policy", "respond"], "--prefix 'bogus': unknown prefix mode"),
        (["--policy", "nowhere"], "--policy 'nowhere': not an http(s) URL, an endpoint or a stage"),
        (["--policy", "http://127.0.0.1:9/v1"], "--policy http://127.0.0.1:9/v1: give the model with --policy-model"),
        ([], "give --policy ENDPOINT_OR_RECIPE_KEY, --accuracy"),
        (["--policy", "respond", "--unseen-folds", "x"], "--unseen-folds 'x'"),
        (["--policy", "respond", "--limit", "0"], "--limit 0: must be at least 1"),
    ],
)
def test_bad_options_are_one_line(
    args: list[str], message: str, demo: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        [str(demo["release"]), "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"), *args], capsys
    )
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_foreign_out_folder_refused(demo: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "notes.txt").write_text("mine")
    code, _, err = _run([str(demo["release"]), "--policy", "respond", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "is not an evaluate output folder" in err


def _scored(scores: dict[str, list[float]]) -> list[Scored]:
    return [Scored(f"{p}-{i}", p, "personal", None, 0, s) for p, values in scores.items() for i, s in enumerate(values)]


def test_equity_by_hand_and_seeded_bootstrap() -> None:
    # persona rates: a 1.0, b 0.5, c 0.25 -> mean of the 8 pairs 0.5625, std of (1, .5, .25) = 0.311805, min .25,
    # share below 0.5: 1/3
    scored = _scored({"a": [1, 1], "b": [1, 0, 0.5, 0.5], "c": [0, 0.5]})
    s = summarize(scored, replicates=500, seed=3)
    assert s["rate"]["value"] == pytest.approx(4.5 / 8)
    assert s["equity"]["std"]["value"] == pytest.approx(0.311805, abs=1e-6)
    assert s["equity"]["min"]["value"] == 0.25
    assert s["equity"]["share_below_half"]["value"] == pytest.approx(1 / 3, abs=1e-6)
    assert s["by_persona"]["a"]["ci95"] == [1.0, 1.0]  # always the same two wins whatever is redrawn
    assert summarize(scored, replicates=500, seed=3) == s
    assert (Bootstrap(scored, 50, 3).weights == Bootstrap(scored, 50, 3).weights).all()
    assert (Bootstrap(scored, 50, 3).weights != Bootstrap(scored, 50, 4).weights).any()
    # every replicate redraws each persona's own number of pairs
    boot = Bootstrap(scored, 50, 0)
    for persona, idx in boot.index.items():
        assert (boot.weights[:, idx].sum(axis=1) == len(idx)).all(), persona


def test_estimate_counts_calls_and_sends_nothing(
    demo: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, table, err = _run(
        [str(demo["release"]), "--policy", "respond", "--accuracy", "--prefix", "none,name", "--estimate",
         "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    n = len(read_rows(demo["release"])[0]["test"])
    calls = {ln.split()[0]: int(ln.split()[2]) for ln in table.splitlines() if ln.startswith("evaluate-")}
    assert calls == {"evaluate-policy": 2 * n, "evaluate-judge": 2 * 2 * n, "evaluate-accuracy": 2 * 2 * n}
    assert not (tmp_path / "w").exists() and not (tmp_path / "o").exists()


def test_budget_stop_keeps_paid_calls_and_resumes(
    demo: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(demo["release"]), "--policy", "respond", "--prefix", "name", "--limit", "24", "--no-charts",
            "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o")]  # fmt: skip
    code, stdout, err = _run([*args, "--max-usd", "0.02"], capsys)
    assert code == 2 and stdout == "" and "spending cap $0.0200 reached" in err
    assert not (tmp_path / "o").exists()  # no figures from a run that did not finish
    assert _run(args, capsys)[0] == 0
    resumed = json.loads((tmp_path / "o" / "eval.json").read_text())["run"]
    assert _run([*args[:-4], "--work", str(tmp_path / "w2"), "--out", str(tmp_path / "o2")], capsys)[0] == 0
    fresh = json.loads((tmp_path / "o2" / "eval.json").read_text())["run"]
    # the calls paid before the cap were replayed, not paid again: together they are one fresh run's calls
    assert resumed["cache_hits"] > 0 and resumed["new_calls"] < fresh["new_calls"]
    assert resumed["new_calls"] + resumed["cache_hits"] == fresh["new_calls"] + fresh["cache_hits"]


def test_answers_cut_at_the_token_limit_are_judged_and_counted(
    demo: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, table, err = _run(
        [str(demo["release"]), "--policy", "respond", "--prefix", "name", "--limit", "6", "--policy-max-tokens", "5",
         "--no-charts", "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    report = json.loads((tmp_path / "o" / "eval.json").read_text())
    assert report["complete"] and report["win_rate"]["failures"]["name"] == {"failed": 0, "first": None, "truncated": 6}
    rows = [json.loads(line) for line in (tmp_path / "o" / "outcomes.jsonl").read_text().splitlines()]
    assert all(r["truncated"] and r["score"] is not None and len(r["answer"].split()) <= 5 for r in rows)
    assert "name: 6 answer(s) cut at --policy-max-tokens, judged as cut" in table


def test_a_rerun_without_charts_leaves_no_stale_chart(
    demo: dict[str, Any], full_run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Charts describe the eval.json beside them: a rerun into the same folder that draws fewer (here none)
    removes the earlier run's, instead of leaving figures of another run next to the new numbers."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(full_run["root"] / "out", out)
    assert sorted((out / "charts").glob("*.png"))  # the full run drew some
    args = [str(demo["release"]), "--policy", "respond", "--prefix", "none", "--work", str(full_run["root"] / "work")]
    code, _, err = _run([*args, "--out", str(out), "--cache", "only", "--no-charts"], capsys)
    assert code == 0, err
    assert json.loads((out / "eval.json").read_text(encoding="utf-8"))["win_rate"]["by_mode"].keys() == {"none"}
    assert not list((out / "charts").glob("*.png"))
