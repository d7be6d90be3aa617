"""Item 2, preference accuracy (reward-bench style): how often a judge prefers a test pair's chosen answer over
its rejected one, given the conversation with and without each prefix.

A generative judge is shown the conversation as a policy would see it (the prefix as a system message, or
nothing for ``none``), then the two answers, in both orders, ties allowed (``templates/preference.md``). The
pair scores 1 when both orders prefer chosen, 0 when both prefer rejected, 0.5 otherwise (a tie, or orders
that disagree). Sampling settings are the release judge stage's (temperature, max_tokens, seed), so the
release's judge model, or another one named with ``--accuracy-judge``, is asked exactly the same way.

A reward model (a scalar score per conversation, vLLM's ``/classify`` or ``/pooling`` through
``LLMClient.reward``) is asked for the score of the conversation ending in each answer: 1 when chosen scores
higher, 0.5 on equal scores, 0 when rejected scores higher.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from wikipersona_data.evaluate.endpoints import Target
from wikipersona_data.evaluate.prompts import answer_text, messages_for, prefix_text, question_text
from wikipersona_data.evaluate.winrate import Outcome
from wikipersona_data.stages.judge import verdict_schema
from wikipersona_data.stages.templates import Template

ACCURACY_STAGE = "evaluate-accuracy"
REWARD_STAGE = "evaluate-reward"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE = "preference"


@cache
def load_eval_template(name: str) -> Template:
    """A template of ``evaluate/templates`` (same format and hashing as the stage templates)."""
    path = TEMPLATE_DIR / f"{name}.md"
    raw = path.read_bytes()
    return Template(name=path.name, text=raw.decode("utf-8"), sha256=hashlib.sha256(raw).hexdigest())


async def prefers(
    client: Any,
    judge: Target,
    params: dict[str, Any],
    max_tokens: int,
    max_reasks: int,
    pair: dict[str, Any],
    persona: dict[str, Any],
    mode: str,
) -> Outcome:
    template = load_eval_template(TEMPLATE)
    schema = verdict_schema(max_tokens, True)
    chosen, rejected = answer_text(pair["chosen"]), answer_text(pair["rejected"])
    picks: list[str] = []
    votes: list[dict[str, Any]] = []
    for chosen_first in (True, False):
        a, b = (chosen, rejected) if chosen_first else (rejected, chosen)
        values = {
            "context": prefix_text(persona, mode) or "",
            "question": question_text(pair),
            "answer_a": a,
            "answer_b": b,
            "allow_ties": True,
        }
        res = await client.chat_json(
            stage=ACCURACY_STAGE,
            endpoint=judge.endpoint,
            model=judge.model,
            messages=template.render(**values),
            schema=schema,
            schema_name=TEMPLATE,
            params=params,
            max_reasks=max_reasks,
        )
        if not res.ok:
            return Outcome(pair["pair_id"], mode, None, failure=f"accuracy judge: {res.failure}")
        pick = res.value.preferred
        said = "tie" if pick == "tie" else ("chosen" if (pick == "a") == chosen_first else "rejected")
        picks.append(said)
        order = "chosen-first" if chosen_first else "rejected-first"
        votes.append({"order": order, "winner": said, "rationale": res.value.rationale.strip()})
    score = 1.0 if picks == ["chosen", "chosen"] else 0.0 if picks == ["rejected", "rejected"] else 0.5
    biased = "tie" not in picks and picks[0] != picks[1]
    return Outcome(pair["pair_id"], mode, score, votes=votes, position_biased=biased)


async def reward_prefers(
    client: Any,
    reward: Target,
    route: str,
    score_index: int,
    pair: dict[str, Any],
    persona: dict[str, Any],
    mode: str,
) -> Outcome:
    head = messages_for(pair, persona, mode)
    scores = []
    for side in ("chosen", "rejected"):
        messages = [*head, {"role": "assistant", "content": answer_text(pair[side])}]
        res = await client.reward(
            stage=REWARD_STAGE,
            endpoint=reward.endpoint,
            model=reward.model,
            messages=messages,
            route=route,
            score_index=score_index,
        )
        if not res.ok:
            return Outcome(pair["pair_id"], mode, None, failure=f"reward model: {res.failure}")
        scores.append(res.score)
    chosen, rejected = scores
    score = 1.0 if chosen > rejected else 0.0 if chosen < rejected else 0.5
    votes = [{"order": "scores", "winner": "chosen" if score == 1 else "rejected" if score == 0 else "tie",
              "rationale": f"reward chosen {chosen:.6g}, rejected {rejected:.6g}"}]  # fmt: skip
    return Outcome(pair["pair_id"], mode, score, votes=votes)
