"""Judgment, pair and prefix filters on crafted rows, and the length-bias statistics."""

from __future__ import annotations

import pytest
from filters_fixtures import judgment, pair, prefix, run_check

from wikipersona_data.verify.config import FiltersConfig
from wikipersona_data.verify.pairs import (
    CascadeFilter,
    DistinctAnswersFilter,
    DivergenceFilter,
    JudgeAgreementFilter,
    LengthBalanceFilter,
    PrefixTrainOnlyFilter,
    balance_drops,
)
from wikipersona_data.verify.report import divergence_stats, length_bias

CFG = FiltersConfig()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (judgment(pid="gone"), "persona_dropped"),
        (pair(pid="gone"), "persona_dropped"),
        (prefix(pid="gone"), "persona_dropped"),
        (judgment(), None),
        (pair(), None),
        (prefix(), None),
    ],
)
def test_cascade(row: object, reason: str | None) -> None:
    result = run_check(CascadeFilter(), row, {"descriptions": {"ada-okafor": object()}})
    assert (result.kept, result.reason) == (reason is None, reason or "")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (judgment(agreement=0.5), "low_judge_agreement"),
        (judgment(chosen="a", rejected="a"), "same_candidate"),
        (judgment(agreement=0.7), "low_judge_agreement"),
        (judgment(agreement=0.75), None),  # at the threshold: kept
        (judgment(agreement=1.0), None),
    ],
)
def test_judge_agreement(row: object, reason: str | None) -> None:
    result = run_check(JudgeAgreementFilter(CFG), row)
    assert (result.kept, result.reason) == (reason is None, reason or "")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (pair(chosen="Eat beans.", rejected="eat  beans"), "chosen_equals_rejected"),  # same text, other ids
        (pair(chosen_id="x", rejected_id="x"), "chosen_equals_rejected"),
        (pair(), None),
    ],
)
def test_distinct_answers(row: object, reason: str | None) -> None:
    result = run_check(DistinctAnswersFilter(), row)
    assert (result.kept, result.reason) == (reason is None, reason or "")


def divergent_pairs() -> list:
    return [
        # q1: both members chose candidate "a" -> not divergent
        pair(pid="p1", qid="q1", kind="divergent", axis="diet", chosen_id="a", rejected_id="b"),
        pair(pid="p2", qid="q1", kind="divergent", axis="diet", chosen_id="a", rejected_id="c"),
        # q2: they disagree -> divergent
        pair(pid="p1", qid="q2", kind="divergent", axis="diet", chosen_id="d", rejected_id="e"),
        pair(pid="p2", qid="q2", kind="divergent", axis="diet", chosen_id="e", rejected_id="d"),
        # q3: one member only -> cannot tell, kept
        pair(pid="p1", qid="q3", kind="divergent", axis="diet", chosen_id="f", rejected_id="g"),
    ]


@pytest.mark.parametrize("drop", [False, True])
def test_divergence_flags_or_drops(drop: bool) -> None:
    rows = divergent_pairs()
    f = DivergenceFilter(FiltersConfig(drop_non_divergent=drop))
    results = {r.pair_id: run_check(f, r, {}, rows) for r in rows}
    same = {pid for pid, r in results.items() if "-q1" in pid}
    for pid, r in results.items():
        if pid in same:
            assert r.kept is not drop
            assert (r.reason, r.flags) == (("non_divergent", ()) if drop else ("", ("non_divergent",)))
        else:
            assert r.kept and not r.flags


def test_divergence_rate_per_axis() -> None:
    stats = divergence_stats(divergent_pairs())
    assert stats == {"diet": {"questions": 2, "non_divergent": 1, "divergence_rate": 0.5}}


def biased_pairs(n_longer: int, n_shorter: int) -> list:
    long, short = "x" * 40, "x" * 10
    rows = [pair(qid=f"l{i}", chosen=long, rejected=short, pair_id=f"l{i}") for i in range(n_longer)]
    rows += [pair(qid=f"s{i}", chosen=short, rejected=long, pair_id=f"s{i}") for i in range(n_shorter)]
    return rows


def test_length_bias_statistics() -> None:
    stats = length_bias(biased_pairs(3, 1))
    assert stats["pairs"] == 4
    assert stats["chosen_longer_share"] == 0.75
    assert stats["mean_chars_chosen"] == 32.5 and stats["mean_chars_rejected"] == 17.5
    assert 0 < stats["point_biserial"] <= 1
    assert length_bias(biased_pairs(2, 2))["point_biserial"] == 0.0
    assert length_bias(biased_pairs(0, 3))["point_biserial"] < 0


@pytest.mark.parametrize(("n_longer", "n_shorter"), [(16, 4), (3, 17), (6, 4), (20, 0)])
def test_balance_brings_share_into_band(n_longer: int, n_shorter: int) -> None:
    rows = biased_pairs(n_longer, n_shorter)
    band = 0.6
    drops = balance_drops(rows, band, seed=7)
    kept = [r for r in rows if r.pair_id not in drops]
    if n_longer and n_shorter:
        share = length_bias(kept)["chosen_longer_share"]
        assert 1 - band - 1e-9 <= share <= band + 1e-9
    else:
        assert drops == set()  # one-sided: balancing would drop everything, so it does not
    if 1 - band <= n_longer / (n_longer + n_shorter) <= band:
        assert drops == set()
    assert balance_drops(rows, band, seed=7) == drops  # seeded
    assert len(drops) <= max(n_longer, n_shorter)


def test_balance_minimal_and_seed_dependent() -> None:
    rows = biased_pairs(16, 4)
    a, b = balance_drops(rows, 0.6, seed=1), balance_drops(rows, 0.6, seed=2)
    assert len(a) == len(b) == 10  # (16 - 0.6 * 20) / 0.4: the fewest drops that reach the band
    assert a != b and all(p.startswith("l") for p in a | b)


def test_length_balance_filter_only_when_on() -> None:
    rows = biased_pairs(16, 4)
    f = LengthBalanceFilter(FiltersConfig(balance_length=True, balance_seed=3))
    results = [run_check(f, r, {}, rows) for r in rows]
    assert sum(not r.kept for r in results) == 10
    assert {r.reason for r in results if not r.kept} == {"length_balance"}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (prefix(inferred_from=("p-ada-okafor-q2",)), "prefix_uses_test_pair"),  # a test pair
        (prefix(fewshot_from=("p-other-q1",)), "prefix_uses_test_pair"),  # another persona's pair
        (prefix(inferred_from=("p-ada-okafor-q1",), fewshot_from=("p-ada-okafor-q1",)), None),
    ],
)
def test_prefix_train_only(row: object, reason: str | None) -> None:
    pairs = {
        "p-ada-okafor-q1": pair(qid="q1"),
        "p-ada-okafor-q2": pair(qid="q2", split="test"),
        "p-other-q1": pair(pid="other", qid="q1"),
    }
    result = run_check(PrefixTrainOnlyFilter(), row, {"pairs": pairs})
    assert (result.kept, result.reason) == (reason is None, reason or "")
