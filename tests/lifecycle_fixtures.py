"""One demo build shared by the release-lifecycle tests (test_regenerate.py, test_extend.py).

Memoised at module level, so when both test modules run in one session the demo is built once; each
module still works alone. The tests only resume this work dir or copy it, never change its settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.stages.pipeline import build_recipe

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "builders" / "demo.toml"
SIM = {"seed": 0, "unsupported_claim_rate": 0.1, "position_bias_rate": 0.1}  # builders/demo.toml's simulator

_BUILT: dict[str, Any] = {}


def build(work: Path, out: Path, sim: SimServer, recipe: Path = DEMO, cache_mode: str = "use") -> Path:
    return build_recipe(
        recipe,
        work_dir=work,
        out_dir=out,
        base_url=sim.base_url,
        cache_mode=cache_mode,
        progress=False,
        echo=lambda _m: None,
    )


def demo_build(factory: pytest.TempPathFactory) -> dict[str, Any]:
    """{"work", "release", "requests"} of builders/demo.toml built once against a fresh simulator."""
    if not _BUILT:
        root = factory.mktemp("lifecycle")
        with SimServer(SimConfig(**SIM)) as sim:
            release = build(root / "work", root / "release-v0.1.0", sim)
            requests = sim.stats()["requests"]
        _BUILT.update(work=root / "work", release=release, requests=requests)
    return dict(_BUILT)
