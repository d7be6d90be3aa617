"""A release is data, never configuration: what ``extend`` takes from a release's recipe, and what only
from the user.

Whoever made a release controls its ``manifest.json``, and the recipe text in it is checked only
against its own sha256, which anyone editing it recomputes. So a release's recipe may say *what the
data is* (axes, counts, seeds, the stages' models and sampling settings, filters, judge and split
settings; the prompt templates are the package's), but never *where calls go or with which
credential*: endpoints (URL, profile, ``api_key_env``, alias, limits), prices and the simulator's
settings come from the user only, from ``--recipe FILE`` (the user's own recipe) or ``--base-url``.
Otherwise a tampered release could point an endpoint at its own server and name ``HF_TOKEN`` as the
key variable, and ``extend`` would send the user's token there.

Without ``--recipe`` the one endpoint allowed is the simulator with the bundled demo recipe's settings
(embedded on 127.0.0.1, or at ``--base-url``), and only for a release whose recipe uses the simulator
alone; any other release needs ``--recipe``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wikipersona_data import redact
from wikipersona_data.errors import ConfigError
from wikipersona_data.stages.recipe import STAGE_NAMES, EndpointSpec, Recipe, load_recipe

FROM_USER = ("endpoints", "prices")
"""Recipe tables taken from the user's recipe, never from the release's."""
DUMP_PATHS = ("dump.source", "dump.path", "dump.index", "dump.scan")
"""Also the user's (where pages come from: paths on the user's machine, relative to the user's recipe, or the
live wiki, whose host is derived from the wiki's name, never read from a recipe)."""


def demo_simulator() -> EndpointSpec:
    """The bundled demo recipe's simulator endpoint (package data, not the release's)."""
    from wikipersona_data.demo.paths import DEMO_RECIPE

    recipe = load_recipe(DEMO_RECIPE, check_dump=False)
    (spec,) = [s for s in recipe.endpoints.values() if s.profile == "sim"]
    return spec


def endpoints_used(recipe: Recipe) -> set[str]:
    return {spec.endpoint for name in STAGE_NAMES if (spec := getattr(recipe.stages, name)) is not None}


def trusted_recipe(release: Recipe, user_recipe: Path | None, *, dump_given: bool) -> tuple[Recipe, list[str]]:
    """The recipe ``extend`` runs: the release's, with endpoints and prices from the user (see the module
    docstring); plus the lines that tell the user where each part came from."""
    where = release.source
    if user_recipe is None:
        not_sim = sorted(n for n, s in release.endpoints.items() if s.profile != "sim")
        if not_sim:
            raise ConfigError(
                f"{where}: endpoint {not_sim[0]!r} of the release's recipe is not the simulator; a release is data, "
                "not configuration, so its endpoints and key variables are never used: give --recipe FILE, your "
                "recipe whose [endpoints] say where calls go"
            )
        sim = demo_simulator()
        endpoints = {name: sim.model_copy(deep=True) for name in release.endpoints}
        note = (
            "extend: no --recipe, so every endpoint is the simulator with the bundled demo's settings "
            "(--base-url if given, else embedded on 127.0.0.1); the release's endpoint settings are not used"
        )
        return release.model_copy(update={"endpoints": endpoints}), [note]
    user = load_recipe(user_recipe, check_dump=False)
    missing = sorted(endpoints_used(release) - set(user.endpoints))
    if missing:
        raise ConfigError(
            f"{user_recipe}: has no endpoint {missing[0]!r}, which the release's stages use "
            f"(yours: {', '.join(sorted(user.endpoints))})"
        )
    update: dict[str, Any] = {"endpoints": user.endpoints, "prices": user.prices}
    if not dump_given and user.dump.source == "online":  # the user reads pages from the live wiki
        update["dump"] = release.dump.model_copy(update={"source": "online"})
    elif not dump_given:
        dump_path, index_path = user.dump_paths()
        scan = user.scan_path()
        files = {"path": str(dump_path), "index": str(index_path), "scan": str(scan) if scan else None}
        update["dump"] = release.dump.model_copy(update={"source": "dump", **files})
    lines = [f"extend: endpoints and prices from {user_recipe}; everything else from the release's recipe"]
    lines += recipe_differences(release, user)
    return release.model_copy(update=update), lines


def recipe_differences(release: Recipe, user: Recipe, limit: int = 30) -> list[str]:
    """One line per setting where the two recipes differ, saying which one ``extend`` uses."""
    mine = _flatten(user.model_dump(mode="json"))
    theirs = _flatten(release.model_dump(mode="json"))
    out = []
    for key in sorted(set(mine) | set(theirs)):
        a, b = theirs.get(key, "(unset)"), mine.get(key, "(unset)")
        if a == b:
            continue
        used = "yours" if key.split(".")[0] in FROM_USER or key in DUMP_PATHS else "the release's"
        out.append(f"  {key}: release {_show(a)}, yours {_show(b)} -> {used}")
    if not out:
        return ["  (your recipe and the release's are the same)"]
    if len(out) > limit:
        out = [*out[:limit], f"  ... and {len(out) - limit} more difference(s)"]
    return ["recipe differences (release vs --recipe):", *out]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _show(value: Any) -> str:
    text = redact.scrub(repr(value), aggressive=True)
    return text if len(text) <= 60 else text[:59] + "…"
