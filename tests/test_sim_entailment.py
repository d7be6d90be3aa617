"""The simulator's entailment answers (used by the optional LLM grounding check) follow the evidence."""

from __future__ import annotations

import json

import openai

from wikipersona_data.llm.sim import SimConfig, SimServer, register_responder
from wikipersona_data.verify.grounding import entailment_template

SCHEMA = {
    "type": "object",
    "properties": {"entailed": {"type": "boolean"}, "rationale": {"type": "string"}},
    "required": ["entailed", "rationale"],
    "additionalProperties": False,
}
EVIDENCE = [("3.1", "Okafor has followed a vegan diet since 2009, which she attributes to her grandmother's farm.")]


def ask(client: openai.OpenAI, kind: str, claim: str) -> dict:
    messages = entailment_template().render(evidence=EVIDENCE, kind=kind, claim=claim)
    reply = client.chat.completions.create(
        model="sim-large",
        messages=messages,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "entailment", "schema": SCHEMA, "strict": True},
        },
        temperature=0,
    )
    return json.loads(reply.choices[0].message.content)


def test_supported_claim_is_entailed_and_invented_one_is_not() -> None:
    with SimServer(SimConfig(seed=0)) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="test", max_retries=0)
        kept = ask(client, "background", "Okafor has followed a vegan diet since 2009.")
        invented = ask(client, "background", "Okafor won an Olympic gold medal in rowing at Sydney.")
        inferred = ask(client, "preference", "Okafor likely prefers vegan dishes like her grandmother's farm food.")
    assert kept["entailed"] is True
    assert invented["entailed"] is False
    assert inferred["entailed"] is True
    assert all(r["rationale"] for r in (kept, invented, inferred))


def test_a_test_override_of_a_responder_is_undone_by_unregister() -> None:
    from wikipersona_data.llm.sim.responders import get_responder, load_stage_responders, unregister_responder

    load_stage_responders()
    stage = get_responder("entailment")
    assert stage is not None
    register_responder("entailment")(lambda req: {"entailed": True, "rationale": "override"})
    assert get_responder("entailment") is not stage
    unregister_responder("entailment")
    assert get_responder("entailment") is stage
