"""Filters as data: a recipe may list each stage's filters, in order, with parameters (``[stage_filters]``).

    [stage_filters]
    questions = ["text_safety", "question_length", "answerable", "identity_leak", "category_leak",
                 { name = "question_duplicate", question_near_duplicate = 0.8 }]

A stage left out of the table (or a recipe without it) runs its registry defaults
(``stages/registry.py``); a listed stage runs exactly its list. An entry is a filter name, or a table with
``name`` and parameters: the ``[filters]`` settings that filter reads (``Filter.params``), overriding the
table's value for that filter only. What a filter may be listed for is the stage's catalog
(``Stage.catalog``): its default filters plus the optional ones (``length_balance``), since a filter
reads the fields of one kind of row. A stage whose defaults start with ``text_safety`` must list it first:
later filters' details may echo text, and a secret must be masked before they see it.

Every mistake is one line naming the recipe key, e.g.
``builders/x.toml: stage_filters.questions[5].near: unknown parameter of question_duplicate (has: ...)``.
Which drop reasons ask for a new sample stays a property of the filter (``Filter.regenerate_on``), so a
recipe listing ``grounding`` for describe gets describe's regenerations with it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from wikipersona_data.errors import ConfigError
from wikipersona_data.verify.base import Filter
from wikipersona_data.verify.config import FiltersConfig

Listing = Sequence[str | dict[str, Any]]
"""One stage's ``[stage_filters]`` entry as the recipe gives it."""


def build_filter(cls: type[Filter], cfg: FiltersConfig) -> Filter:
    """An instance of ``cls`` reading ``cfg`` (filters without settings take no arguments)."""
    takes_cfg = len(inspect.signature(cls.__init__).parameters) > 1 and cls.__init__ is not Filter.__init__
    return cls(cfg) if takes_cfg else cls()  # type: ignore[call-arg]


def listed_filters(
    stage: str, listing: Listing, catalog: Sequence[type[Filter]], cfg: FiltersConfig, *, where: str = ""
) -> list[Filter]:
    """The filters a recipe lists for ``stage``, built with their parameters; ``ConfigError`` (one line naming
    ``<where>stage_filters.<stage>[i]...``) for an unknown name or parameter or a bad value."""
    by_name = {cls.name: cls for cls in catalog}
    key = f"{where}stage_filters.{stage}"
    if not isinstance(listing, list | tuple):
        raise ConfigError(f"{key}: expected a list of filter names or tables, got {type(listing).__name__}")
    out: list[Filter] = []
    for i, entry in enumerate(listing):
        at = f"{key}[{i}]"
        name, params = _entry(entry, at)
        cls = by_name.get(name)
        if cls is None:
            raise ConfigError(f"{at}: unknown filter {name!r} for stage {stage} (has: {', '.join(by_name)})")
        unknown = sorted(set(params) - set(cls.params))
        if unknown:
            has = ", ".join(cls.params) or "no parameters"
            raise ConfigError(f"{at}.{unknown[0]}: unknown parameter of {name} (has: {has})")
        own = cfg
        if params:
            try:
                own = FiltersConfig.model_validate({**cfg.model_dump(), **params})
            except ValidationError as err:
                first = err.errors()[0]
                loc = ".".join(str(p) for p in first["loc"])
                raise ConfigError(f"{at}.{loc}: {first['msg'].removeprefix('Value error, ')}") from None
        out.append(build_filter(cls, own))
    names = [f.name for f in out]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"{key}: filter {twice!r} listed twice")
    return out


def _entry(entry: Any, at: str) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, dict):
        params = dict(entry)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"{at}.name: required (the filter's name)")
        return name, params
    raise ConfigError(f"{at}: expected a filter name or a table with name, got {type(entry).__name__}")
