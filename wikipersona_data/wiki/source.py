"""Where a build's pages come from: the recipe's dump files, or the live wiki (``[dump] source = "online"``).

One function, so ``build`` and ``extend`` (and whatever runner drives the stages) open the same kind of
reader for a recipe. Both readers answer ``get(title)`` with a Biography made by the same parser
(``lookup.page_biography``); the online one also keeps the pages it fetched under ``store`` (a build's work
dir) and reports the revisions it read for the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from wikipersona_data.wiki.biography import Biography


class PageReader(Protocol):
    """What the stages and ``extend`` need of a page source (``DumpReader``, ``OnlineReader``)."""

    def get(self, title: str) -> Biography: ...

    def close(self) -> None: ...


def open_pages(recipe: Any, *, store: Path | None = None, prefetch: bool = True) -> Any:
    """A ``DumpReader`` for ``source = "dump"``, an ``OnlineReader`` for ``"online"`` (the recipe's explicit
    titles asked for up front, in batches, unless ``prefetch`` is False)."""
    if recipe.dump.source == "online":
        from wikipersona_data.wiki.online import OnlineReader

        reader = OnlineReader(recipe.dump.name, store=store)
        if prefetch:
            try:
                reader.prefetch([t for axis in recipe.axes for c in axis.categories for t in c.personas])
            except BaseException:
                reader.close()
                raise
        return reader
    from wikipersona_data.wiki.lookup import DumpReader

    return DumpReader(*recipe.dump_paths())


def pages_read(reader: Any) -> list[dict[str, Any]] | None:
    """``[{title, page_id, revision_id}]`` an online reader read (for the manifest); None for a dump."""
    revisions = getattr(reader, "revisions", None)
    return revisions() if callable(revisions) else None
