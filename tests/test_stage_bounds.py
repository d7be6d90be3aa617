"""Bounded structured output (issue 10 item 4): every stage schema closes within the stage's max_tokens.

A schema walker computes the largest reply each schema allows, in tokens, with a rule independent of
``stages/bounds.py`` (every JSON punctuation mark and key costs tokens; free text 3 characters per
token): it must fit ``max_tokens``. Every array has ``maxItems``, every free string ``maxLength`` or a
``pattern``; pydantic enforces the same bounds locally; the simulator keeps to them.
"""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.sim.schema_fill import fit, is_valid
from wikipersona_data.llm.structured import strict_schema
from wikipersona_data.stages import bounds, describe, judge, personas, prefixes, questions, respond
from wikipersona_data.verify.grounding import ENTAILMENT_MAX_TOKENS, Entailment

MAX_TOKENS = (300, 400, 600, 1024, 1200, 4096)  # describe needs about 300 for its 4 claims (with the headroom)


def schemas(max_tokens: int) -> dict[str, type[pydantic.BaseModel]]:
    return {
        "describe": describe.description_schema(max_tokens),
        "questions(5)": questions.question_schema(max_tokens, 5),
        "questions(20)": questions.question_schema(max_tokens, 20),
        "respond": respond.answer_schema(max_tokens),
        "judge": judge.verdict_schema(max_tokens, True),
        "judge_no_tie": judge.verdict_schema(max_tokens, False),
        "prefixes": prefixes.persona_schema(max_tokens),
        "personas_candidates": personas.candidates_schema(max_tokens, 5),
    }


def worst_tokens(node: Any, root: dict[str, Any]) -> int:
    """Tokens of the largest instance: 1-2 per punctuation mark, key or enum value = its length / 4 + 2,
    an id (pattern) 6, free text 3 characters per token."""
    if "$ref" in node:
        return worst_tokens(root["$defs"][node["$ref"].split("/")[-1]], root)
    if "enum" in node:
        return 2 + max(len(str(v)) for v in node["enum"]) // 4
    kind = node.get("type")
    if kind == "object":
        props = node["properties"]
        return 2 + sum(len(k) // 4 + 2 + worst_tokens(v, root) for k, v in props.items())
    if kind == "array":
        return 2 + node["maxItems"] * (1 + worst_tokens(node["items"], root))
    if kind == "string":
        if "pattern" in node:
            return 6
        return 2 + -(-node["maxLength"] // 3)
    return 2


def walk(node: Any, root: dict[str, Any], where: str = "") -> list[str]:
    """Unbounded spots: arrays without maxItems, free strings without maxLength or pattern."""
    if isinstance(node, dict):
        problems = []
        if node.get("type") == "array" and "maxItems" not in node:
            problems.append(f"{where}: array without maxItems")
        if node.get("type") == "string" and "enum" not in node and "maxLength" not in node and "pattern" not in node:
            problems.append(f"{where}: string without maxLength/pattern")
        for key, value in node.items():
            problems += walk(value, root, f"{where}/{key}")
        return problems
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in walk(v, root, f"{where}/{i}")]
    return []


@pytest.mark.parametrize("max_tokens", MAX_TOKENS)
def test_every_stage_schema_is_bounded_and_fits_max_tokens(max_tokens: int) -> None:
    for name, model in schemas(max_tokens).items():
        schema = strict_schema(model)
        assert walk(schema, schema) == [], name
        worst = worst_tokens(schema, schema)
        assert worst <= max_tokens, (name, max_tokens, worst)
        assert worst <= bounds.usable(max_tokens) + 1, (name, max_tokens, worst)  # headroom kept


def test_fixed_schemas_are_bounded() -> None:
    for model in (personas.CategoryEvidence, Entailment, respond.categories_schema(2, 8)):
        schema = strict_schema(model)
        assert walk(schema, schema) == [], model.__name__
    schema = strict_schema(Entailment)
    assert worst_tokens(schema, schema) <= ENTAILMENT_MAX_TOKENS


def test_too_small_max_tokens_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"max_tokens = 200 cannot hold 4 item\(s\) of 40 characters"):
        describe.description_schema(200)


def test_describe_asks_for_fewer_claims_when_max_tokens_is_small() -> None:
    small = strict_schema(describe.description_schema(300))["properties"]["claims"]
    large = strict_schema(describe.description_schema(1200))["properties"]["claims"]
    assert small["minItems"] == large["minItems"] == 4  # two of each kind
    assert small["maxItems"] < large["maxItems"]


def test_pydantic_enforces_the_same_bounds() -> None:
    model = describe.description_schema(300)
    schema = strict_schema(model)
    claim_max = schema["$defs"]["DraftClaim"]["properties"]["text"]["maxLength"]
    n_max = schema["properties"]["claims"]["maxItems"]
    good = {"kind": "background", "text": "x" * claim_max, "evidence": ["0.1", "12.30"]}
    model.model_validate({"claims": [good] * 4})
    for bad in (
        {"claims": [good] * (n_max + 1)},  # too many claims
        {"claims": [good] * 3},  # too few
        {"claims": [{**good, "text": "x" * (claim_max + 1)}] * 4},  # claim too long
        {"claims": [{**good, "evidence": ["[0.1]"]}] * 4},  # id not a bare sentence id
        {"claims": [{**good, "evidence": ["0.1"] * 4}] * 4},  # too many ids
        {"claims": [{**good, "evidence": []}] * 4},  # no evidence
    ):
        with pytest.raises(pydantic.ValidationError):
            model.model_validate(bad)
    q = questions.question_schema(300, 5)
    with pytest.raises(pydantic.ValidationError):
        q.model_validate({"questions": ["Why?"] * 6})


def test_simulator_cuts_replies_to_the_bounds_like_a_constrained_decoder() -> None:
    schema = strict_schema(describe.description_schema(300))
    long_claim = {"kind": "preference", "text": "word " * 200, "evidence": ["0.1"]}
    reply = fit(schema, {"claims": [long_claim] * 20})
    assert is_valid(schema, reply)
    limit = schema["$defs"]["DraftClaim"]["properties"]["text"]["maxLength"]
    assert len(reply["claims"]) == schema["properties"]["claims"]["maxItems"]
    assert all(len(c["text"]) <= limit and not c["text"].endswith(" ") for c in reply["claims"])
    assert fit(schema, {"claims": [{"kind": "x", "text": "t", "evidence": ["[1]"]}]})["claims"][0]["evidence"] == [
        "[1]"
    ]  # only sizes are cut; a wrong value stays wrong (the simulator then falls back and counts it)


def test_openai_profile_strips_the_length_keywords_it_rejects() -> None:
    from wikipersona_data.llm.profiles import get_profile

    schema = strict_schema(describe.description_schema(600))
    sent = get_profile("openai").sendable_schema(schema)
    text = str(sent)
    assert "maxLength" not in text and "minLength" not in text
    assert "maxItems" in text and "pattern" in text  # supported by strict mode: kept
    assert sent["$defs"]["DraftClaim"]["properties"].keys() == schema["$defs"]["DraftClaim"]["properties"].keys()
    assert "maxLength" in str(schema)  # the cached schema itself is untouched
    assert get_profile("llamacpp").sendable_schema(schema) is schema
    named = {"type": "object", "properties": {"pattern": {"type": "string", "maxLength": 3}}}
    assert get_profile("openai").sendable_schema(named) == {
        "type": "object",
        "properties": {"pattern": {"type": "string"}},
    }
