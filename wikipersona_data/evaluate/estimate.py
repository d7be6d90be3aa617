"""``wikipersona evaluate --estimate``: the calls, tokens and upper-bound cost of a run, before sending anything.

Every prompt is rendered as the run would render it (the release's pairs, personas and prefixes), except that
the policy's answer, unknown before the run, is stood in for by the pair's chosen answer in the judge's
prompt, and a verdict's reply schema counts where the judge's server reads it as prompt (OpenAI, the
simulator: ``stages.estimate.schema_prompt_tokens``); the policy and judge replies are counted at their
``max_tokens``. Priced by the ledger's own rule with
the recipe's prices (``--recipe``): a model without a price (a policy at a URL) shows "n/a".
"""

from __future__ import annotations

from typing import Any

from wikipersona_data.evaluate import accuracy, winrate
from wikipersona_data.evaluate.data import EvalRelease
from wikipersona_data.evaluate.endpoints import Target
from wikipersona_data.evaluate.prompts import answer_text, messages_for, question_text
from wikipersona_data.llm.ledger import Ledger, estimate_tokens
from wikipersona_data.stages.estimate import schema_prompt_tokens
from wikipersona_data.stages.judge import persona_card, verdict_schema
from wikipersona_data.stages.templates import load_template


def plan(
    options: Any, release: EvalRelease, pairs: list[dict[str, Any]], targets: dict[str, Target]
) -> list[tuple[str, str, int, int, int]]:
    """``(ledger stage, model, prompt tokens, max output tokens, count)`` of every call the run would make."""
    recipe = release.recipe
    judge_spec = recipe.stage("judge")
    ctx = winrate.JudgeContext(recipe, None)  # type: ignore[arg-type]
    judge_template = load_template("judge")
    preference = accuracy.load_eval_template(accuracy.TEMPLATE)
    calls: list[tuple[str, str, int, int, int]] = []
    verdict = verdict_schema(judge_spec.max_tokens, recipe.judge.allow_ties)
    judge_schema = _schema_tokens(recipe, None, judge_spec.endpoint, verdict)
    accuracy_schema = 0
    if "accuracy" in targets:
        target = targets["accuracy"]
        accuracy_schema = _schema_tokens(recipe, target, target.endpoint, verdict_schema(judge_spec.max_tokens, True))
    for mode in options.modes:
        for pair in pairs:
            persona = release.personas[pair["persona_id"]]
            chosen, rejected = answer_text(pair["chosen"]), answer_text(pair["rejected"])
            if "policy" in targets:
                policy = targets["policy"]
                asked = estimate_tokens(messages_for(pair, persona, mode))
                calls.append((winrate.POLICY_STAGE, policy.model, asked, options.policy_max_tokens, 1))
                who = release.card_persona(pair["persona_id"])
                card = persona_card(ctx, who, release.description(pair["persona_id"]))  # type: ignore[arg-type]
                values = {**card, "question": question_text(pair), "answer_a": chosen, "answer_b": chosen}
                shown = (
                    estimate_tokens(judge_template.render(**values, allow_ties=recipe.judge.allow_ties)) + judge_schema
                )
                votes = 2 if recipe.judge.both_orders else 1
                calls.append((winrate.JUDGE_STAGE, judge_spec.model, shown, judge_spec.max_tokens, votes))
            if "accuracy" in targets:
                values = {"context": persona.get(f"prefix_{mode}") if mode != "none" else "", "allow_ties": True}
                messages = preference.render(**values, question=question_text(pair), answer_a=chosen, answer_b=rejected)
                calls.append(
                    (accuracy.ACCURACY_STAGE, targets["accuracy"].model, estimate_tokens(messages) + accuracy_schema,
                     judge_spec.max_tokens, 2)
                )  # fmt: skip
            if "reward" in targets:
                for side in (chosen, rejected):
                    messages = [*messages_for(pair, persona, mode), {"role": "assistant", "content": side}]
                    calls.append((accuracy.REWARD_STAGE, targets["reward"].model, estimate_tokens(messages), 0, 1))
    return calls


def _schema_tokens(recipe: Any, target: Target | None, endpoint: str, schema: Any) -> int:
    """Prompt tokens a verdict schema adds on the server that answers: a target given by URL has its own
    profile; a recipe endpoint or stage, the recipe's."""
    if target is not None and target.config is not None:
        return schema_prompt_tokens(target.config.profile, target.config.json_schema, schema)
    spec = recipe.endpoints.get(endpoint)
    return 0 if spec is None else schema_prompt_tokens(spec.profile, spec.json_schema, schema)


def estimate_table(
    options: Any, release: EvalRelease, pairs: list[dict[str, Any]], targets: dict[str, Target]
) -> dict[str, Any]:
    from wikipersona_data.stages.pipeline import price_table

    return Ledger(price_table(release.recipe)).estimate(plan(options, release, pairs, targets))


def format_table(table: dict[str, Any]) -> list[str]:
    header = f"{'ledger line':<19}{'model':<24}{'calls':>9}{'input tok':>13}{'max out tok':>13}{'cost $ (max)':>14}"
    lines = [header, "-" * len(header)]
    for row in table["by_stage_model"]:
        cost = "n/a" if row["cost_usd"] is None else f"{row['cost_usd']:.2f}"
        lines.append(
            f"{row['stage']:<19}{row['model']:<24}{row['calls']:>9}{row['input_tokens']:>13}"
            f"{row['max_output_tokens']:>13}{cost:>14}"
        )
    t = table["totals"]
    cost = "n/a (a model has no price)" if t["cost_usd"] is None else f"{t['cost_usd']:.2f}"
    lines += [
        "-" * len(header),
        f"{'total':<43}{t['calls']:>9}{t['input_tokens']:>13}{t['max_output_tokens']:>13} {cost:>13}",
    ]
    return lines
