"""Load a release folder exactly as users will (``datasets.load_dataset``), offline, in a throwaway cache.

This is the proof that the folder needs no code of ours: if ``load_dataset(folder, "pairs")`` and
``load_dataset(folder, "personas")`` work with the network off and match the manifest's counts,
the Hub will serve it the same way. The cache is a temp dir so nothing lands in ``~/.cache``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wikipersona_data.errors import InputError
from wikipersona_data.release.manifest import Manifest

_OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


@contextmanager
def offline() -> Iterator[None]:
    """Offline mode for both libraries, also when they were imported before (they read the env at import)."""
    import datasets.config
    import huggingface_hub.constants

    saved_env = {k: os.environ.get(k) for k in _OFFLINE_ENV}
    saved = (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE)
    os.environ.update({k: "1" for k in _OFFLINE_ENV})
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_offline(release: Path, config: str, cache_dir: Path) -> Any:
    """``load_dataset(release, config)`` with the network off and ``cache_dir`` as the only cache."""
    from datasets import load_dataset

    with offline():
        return load_dataset(str(release), config, cache_dir=str(cache_dir))


def check_loaded(release: Path, pairs: Any, personas: Any) -> dict[str, int]:
    """Row counts of the loaded configs; fail if they differ from the manifest's."""
    manifest = Manifest.load(Path(release) / "manifest.json")
    loaded = {
        "pairs_train": pairs["train"].num_rows,
        "pairs_test": pairs["test"].num_rows,
        "personas": personas["train"].num_rows,
    }
    for key, n in loaded.items():
        expected = manifest.data.counts.get(key)
        if expected != n:
            raise InputError(f"{release}: load_dataset gives {n} rows for {key}, manifest says {expected}")
    return loaded


def self_test(release: Path) -> dict[str, int]:
    """Load both configs offline in a temp cache; return their row counts (checked against the manifest)."""
    with tempfile.TemporaryDirectory(prefix="wikipersona-selftest-") as cache:
        pairs = load_offline(release, "pairs", Path(cache))
        personas = load_offline(release, "personas", Path(cache))
        return check_loaded(release, pairs, personas)
