"""What every command does the same way: progress bars, the index beside a dump, a closed stdout.

One place so the commands cannot drift apart again: ``--progress/--no-progress`` on every long command,
bars only when stderr is a terminal unless asked (a redirected log gets no bar redraws), the bars of
libraries we call (``datasets``) kept out of our output, and a dump's multistream index found beside it
when ``--index`` is not given.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def release_endpoint_options(func: F) -> F:
    """``--recipe`` and ``--base-url`` of the commands that make calls for an existing release (extend,
    evaluate): a release never says where calls go, so the endpoints come from the user's recipe only."""
    func = click.option("--base-url", default=None, help="OpenAI-compatible endpoint for every recipe endpoint.")(func)
    return click.option(
        "--recipe",
        "recipe_path",
        type=click.Path(path_type=Path),
        default=None,
        help="Your recipe: its [endpoints] and [prices] are used (a release never says where calls go); without "
        "it, only the demo's simulator.",
    )(func)


def progress_option(func: F) -> F:
    """``--progress/--no-progress``; the default (None) means: bars only when stderr is a terminal."""
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress bars on stderr (default: only when stderr is a terminal).",
    )(func)


def want_progress(flag: bool | None) -> bool:
    """The flag as given, else whether stderr is a terminal."""
    if flag is not None:
        return flag
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def quiet_library_bars() -> None:
    """Silence ``datasets``' own bars ("Generating train split", ...): our commands report for themselves."""
    try:
        from datasets.utils.logging import disable_progress_bar
    except ImportError:
        return
    disable_progress_bar()


_MULTISTREAM = re.compile(r"^(?P<prefix>.*-multistream)(?P<part>\d*)\.xml(?P<range>-p\d+p\d+)?\.bz2$")


def index_candidates(dump: Path) -> list[Path]:
    """Where a multistream dump's index lives by Wikimedia's naming, ``.txt.bz2`` before ``.txt``:
    ``X-multistream.xml.bz2`` -> ``X-multistream-index.txt.bz2``; part files
    ``X-multistream1.xml-p1p41242.bz2`` -> ``X-multistream-index1.txt-p1p41242.bz2``."""
    match = _MULTISTREAM.match(dump.name)
    if match is None:
        return []
    stem = f"{match['prefix']}-index{match['part']}.txt{match['range'] or ''}"
    return [dump.with_name(stem + ".bz2"), dump.with_name(stem)]


def find_index(dump: Path) -> Path | None:
    """The index beside ``dump`` (same prefix, ``-index.txt.bz2``), or None when there is none."""
    return next((p for p in index_candidates(Path(dump)) if p.is_file()), None)


def index_or_beside(dump: Path, index: Path | None, *, say: Callable[[str], None] | None = None) -> Path | None:
    """``index`` if given, else the one found beside ``dump`` (announced with ``say``), else None."""
    if index is not None:
        return index
    found = find_index(dump)
    if found is not None and say is not None:
        say(f"index: {found} (found beside the dump)")
    return found
