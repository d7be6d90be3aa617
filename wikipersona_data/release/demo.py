"""``wikipersona demo``: build the bundled demo recipe against the simulator, then prove the result.

The demo is the shortest path to "it works on my machine": no key, no network. It starts the
simulated OpenAI-compatible server on loopback, builds ``builders/demo.toml`` on the bundled demo
dump (work dir ``./work/demo`` by default, so a re-run reuses the call cache), verifies the
release, loads both configs with ``datasets.load_dataset`` offline in a temp cache, and prints
where the release is, its counts, and a few rows.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wikipersona_data.demo.paths import DEMO_RECIPE
from wikipersona_data.errors import ConfigError, WikipersonaError
from wikipersona_data.release.manifest import Manifest
from wikipersona_data.release.selftest import check_loaded, load_offline
from wikipersona_data.release.verify import verify_release

_EXCERPT = 160

Builder = Callable[..., Path]


@contextmanager
def recipe_simulator(recipe: Path) -> Iterator[str]:
    """Run the simulator on loopback and yield its base URL.

    Configured as the recipe's sim endpoint says (seed, shares of deliberately bad answers), so the demo's
    data equal ``wikipersona build``'s; a recipe without a simulator endpoint gets a plain ``SimConfig(seed=0)``.
    """
    from wikipersona_data.llm.sim import SimConfig, SimServer
    from wikipersona_data.stages.pipeline import embedded_simulator
    from wikipersona_data.stages.recipe import load_recipe

    with embedded_simulator(load_recipe(recipe), None) as url:
        if url:
            yield url
            return
    with SimServer(SimConfig(seed=0)) as sim:
        yield sim.base_url


def run_demo(
    *,
    out: Path,
    work: Path,
    echo: Callable[[str], None] = print,
    recipe: Path | None = None,
    build: Builder | None = None,
    rows: int = 3,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
) -> Path:
    """Build, verify and load the demo release; return its folder. ``build`` defaults to ``build_recipe``.

    ``echo`` takes the results (build table, verify, rows), ``log`` what is only a log (the simulator's URL;
    default ``echo``); ``progress`` is passed to the default builder.
    """
    recipe = recipe or DEMO_RECIPE
    if not recipe.is_file():
        raise ConfigError(f"{recipe}: demo recipe not found")
    log = log or echo
    if build is None:
        from wikipersona_data.stages.pipeline import build_recipe

        build = functools.partial(build_recipe, progress=progress, echo=log, report=echo)
    with recipe_simulator(recipe) as base_url:
        log(f"simulator: {base_url}")
        release = Path(build(recipe, work_dir=work, out_dir=out, base_url=base_url, max_usd=None))
    if not (release / "manifest.json").is_file():
        raise WikipersonaError(f"{release}: the build did not write a release (no manifest.json)")

    report = verify_release(release)
    for line in report.lines():
        echo(line)
    if not report.ok:
        raise WikipersonaError(f"{release}: the demo release fails verify ({report.failures[0].name})")

    with tempfile.TemporaryDirectory(prefix="wikipersona-demo-cache-") as cache:
        pairs = load_offline(release, "pairs", Path(cache))
        personas = load_offline(release, "personas", Path(cache))
        loaded = check_loaded(release, pairs, personas)
        manifest = Manifest.load(release / "manifest.json")
        echo("")
        echo(f"release: {release} ({manifest.data.name} {manifest.tag})")
        echo(
            f"load_dataset offline: pairs train {loaded['pairs_train']}, test {loaded['pairs_test']}; "
            f"personas {loaded['personas']}"
        )
        counts = manifest.data.counts
        echo("counts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        for line in sample_lines(pairs["train"], rows):
            echo(line)
    return release


def sample_lines(split: Any, n: int) -> list[str]:
    """A few rows, personal and divergent mixed, as short readable excerpts."""
    rows = split.to_list()
    personal = [r for r in rows if r["question_type"] == "personal"][: (n + 1) // 2]
    divergent = [r for r in rows if r["question_type"] == "divergent"][: n - len(personal)]
    picked = personal + divergent
    picked += [r for r in rows if r not in picked][: n - len(picked)]
    lines = []
    for row in picked:
        label = row["question_type"] + (f", {row['axis']}: {row['category']}" if row["axis"] else "")
        lines += [
            "",
            f"[{row['persona']}] ({label}) judge agreement {row['judge_agreement']:.2f}",
            f"  Q: {_excerpt(row['prompt'])}",
            f"  chosen:   {_excerpt(row['chosen'])}",
            f"  rejected: {_excerpt(row['rejected'])}",
        ]
    return lines


def _excerpt(messages: list[dict[str, str]]) -> str:
    text = " ".join(" ".join((m.get("content") or "") for m in messages).split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"
