"""Judgment and pair filters (stages "judge", "split", "prefixes").

- cascade: a persona whose description was dropped has no grounded card, so nothing downstream of it
  (judgments, pairs, prefixes) may be released; the stages skip it where they can, this catches the
  rest (divergent questions are judged for every axis member the personas stage produced).
- the judge must have preferred the chosen answer consistently: ``judge_agreement`` (votes in both
  orders, judge.py) at or above ``min_judge_agreement``; the judge stage re-judges below it first.
- chosen and rejected differ in text, not only in id.
- divergent questions are meant to divide an axis: when every member chose the same candidate the
  pairs are flagged ``non_divergent`` (dropped with ``drop_non_divergent``); the rate is reported.
- length balance (``balance_length``): judges favour longer answers; if the share of pairs whose
  chosen answer is longer leaves ``[1 - length_band, length_band]``, a seeded sample of the pairs on the
  heavy side is dropped until it is back inside. Off by default; the statistics are always reported.
"""

from __future__ import annotations

import math
import random
from typing import Any

from wikipersona_data.stages.rows import JudgmentRow, PairRow, PrefixRow
from wikipersona_data.verify.base import Filter, FilterResult
from wikipersona_data.verify.config import FiltersConfig
from wikipersona_data.verify.text import normalise


class CascadeFilter(Filter):
    """Rows of personas that have no kept description (dropped at describe) do not go on."""

    name = "cascade"
    reasons = ("persona_dropped",)

    def check(self, row: JudgmentRow | PairRow | PrefixRow, context: dict[str, Any]) -> FilterResult:
        described = context.get("descriptions")
        if described is not None and row.persona_id not in described:
            return self.drop("persona_dropped", f"{row.persona_id} has no kept description")
        return FilterResult.keep()


class JudgeAgreementFilter(Filter):
    name = "judge_agreement"
    params = ("min_judge_agreement",)
    reasons = ("same_candidate", "low_judge_agreement")
    regenerate_on = frozenset({"low_judge_agreement"})  # another judging sample may agree with itself

    def __init__(self, cfg: FiltersConfig) -> None:
        self.cfg = cfg

    def check(self, row: JudgmentRow, context: dict[str, Any]) -> FilterResult:
        if row.chosen_id == row.rejected_id:
            return self.drop("same_candidate", row.chosen_id)
        if row.judge_agreement < self.cfg.min_judge_agreement:
            biased = row.position_biased_matches
            detail = f"agreement {row.judge_agreement:.3f} < {self.cfg.min_judge_agreement}; {biased} position-biased"
            return self.drop("low_judge_agreement", detail)
        return FilterResult.keep()


class DistinctAnswersFilter(Filter):
    name = "distinct_answers"
    reasons = ("chosen_equals_rejected",)

    def check(self, row: PairRow, context: dict[str, Any]) -> FilterResult:
        if row.chosen_id == row.rejected_id or normalise(row.chosen) == normalise(row.rejected):
            return self.drop("chosen_equals_rejected", f"{row.chosen_id} vs {row.rejected_id}")
        return FilterResult.keep()


def non_divergent_questions(pairs: list[PairRow]) -> set[str]:
    """Divergent question ids whose members (>= 2) all chose the same candidate."""
    chosen: dict[str, set[str]] = {}
    members: dict[str, int] = {}
    for p in pairs:
        if p.question_type == "divergent":
            chosen.setdefault(p.question_id, set()).add(p.chosen_id)
            members[p.question_id] = members.get(p.question_id, 0) + 1
    return {q for q, ids in chosen.items() if members[q] >= 2 and len(ids) == 1}


class DivergenceFilter(Filter):
    name = "divergence"
    params = ("drop_non_divergent",)
    reasons = ("non_divergent",)
    flags = ("non_divergent",)

    def __init__(self, cfg: FiltersConfig) -> None:
        self.cfg = cfg
        self.same: set[str] = set()

    async def prepare(self, rows: list[PairRow], context: dict[str, Any]) -> None:  # type: ignore[override]
        self.same = non_divergent_questions(rows)

    def check(self, row: PairRow, context: dict[str, Any]) -> FilterResult:
        if row.question_id not in self.same:
            return FilterResult.keep()
        if self.cfg.drop_non_divergent:
            return self.drop("non_divergent", f"every {row.axis} member chose {row.chosen_id}")
        return FilterResult.keep(flags=["non_divergent"])


def chosen_longer(p: PairRow) -> bool:
    return len(p.chosen) > len(p.rejected)


def balance_drops(pairs: list[PairRow], band: float, seed: int) -> set[str]:
    """Pair ids to drop so that the chosen-longer share lands in [1 - band, band] (seeded, minimal).

    Nothing is dropped when every pair is on one side: balancing would empty the dataset (the
    statistics in the manifest still show the bias)."""
    total = len(pairs)
    longer = sorted(p.pair_id for p in pairs if chosen_longer(p))
    shorter = sorted(p.pair_id for p in pairs if not chosen_longer(p))
    if not total:
        return set()
    share = len(longer) / total
    if not longer or not shorter:
        return set()  # only one side exists: the band is out of reach short of dropping every pair
    rng = random.Random(f"length-balance/{seed}")
    if share > band:
        n = math.ceil((len(longer) - band * total) / (1 - band) - 1e-9)
        return set(rng.sample(longer, min(n, len(longer))))
    if share < 1 - band:
        n = math.ceil(total - len(longer) / (1 - band) - 1e-9)
        return set(rng.sample(shorter, min(n, len(shorter))))
    return set()


class LengthBalanceFilter(Filter):
    name = "length_balance"
    params = ("length_band", "balance_seed")
    reasons = ("length_balance",)

    def __init__(self, cfg: FiltersConfig) -> None:
        self.cfg = cfg
        self.dropped: set[str] = set()

    async def prepare(self, rows: list[PairRow], context: dict[str, Any]) -> None:  # type: ignore[override]
        self.dropped = balance_drops(rows, self.cfg.length_band, self.cfg.balance_seed)

    def check(self, row: PairRow, context: dict[str, Any]) -> FilterResult:
        if row.pair_id in self.dropped:
            side = "longer" if chosen_longer(row) else "not longer"
            detail = f"chosen {side} than rejected; seed {self.cfg.balance_seed}, band {self.cfg.length_band}"
            return self.drop("length_balance", detail)
        return FilterResult.keep()


class PrefixTrainOnlyFilter(Filter):
    """Data-derived prefixes may only use TRAIN pairs of their own persona (else test answers leak)."""

    name = "prefix_train_only"
    reasons = ("prefix_uses_test_pair",)

    def check(self, row: PrefixRow, context: dict[str, Any]) -> FilterResult:
        pairs = context.get("pairs")
        if pairs is None:
            return FilterResult.keep()
        for pid in [*row.inferred_from, *row.fewshot_from]:
            pair = pairs.get(pid)
            if pair is None or pair.split != "train" or pair.persona_id != row.persona_id:
                return self.drop("prefix_uses_test_pair", f"{pid} is not a train pair of {row.persona_id}")
        return FilterResult.keep()
