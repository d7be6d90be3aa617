"""The stages' single door to the LLM client: template in, validated value + provenance out.

Keeping every call in one place means the stages never build request parameters by hand (so a
stage cannot leak a mutated kwargs dict into another), every row gets the same
provenance fields, and the progress bars see every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.client import resample_temperature
from wikipersona_data.llm.ledger import estimate_tokens
from wikipersona_data.stages.recipe import Recipe
from wikipersona_data.stages.rows import Provenance
from wikipersona_data.stages.templates import load_template


@dataclass
class CallResult:
    """A validated value (``ok``) or the reason there is none; provenance either way."""

    ok: bool
    value: Any
    failure: str | None
    provenance: Provenance


class StageLLM:
    """Chat-JSON and embedding calls configured by the recipe's ``[stages.<name>]`` tables."""

    def __init__(self, client: Any, recipe: Recipe) -> None:
        self.client = client
        self.recipe = recipe

    def params(self, stage: str, sample_idx: int = 0, **overrides: Any) -> dict[str, Any]:
        """Semantic sampling params of a stage (only what changes the answer goes into the cache key).

        ``seed`` varies with ``sample_idx`` because a deterministic server (or temperature 0) answers an
        identical request identically: distinct samples need distinct requests. A stage at temperature 0
        samples ``sample_idx`` > 0 at ``RESAMPLE_TEMPERATURE``: greedy decoding ignores the seed, so its
        regenerations would be the same reply again (measured on llama.cpp).
        """
        spec = self.recipe.stage(stage)
        seed = getattr(self.recipe.seeds, stage, 0) + sample_idx
        temperature = spec.temperature if sample_idx == 0 else resample_temperature(spec.temperature)
        params: dict[str, Any] = {"temperature": temperature, "max_tokens": spec.max_tokens, "seed": seed}
        if spec.top_p is not None:
            params["top_p"] = spec.top_p
        if spec.frequency_penalty is not None:
            params["frequency_penalty"] = spec.frequency_penalty
        params.update({k: v for k, v in overrides.items() if v is not None})
        return params

    def prompt_budget(self, stage: str) -> int | None:
        """Prompt tokens one call of ``stage`` may use on its endpoint, or None when the context is unknown.

        Known once the client has asked the server (llama.cpp ``/props``, at preflight) or from the recipe's
        ``context_tokens``; stages with a long prompt (describe) trim to it before sending.
        """
        budget = getattr(self.client, "context_budget", None)
        if budget is None:
            return None
        spec = self.recipe.stage(stage)
        return budget(spec.endpoint, spec.max_tokens)

    def prompt_tokens(self, template: str, values: dict[str, Any]) -> int:
        """Estimated tokens of ``template`` rendered with ``values`` (the client's own estimate)."""
        return estimate_tokens(load_template(template).render(**values))

    async def json(
        self,
        stage: str,
        template: str,
        values: dict[str, Any],
        schema: type[BaseModel],
        *,
        sample_idx: int = 0,
        ledger_stage: str | None = None,
        **param_overrides: Any,
    ) -> CallResult:
        """Render ``templates/<template>.md`` and ask for JSON matching ``schema`` (named after the template)."""
        spec = self.recipe.stage(stage)
        tmpl = load_template(template)
        messages = tmpl.render(**values)
        result = await self.client.chat_json(
            stage=ledger_stage or stage,
            endpoint=spec.endpoint,
            model=spec.model,
            messages=messages,
            schema=schema,
            schema_name=template,
            params=self.params(stage, sample_idx, **param_overrides),
            sample_idx=sample_idx,
            max_reasks=spec.max_reasks,
        )
        served = getattr(result, "served_model", None)
        provenance = Provenance(
            endpoint=spec.endpoint,
            model=spec.model,
            served_model=served,
            call_keys=list(getattr(result, "call_keys", []) or []),
            template=tmpl.name,
            template_sha256=tmpl.sha256,
            sample_idx=sample_idx,
        )
        value = result.value if result.ok else None
        if value is not None and not isinstance(value, schema):
            value = schema.model_validate(value)
        return CallResult(ok=bool(result.ok), value=value, failure=result.failure, provenance=provenance)

    async def embed(self, texts: list[str], *, ledger_stage: str = "respond") -> list[list[float]]:
        spec = self.recipe.stages.embed
        return await self.client.embed(stage=ledger_stage, endpoint=spec.endpoint, model=spec.model, texts=texts)

    async def reward(self, question: str, answer: str, *, ledger_stage: str = "reward") -> Any:
        """The recipe's reward model on one (question, answer) conversation (``LLMClient.reward``)."""
        spec = self.recipe.stages.reward
        if spec is None:
            raise ConfigError(f"{self.recipe.source}: stages.reward: not configured")
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        return await self.client.reward(
            stage=ledger_stage,
            endpoint=spec.endpoint,
            model=spec.model,
            messages=messages,
            route=spec.route,
            score_index=spec.score_index,
        )

    def embed_key(self, texts: list[str]) -> str:
        """Call key of ``embed(texts)``, for the rows that cite the call (the data ledger counts cited calls)."""
        from wikipersona_data.llm.cache import call_key
        from wikipersona_data.llm.client import embed_spec

        spec = self.recipe.stages.embed
        return call_key(embed_spec(self.client.endpoints[spec.endpoint].identity, spec.model, texts))
