"""Where wikipersona keeps per-user files that are not part of any repository or release.

One function so every cache (title lookups, local model files) follows the same rule: the XDG base
directory spec (``$XDG_CACHE_HOME``, else ``~/.cache``). Nothing here is ever written inside a checkout,
so model files and lookups cannot be committed by accident.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """``$XDG_CACHE_HOME`` if set and non-empty, else ``~/.cache`` (not created here)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg else Path.home() / ".cache"
