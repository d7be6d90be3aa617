"""wikipersona-data: build, verify, version and publish the WikiPersona dataset.

The public API (see README "Use it from Python"): ``DumpReader``, ``scan``, ``build``, ``extend``,
``load_recipe``, ``verify_release``, ``evaluate`` (defined in :mod:`wikipersona_data.api`). They are loaded on
first use, so ``import wikipersona_data`` (and ``wikipersona --help``) stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "DumpReader",
    "Recipe",
    "__version__",
    "build",
    "evaluate",
    "extend",
    "load_recipe",
    "scan",
    "verify_release",
]

if TYPE_CHECKING:
    from wikipersona_data.api import DumpReader, Recipe, build, evaluate, extend, load_recipe, scan, verify_release


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from wikipersona_data import api

        return getattr(api, name)
    raise AttributeError(f"module 'wikipersona_data' has no attribute {name!r}")
