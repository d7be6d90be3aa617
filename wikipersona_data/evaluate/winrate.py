"""Item 1: a policy answers each test question under a prefix mode; the release's judge compares that answer
with the pair's chosen answer.

The judge is the build's own: ``stages/judge.py``'s ``Judge.match`` with the persona card ``persona_card``
builds from the release's claims (refuted ones left out, the recipe's ``persona_view``), the recipe's judge
stage settings (model, temperature, max_tokens, seed), every match in both orders and ties allowed, through
the same client, cache and ledger (a request identical to one already paid for is a cache hit). As in the
build, the two orders must agree for a win or a loss; a tie or two orders that disagree (including a
position-biased pair of votes) count as a tie: win = 1, tie = 0.5, loss = 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wikipersona_data.evaluate.data import EvalRelease
from wikipersona_data.evaluate.endpoints import Target
from wikipersona_data.evaluate.prompts import answer_text, messages_for, question_text
from wikipersona_data.stages.calls import StageLLM
from wikipersona_data.stages.judge import Judge, JudgeFailure, persona_card

POLICY_STAGE = "evaluate-policy"
JUDGE_STAGE = "evaluate-judge"
POLICY = "policy"
CHOSEN = "chosen"


class LedgerAs(StageLLM):
    """The stages' LLM door, with this run's calls on a ledger line of their own (``evaluate-judge``)."""

    def __init__(self, client: Any, recipe: Any, ledger_stage: str) -> None:
        super().__init__(client, recipe)
        self.ledger_stage = ledger_stage

    async def json(self, stage: str, template: str, values: dict[str, Any], schema: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("ledger_stage", self.ledger_stage)
        return await super().json(stage, template, values, schema, **kwargs)


@dataclass(frozen=True)
class JudgeContext:
    """What ``stages/judge.py`` reads of a build context: the recipe and the LLM door."""

    recipe: Any
    llm: StageLLM


@dataclass(frozen=True)
class Question:
    question_id: str
    text: str


@dataclass(frozen=True)
class Answer:
    candidate_id: str
    text: str


@dataclass
class Outcome:
    """One (pair, prefix mode): the policy's answer, the judge's votes, the score (None when a call failed)."""

    pair_id: str
    mode: str
    score: float | None
    failure: str | None = None
    answer: str | None = None
    votes: list[dict[str, Any]] = field(default_factory=list)
    position_biased: bool = False
    truncated: bool = False
    """The policy's answer was cut at its max_tokens (judged as it is)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "pair_id": self.pair_id,
            "mode": self.mode,
            "score": self.score,
            "failure": self.failure,
            "answer": self.answer,
            "position_biased": self.position_biased,
            "truncated": self.truncated,
            "votes": self.votes,
        }


def policy_params(temperature: float, max_tokens: int, seed: int) -> dict[str, Any]:
    return {"temperature": temperature, "max_tokens": max_tokens, "seed": seed}


async def evaluate_pair(
    client: Any,
    ctx: JudgeContext,
    release: EvalRelease,
    policy: Target,
    params: dict[str, Any],
    pair: dict[str, Any],
    mode: str,
) -> Outcome:
    persona = release.personas[pair["persona_id"]]
    reply = await client.chat_text(
        stage=POLICY_STAGE,
        endpoint=policy.endpoint,
        model=policy.model,
        messages=messages_for(pair, persona, mode),
        params=params,
        keep_truncated=True,  # an answer at the token limit is the policy's answer: judged, and counted
    )
    if not reply.ok:
        return Outcome(pair["pair_id"], mode, None, failure=f"policy: {reply.failure}")
    answer = reply.text.strip()
    truncated = reply.finish_reason == "length"
    card = persona_card(ctx, release.card_persona(pair["persona_id"]), release.description(pair["persona_id"]))  # type: ignore[arg-type]
    judge = Judge(
        ctx, release.card_persona(pair["persona_id"]), Question(pair["question_id"], question_text(pair)), card
    )  # type: ignore[arg-type]
    try:
        match = await judge.match(0, Answer(POLICY, answer), Answer(CHOSEN, answer_text(pair["chosen"])))  # type: ignore[arg-type]
    except JudgeFailure as err:
        return Outcome(pair["pair_id"], mode, None, failure=f"judge: {err}", answer=answer, truncated=truncated)
    score = 1.0 if match.outcome == POLICY else 0.0 if match.outcome == CHOSEN else 0.5
    votes = [{"order": v.order, "winner": v.winner, "rationale": v.rationale} for v in match.votes]
    return Outcome(
        pair["pair_id"], mode, score, answer=answer, votes=votes, position_biased=match.position_biased,
        truncated=truncated,
    )  # fmt: skip
