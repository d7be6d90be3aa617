"""Random but valid JSON for a JSON schema, so any structured-output request gets a usable answer.

Only the subset that structured-output schemas actually use is generated (OpenAI strict mode,
pydantic's ``model_json_schema``): objects, arrays, scalars with their bounds, enums, consts,
anyOf/oneOf/allOf and local ``$ref``s. Validity is checked with ``jsonschema`` afterwards, so a
keyword we do not model (``pattern``) makes the caller fall back or report, never lie.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import random
from typing import Any

import jsonschema

from wikipersona_data.fileio import canonical_json
from wikipersona_data.llm.sim.textgen import phrase

MAX_DEPTH = 6
"""Past this nesting depth the filler takes the smallest choices so recursive schemas terminate."""


class SchemaFillError(ValueError):
    """The schema cannot be satisfied by the filler (e.g. ``false``, or a broken ``$ref``)."""


@functools.lru_cache(maxsize=256)
def _validator(canonical_schema: str) -> jsonschema.protocols.Validator:
    schema = json.loads(canonical_schema)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


def canonical(value: Any) -> str:
    """The one JSON spelling of a value: sorted keys, no spaces (used for hashing and caching)."""
    return canonical_json(value)


def is_valid(schema: dict[str, Any], instance: Any) -> bool:
    """Whether ``instance`` satisfies ``schema`` (validators are compiled once per distinct schema)."""
    return _validator(canonical(schema)).is_valid(instance)


def check_schema(schema: Any) -> str | None:
    """None when ``schema`` is a usable JSON schema, else a one-line reason."""
    if not isinstance(schema, dict):
        return "json_schema.schema must be an object"
    return _schema_problem(canonical(schema))


@functools.lru_cache(maxsize=256)
def _schema_problem(canonical_schema: str) -> str | None:
    # Checking against the metaschema costs ~2 ms; clients send the same few schemas thousands of times.
    schema = json.loads(canonical_schema)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as err:
        return f"invalid json_schema.schema: {err.message}"
    return None


def fill(schema: dict[str, Any] | bool, rng: random.Random, vocabulary: list[str] | None = None) -> Any:
    """A random instance of ``schema``; strings are made of ``vocabulary`` words so they read as text."""
    return _Filler(schema, rng, list(vocabulary or [])).fill(schema, 0)


def violate(schema: dict[str, Any], instance: Any, rng: random.Random) -> Any:
    """A near-miss of ``instance`` that ``schema`` rejects, as a non-enforcing endpoint might return.

    Returns ``instance`` unchanged when no simple mutation breaks the schema (e.g. ``{}``).
    """
    candidates: list[Any] = []
    if isinstance(instance, dict) and instance:
        keys = sorted(instance)
        dropped = dict(instance)
        dropped.pop(rng.choice(keys))
        candidates.append(dropped)
        retyped = dict(instance)
        key = rng.choice(keys)
        retyped[key] = 12345 if isinstance(instance[key], str) else "not the right type"
        candidates.append(retyped)
    candidates += [[instance], "plain text instead of JSON data", None]
    for candidate in candidates:
        if not is_valid(schema, candidate):
            return candidate
    return instance


class _Filler:
    def __init__(self, root: dict[str, Any] | bool, rng: random.Random, vocabulary: list[str]) -> None:
        self.root = root
        self.rng = rng
        self.vocabulary = vocabulary

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise SchemaFillError(f"only local $ref are supported, got {ref!r}")
        node: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SchemaFillError(f"unresolvable $ref {ref!r}")
            node = node[part]
        return node

    def fill(self, schema: Any, depth: int) -> Any:
        if schema is True or schema == {}:
            return phrase(self.rng, self.vocabulary, 1, 4)
        if schema is False or not isinstance(schema, dict):
            raise SchemaFillError("schema `false` has no valid instance")
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        if "$ref" in schema:
            return self.fill(self.resolve(schema["$ref"]), depth + 1)
        if "allOf" in schema:
            return self.fill(_merge_all_of(schema, [self._deref(s) for s in schema["allOf"]]), depth)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self.fill(self._pick_branch(schema[key], depth), depth + 1)
        kind = self._pick_type(schema, depth)
        return getattr(self, f"_{kind}")(schema, depth)

    def _deref(self, schema: Any) -> Any:
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self.resolve(schema["$ref"])
        return schema

    def _pick_branch(self, branches: list[Any], depth: int) -> Any:
        if depth >= MAX_DEPTH:
            for branch in branches:
                if isinstance(branch, dict) and branch.get("type") == "null":
                    return branch
        return self.rng.choice(branches)

    def _pick_type(self, schema: dict[str, Any], depth: int) -> str:
        declared = schema.get("type")
        if isinstance(declared, list):
            concrete = [t for t in declared if t != "null"]
            if "null" in declared and (not concrete or depth >= MAX_DEPTH or self.rng.random() < 0.2):
                return "null"
            return self.rng.choice(concrete)
        if isinstance(declared, str):
            return declared
        if "properties" in schema or "required" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            return "number"
        return "string"

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties: dict[str, Any] = schema.get("properties", {})
        required = list(schema.get("required", []))
        optional = [name for name in properties if name not in required]
        chosen = set(required)
        if depth < MAX_DEPTH:
            chosen.update(name for name in optional if self.rng.random() < 0.5)
        missing = schema.get("minProperties", 0) - len(chosen)
        for name in optional:
            if missing <= 0:
                break
            if name not in chosen:
                chosen.add(name)
                missing -= 1
        # Required names without a declared property schema get a string, as a model would write.
        return {
            name: self.fill(properties.get(name, {"type": "string"}), depth + 1)
            for name in properties
            if name in chosen
        } | {name: self.fill({"type": "string"}, depth + 1) for name in required if name not in properties}

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        prefix = schema.get("prefixItems", [])
        closed = schema.get("items") is False  # nothing allowed after the prefix
        low = schema.get("minItems", 0)
        high = schema.get("maxItems", low + 4)
        if closed:
            high = min(high, len(prefix))
        count = low if depth >= MAX_DEPTH else self.rng.randint(min(max(low, 1), high), min(high, low + 4))
        items_schema = schema.get("items", {})
        if items_schema is False:
            items_schema = {}
        out: list[Any] = []
        attempts = 0
        while len(out) < count:
            index = len(out)
            value = self.fill(prefix[index] if index < len(prefix) else items_schema, depth + 1)
            attempts += 1
            if schema.get("uniqueItems") and canonical(value) in {canonical(v) for v in out} and attempts < 20 * count:
                continue
            out.append(value)
        return out

    def _string(self, schema: dict[str, Any], depth: int) -> str:
        fmt = schema.get("format")
        if fmt == "date":
            return (dt.date(1950, 1, 1) + dt.timedelta(days=self.rng.randrange(27_000))).isoformat()
        if fmt == "date-time":
            return f"{dt.date(2000, 1, 1) + dt.timedelta(days=self.rng.randrange(9_000))}T12:00:00Z"
        if fmt == "email":
            return f"{self._word()}@example.org"
        if fmt in ("uri", "url"):
            return f"https://example.org/{self._word()}"
        if fmt == "uuid":
            return f"{self.rng.getrandbits(128):032x}"[:32]
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        text = phrase(self.rng, self.vocabulary, 2, 8)
        while len(text) < low:
            text += " " + self._word()
        if high is not None and len(text) > high:
            text = text[:high].rstrip() if high > 0 else ""
            text = text.ljust(low, "x")
        return text

    def _word(self) -> str:
        return phrase(self.rng, self.vocabulary, 1, 1)

    def _integer(self, schema: dict[str, Any], depth: int) -> int:
        low, high = _bounds(schema, integer=True)
        multiple = schema.get("multipleOf")
        if isinstance(multiple, int) and multiple > 0:
            first = -(-low // multiple) * multiple
            if first <= high:
                return first + multiple * self.rng.randint(0, (high - first) // multiple)
        return self.rng.randint(low, high)

    def _number(self, schema: dict[str, Any], depth: int) -> float:
        low, high = _bounds(schema, integer=False)
        return min(max(round(self.rng.uniform(low, high), 3), low), high)

    def _boolean(self, schema: dict[str, Any], depth: int) -> bool:
        return self.rng.random() < 0.5

    def _null(self, schema: dict[str, Any], depth: int) -> None:
        return None


def _bounds(schema: dict[str, Any], *, integer: bool) -> tuple[Any, Any]:
    step = 1 if integer else 1e-6
    low = schema.get("minimum")
    high = schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        low = schema["exclusiveMinimum"] + step
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        high = schema["exclusiveMaximum"] - step
    if low is None and high is None:
        low, high = 0, 100
    elif low is None:
        low = high - 100
    elif high is None:
        high = low + 100
    if integer:
        return math.ceil(low), math.floor(high)
    return float(low), float(high)


def _merge_all_of(schema: dict[str, Any], parts: list[Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in parts:
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = sorted(set(merged.get("required", [])) | set(value))
            else:
                merged.setdefault(key, value)
    return merged


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def fit(schema: dict[str, Any], instance: Any) -> Any:
    """``instance`` cut to the schema's size bounds, as a grammar-constrained decoder would end it.

    Arrays keep their first ``maxItems`` items and strings their first ``maxLength`` characters (cut at
    the last space when there is one in the second half, so a cut answer still ends on a word); a string
    outside its ``enum`` becomes the member sharing its longest prefix (first on a tie), as a grammar
    only lets the decoder continue into a member. Otherwise a value of the wrong type or pattern stays
    wrong (and the caller falls back)."""
    return _fit(schema, instance, schema)


def _fit(node: Any, value: Any, root: Any) -> Any:
    if not isinstance(node, dict):
        return value
    if "$ref" in node:
        return _fit(_Filler(root, random.Random(0), []).resolve(node["$ref"]), value, root)
    if isinstance(value, dict):
        props = node.get("properties") or {}
        return {key: _fit(props.get(key), item, root) for key, item in value.items()}
    if isinstance(value, list):
        high = node.get("maxItems")
        kept = value[:high] if isinstance(high, int) else value
        return [_fit(node.get("items"), item, root) for item in kept]
    if isinstance(value, str) and node.get("enum") and value not in node["enum"]:
        members = [m for m in node["enum"] if isinstance(m, str)]
        if members:
            return max(members, key=lambda m: _shared_prefix(m, value))
    if isinstance(value, str):
        high = node.get("maxLength")
        if isinstance(high, int) and len(value) > high:
            cut = value[:high]
            space = cut.rfind(" ")
            return (cut[:space] if space > high // 2 else cut).rstrip()
    return value
