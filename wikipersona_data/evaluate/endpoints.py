"""Which endpoint and model ``--policy`` (and ``--accuracy-judge``) name.

``VALUE`` is one of, checked in this order:

- an ``http(s)://`` base URL: a new endpoint with ``--*-model`` (required), ``--*-profile`` (default
  ``openai``) and the key read from the environment variable ``--*-key-env`` (default ``OPENAI_API_KEY``) at
  call time, never stored; a ``sim`` URL gets the cache alias ``sim``, as in a build;
- the name of an endpoint of the recipe in use (``--recipe FILE``, else the demo's simulator): that endpoint,
  with ``--*-model`` (required);
- the name of a stage of the recipe (``respond``, ``judge``, ``reward``, ...): that stage's endpoint and model
  (``--*-model`` overrides the model).
"""

from __future__ import annotations

from dataclasses import dataclass

from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.config import EndpointConfig
from wikipersona_data.redact import safe_url
from wikipersona_data.stages.recipe import STAGE_NAMES, Recipe


@dataclass(frozen=True)
class Target:
    """Where one role's calls go: a client endpoint name (``config`` when it is new) and a model."""

    role: str
    endpoint: str
    model: str
    config: EndpointConfig | None
    shown: str
    """How the target is named in output: URL without userinfo or query, or the recipe key."""


def resolve(
    value: str,
    *,
    role: str,
    option: str,
    recipe: Recipe,
    model: str | None,
    profile: str | None,
    key_env: str | None,
) -> Target:
    value = value.strip()
    if value.lower().startswith(("http://", "https://")):
        if not model:
            raise ConfigError(f"{option} {safe_url(value)}: give the model with {option}-model")
        prof = profile or "openai"
        config = EndpointConfig(
            name=role,
            base_url=value,
            profile=prof,
            api_key_env=key_env or "OPENAI_API_KEY",
            alias="sim" if prof == "sim" else None,
        )
        return Target(role, role, model, config, safe_url(value))
    if profile or key_env:
        raise ConfigError(f"{option} {value}: {option}-profile and {option}-key-env apply to a URL only")
    if value in recipe.endpoints:
        if not model:
            raise ConfigError(f"{option} {value}: an endpoint of the recipe; give the model with {option}-model")
        return Target(role, value, model, None, value)
    spec = getattr(recipe.stages, value, None) if value in STAGE_NAMES else None
    if _calls_a_model(spec):
        return Target(role, spec.endpoint, model or spec.model, None, f"stage {value}")
    known = sorted(recipe.endpoints) + [s for s in STAGE_NAMES if _calls_a_model(getattr(recipe.stages, s, None))]
    raise ConfigError(
        f"{option} {value!r}: not an http(s) URL, an endpoint or a stage of the recipe (known: {', '.join(known)})"
    )


def _calls_a_model(spec: object) -> bool:
    """A chat stage's or the reward band's spec (the embeddings stage serves no answers)."""
    return spec is not None and (hasattr(spec, "temperature") or hasattr(spec, "band"))
