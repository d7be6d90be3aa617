"""Rates per group, equity across personas, and one seeded bootstrap 95 % interval for each figure.

A *score* is one test pair's outcome: 1 (the policy's answer won, or the judge preferred chosen), 0.5 (tie,
or the two orders disagreed) or 0. A rate is the mean score of a group of pairs.

The bootstrap: a replicate redraws, for every persona, as many of its pairs as it has, with replacement,
and every figure is recomputed from that replicate. The personas stay fixed (the figures are about these
personas; redrawing personas too would make "the share of personas below 0.5" a different population per
replicate) and each persona keeps its number of pairs, so per-persona rates always exist. The interval is
the 2.5th and 97.5th percentile of the replicates; the same ``seed`` gives the same intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PERSONAL = "personal"


@dataclass(frozen=True)
class Scored:
    """One test pair's outcome and the facts it is grouped by."""

    pair_id: str
    persona_id: str
    question_type: str
    axis: str | None
    fold: int | None
    score: float


def _r(value: float) -> float:
    return round(float(value), 6)


class Bootstrap:
    """Replicate weights (how often each pair is drawn in each replicate), stratified by persona."""

    def __init__(self, scored: list[Scored], replicates: int, seed: int) -> None:
        if replicates < 1:
            raise ValueError("replicates must be at least 1")
        self.scored = scored
        self.scores = np.array([s.score for s in scored], dtype=float)
        self.personas = sorted({s.persona_id for s in scored})
        self.index = {p: np.array([i for i, s in enumerate(scored) if s.persona_id == p]) for p in self.personas}
        rng = np.random.default_rng(seed)
        weights = np.zeros((replicates, len(scored)), dtype=float)
        for persona in self.personas:  # sorted: the draws do not depend on the input order of personas
            idx = self.index[persona]
            m = len(idx)
            draws = rng.integers(0, m, size=(replicates, m)) + np.arange(replicates)[:, None] * m
            weights[:, idx] = np.bincount(draws.ravel(), minlength=replicates * m).reshape(replicates, m)
        self.weights = weights

    def rate(self, mask: np.ndarray) -> dict[str, Any] | None:
        """Mean score of the pairs in ``mask`` with its interval; None for an empty group."""
        if not mask.any():
            return None
        scores = self.scores[mask]
        w = self.weights[:, mask]
        drawn = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps = (w @ scores) / drawn
        reps = reps[drawn > 0]
        return _figure(scores.mean(), reps, int(mask.sum()))

    def mask(self, keep: Any) -> np.ndarray:
        return np.array([bool(keep(s)) for s in self.scored], dtype=bool)

    def per_persona(self) -> tuple[np.ndarray, np.ndarray]:
        """(rates of the personas, replicates x personas), personas in sorted order."""
        values = np.array([self.scores[self.index[p]].mean() for p in self.personas])
        reps = np.stack(
            [(self.weights[:, self.index[p]] @ self.scores[self.index[p]]) / len(self.index[p]) for p in self.personas],
            axis=1,
        )
        return values, reps

    def equity(self) -> dict[str, Any]:
        """Spread of the per-persona rates: standard deviation (population, ddof 0), minimum, and the share of
        personas whose rate is below 0.5, each with its interval."""
        values, reps = self.per_persona()
        return {
            "personas": len(self.personas),
            "std": _figure(values.std(), reps.std(axis=1), len(self.personas)),
            "min": _figure(values.min(), reps.min(axis=1), len(self.personas)),
            "share_below_half": _figure((values < 0.5).mean(), (reps < 0.5).mean(axis=1), len(self.personas)),
        }


def _figure(value: float, reps: np.ndarray, n: int) -> dict[str, Any]:
    low, high = np.percentile(reps, [2.5, 97.5]) if len(reps) else (float("nan"), float("nan"))
    return {"value": _r(value), "ci95": [_r(low), _r(high)], "n": n}


def summarize(
    scored: list[Scored], *, replicates: int, seed: int, unseen_folds: frozenset[int] | None = None
) -> dict[str, Any]:
    """Every figure of one prefix mode: overall, personal vs divergent, per axis (divergent pairs), per persona
    fold, seen vs unseen (when the folds the policy did not see are given), per persona, and equity."""
    if not scored:
        raise ValueError("no scored pairs")
    boot = Bootstrap(scored, replicates, seed)
    out: dict[str, Any] = {
        "pairs": len(scored),
        "rate": boot.rate(boot.mask(lambda s: True)),
        "by_type": {
            kind: boot.rate(boot.mask(lambda s, k=kind: s.question_type == k)) for kind in (PERSONAL, "divergent")
        },
        "by_axis": {
            axis: boot.rate(boot.mask(lambda s, a=axis: s.question_type == "divergent" and s.axis == a))
            for axis in sorted({s.axis for s in scored if s.question_type == "divergent" and s.axis})
        },
        "by_fold": {
            str(fold): boot.rate(boot.mask(lambda s, f=fold: s.fold == f))
            for fold in sorted({s.fold for s in scored if s.fold is not None})
        },
        "seen_unseen": None,
        "by_persona": {},
        "equity": boot.equity(),
    }
    if unseen_folds is not None:
        out["seen_unseen"] = {
            "unseen_folds": sorted(unseen_folds),
            "seen": boot.rate(boot.mask(lambda s: s.fold not in unseen_folds)),
            "unseen": boot.rate(boot.mask(lambda s: s.fold in unseen_folds)),
        }
    values, reps = boot.per_persona()
    for k, persona in enumerate(boot.personas):
        out["by_persona"][persona] = _figure(values[k], reps[:, k], len(boot.index[persona]))
    return out
