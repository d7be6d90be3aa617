"""Schema filler and responder registry: valid JSON for any schema, stage hooks, non-enforcing endpoints."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Literal

import httpx2
import jsonschema
import openai
import pydantic
import pytest
from openai.lib._pydantic import to_strict_json_schema

from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.sim import ResponderRequest, SimConfig, SimServer, register_responder, unregister_responder
from wikipersona_data.llm.sim.schema_fill import SchemaFillError, fill, is_valid, violate


class Claim(pydantic.BaseModel):
    text: str = pydantic.Field(min_length=5, max_length=80)
    evidence: list[int] = pydantic.Field(min_length=1, max_length=3)
    supported: bool | None = None


class Persona(pydantic.BaseModel):
    name: str
    axis: Literal["diet", "religion", "politics"]
    birth_year: int = pydantic.Field(ge=1900, le=2010)
    weight: float = pydantic.Field(gt=0, lt=1)
    claims: list[Claim]
    nickname: str | None = None


class Tree(pydantic.BaseModel):
    label: str
    children: list[Tree] = []


SCHEMAS = {
    "pydantic": Persona.model_json_schema(),
    "strict": to_strict_json_schema(Persona),
    "recursive": Tree.model_json_schema(),
    "oneOf": {
        "oneOf": [
            {"type": "integer", "multipleOf": 7, "minimum": 10, "maximum": 60},
            {"type": "string", "format": "date"},
        ]
    },
    "allOf": {
        "allOf": [
            {"properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "null"}}, "required": ["b"]},
        ]
    },
    "tuple": {
        "type": "array",
        "prefixItems": [{"type": "boolean"}, {"type": "number", "minimum": -1, "maximum": 1}],
        "items": False,
    },
    "minProperties": {
        "type": "object",
        "properties": {"x": {"type": "string"}, "y": {"type": "string"}},
        "minProperties": 2,
    },
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_fill_is_valid_for_many_seeds(name: str) -> None:
    schema = SCHEMAS[name]
    values = [fill(schema, random.Random(seed), ["vegan", "marathon", "chess"]) for seed in range(60)]
    for value in values:
        jsonschema.validate(value, schema)
    assert len({json.dumps(v, sort_keys=True) for v in values}) > 1  # actually random, not a constant


def test_fill_strings_are_words_and_unsatisfiable_schema_is_reported() -> None:
    value = fill({"type": "string"}, random.Random(1), ["photosynthesis"])
    assert value.replace(" ", "").isalpha() and " " in value
    with pytest.raises(SchemaFillError):
        fill(False, random.Random(1))
    with pytest.raises(SchemaFillError):
        fill({"$ref": "#/$defs/Missing"}, random.Random(1))


def test_violate_breaks_the_schema() -> None:
    schema = SCHEMAS["strict"]
    value = fill(schema, random.Random(3))
    broken = violate(schema, value, random.Random(3))
    assert is_valid(schema, value) and not is_valid(schema, broken)


@pytest.fixture()
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(seed=5)) as server:
        yield server


def _persona_format(name: str) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": SCHEMAS["strict"], "strict": True}}


def _ask(sim: SimServer, **kwargs):
    client = openai.OpenAI(base_url=sim.base_url, api_key="test", max_retries=0)
    kwargs.setdefault("messages", [{"role": "user", "content": "Who is Ada Lovelace?"}])
    return client.chat.completions.create(model="sim-small", **kwargs)


def test_registered_responder_answers_its_schema(sim: SimServer) -> None:
    seen: list[ResponderRequest] = []

    @register_responder("test_persona_ok")
    def persona(req: ResponderRequest) -> dict:
        seen.append(req)
        return {"name": f"persona {req.choice_index}", "axis": "diet", "birth_year": 1950 + req.rng.randint(0, 9),
                "weight": 0.5, "claims": [], "nickname": None}  # fmt: skip

    try:
        reply = _ask(sim, response_format=_persona_format("test_persona_ok"), n=2, temperature=0.3)
    finally:
        unregister_responder("test_persona_ok")
    assert [json.loads(c.message.content)["name"] for c in reply.choices] == ["persona 0", "persona 1"]
    assert seen[0].schema_name == "test_persona_ok" and seen[0].schema == SCHEMAS["strict"]
    assert seen[0].user_text == "Who is Ada Lovelace?" and seen[0].params["temperature"] == 0.3
    assert seen[0].seed == 5 and seen[0].model == "sim-small"


def test_invalid_responder_output_falls_back_to_filler(sim: SimServer) -> None:
    register_responder("test_persona_bad")(lambda req: {"name": 42})
    try:
        reply = _ask(sim, response_format=_persona_format("test_persona_bad"))
    finally:
        unregister_responder("test_persona_bad")
    jsonschema.validate(json.loads(reply.choices[0].message.content), SCHEMAS["strict"])
    assert sim.stats()["responder_fallbacks"] == 1


def test_raising_responder_is_a_500_naming_it(sim: SimServer) -> None:
    def broken(req: ResponderRequest) -> dict:
        raise KeyError("claims")

    register_responder("test_persona_raises")(broken)
    try:
        with pytest.raises(openai.InternalServerError, match="test_persona_raises"):
            _ask(sim, response_format=_persona_format("test_persona_raises"))
    finally:
        unregister_responder("test_persona_raises")
    assert sim.stats()["responder_errors"] == 1


def _marker_messages(name: str) -> list[dict]:
    instruction = (
        f'You are helpful.\n\nRespond with JSON for schema "{name}"\n{json.dumps(SCHEMAS["strict"])}\nNo prose.'
    )
    return [{"role": "system", "content": instruction}, {"role": "user", "content": "Describe a vegan chef"}]


@pytest.mark.parametrize(
    ("style", "prefix"), [("plain", "{"), ("fenced", "```json\n{"), ("preamble", "Sure! Here it is:\n{")]
)
def test_marker_without_response_format_uses_schema_and_json_style(style: str, prefix: str) -> None:
    with SimServer(SimConfig(json_style=style)) as server:
        reply = _ask(server, messages=_marker_messages("persona_marker"))
        stats = server.stats()
    content = reply.choices[0].message.content
    assert content.startswith(prefix)
    payload = content[content.index("{") : content.rindex("}") + 1]
    jsonschema.validate(json.loads(payload), SCHEMAS["strict"])
    assert stats["by_schema"] == {"persona_marker": 1}


def test_json_schema_replies_are_never_styled() -> None:
    with SimServer(SimConfig(json_style="fenced")) as server:
        content = _ask(server, response_format=_persona_format("persona")).choices[0].message.content
    jsonschema.validate(json.loads(content), SCHEMAS["strict"])


def test_non_enforcing_endpoint_can_violate_the_schema() -> None:
    with SimServer(SimConfig(enforce_schema=False, violation_rate=1.0)) as server:
        reply = _ask(server, response_format=_persona_format("persona"), n=3)
        stats = server.stats()
    for choice in reply.choices:
        assert not is_valid(SCHEMAS["strict"], json.loads(choice.message.content))
    assert stats["schema_violations"] == 3


def test_invalid_schema_and_bad_parameters_are_400(sim: SimServer) -> None:
    bad_schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "no-such-type"}}}
    with pytest.raises(openai.BadRequestError, match="json_schema"):
        _ask(sim, response_format=bad_schema)
    for params in ({"n": 0}, {"max_tokens": 0}, {"temperature": 3}):
        with pytest.raises(openai.BadRequestError):
            _ask(sim, **params)
    body = {"model": "sim-small", "messages": [{"role": "wizard", "content": "x"}]}
    response = httpx2.post(f"{sim.base_url}/chat/completions", json=body)
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages[0]"


def test_config_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="unknown fault"):
        SimConfig(faults=("429", "teapot"))
    with pytest.raises(ConfigError, match="unknown script outcome"):
        SimConfig(script=("ok", "maybe"))
    with pytest.raises(ConfigError, match="json_style"):
        SimConfig(json_style="yaml")
    with SimServer() as server, pytest.raises(ConfigError):
        server.set_script(("nope",))
