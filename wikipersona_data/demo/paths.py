"""Where the bundled demo dump lives, so the CLI, recipes and tests never spell out the path."""

from __future__ import annotations

from pathlib import Path

DEMO_DATA_DIR = Path(__file__).resolve().parent / "data"
DEMO_DUMP = DEMO_DATA_DIR / "enwiki-demo-20261101-pages-articles-multistream.xml.bz2"
DEMO_INDEX = DEMO_DATA_DIR / "enwiki-demo-20261101-pages-articles-multistream-index.txt.bz2"
DEMO_RECIPE = Path(__file__).resolve().parent / "recipe.toml"
"""The demo recipe ships inside the package (``builders/demo.toml`` is a link to it), so a wheel install finds it."""
