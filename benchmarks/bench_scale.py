"""How a build scales with the number of personas: wall time per persona and peak RSS, side by side.

For each N (default 8, 64, 256) it writes a demo-style dump holding the bundled demo pages plus fictional
copies of the 8 demo personas (each copy renamed: a new surname throughout its article, a new page id), a
recipe like ``builders/demo.toml`` listing all N (each copy in its original's category, so every persona gets
the same counts: 12 personal questions, its axis's 12 divergent questions, 6 candidates kept to 4 each), and
builds it with the embedded simulator at zero latency in a fresh process (``wikipersona build``), reading that
process's peak RSS. Issue 12's goal: wall per persona at 256 <= 1.3x that at 8; peak RSS at 256 <= 2x that at 8.

    .venv/bin/python benchmarks/bench_scale.py [N ...]

Before and after issue 12 item 6 (bounded memory), run one after the other on the 2-core machine (load average
~7 from other work, so absolute times are inflated; before = d3fd039, after = ab670c9):

        N  personas built   wall s  s/persona     x  peak RSS MB     x
    before
        8        8            30.6      3.819  1.00        276.2  1.00
       64       62           228.2      3.566  0.93        388.1  1.41
      256      250           906.5      3.541  0.93        581.6  2.11
    after
        8        8            37.1      4.634  1.00        268.2  1.00
       64       62           221.9      3.467  0.75        338.2  1.26
      256      250          1067.9      4.172  0.90        442.9  1.65

Both goals met after. Where the memory went (tracemalloc and RSS per step of an N=64 build): not the stages'
rows, but the end of the build: the per-persona charts (a bar each: a canvas 0.28 inch taller per persona), the
manifest reading every stage's rows and rejects as whole lists, and the parquet read-back's thread pool. The
stages' rows no later stage reads are now left on disk (``store.StoredRows``); RSS grows ~0.7 MB per persona.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import tomllib

from wikipersona_data.demo.build_dump import build, load_pages
from wikipersona_data.demo.paths import DEMO_RECIPE

CHILD = """
import resource, sys
from wikipersona_data.cli import main
rc = main(sys.argv[1:])
print(f"maxrss_kb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
sys.exit(rc)
"""


def _suffix(k: int) -> str:
    """k-th copy's surname suffix, letters only (digits in a name look like an infobox date to the parser)."""
    out = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        out = "abcdefghijklmnopqrstuvwxyz"[r] + out
    return out


def demo_personas() -> dict[str, tuple[str, str]]:
    """Title of each listed persona -> (axis, category), redirects resolved as the demo recipe lists them."""
    recipe = tomllib.loads(DEMO_RECIPE.read_text(encoding="utf-8"))
    out = {}
    for axis in recipe["axes"]:
        for category in axis["categories"]:
            for title in category.get("personas", []):
                out[title] = (axis["name"], category["name"])
    return out


def write_case(n: int, folder: Path) -> Path:
    """The dump, index and recipe of an N-persona build in ``folder``; returns the recipe path."""
    pages = load_pages()
    by_title = {p.title: p for p in pages}
    listed = demo_personas()
    canonical = {t: (by_title[t].redirect or t) for t in listed}
    members: dict[tuple[str, str], list[str]] = {}
    for title, membership in listed.items():
        members.setdefault(membership, []).append(title)
    extra = []
    next_id = max(p.page_id for p in pages) + 1
    copies = n // len(listed) - 1
    for k in range(copies):
        for title, membership in listed.items():
            page = by_title[canonical[title]]
            surname = page.title.split()[-1]
            new_surname = surname + _suffix(k)
            new_title = page.title.replace(surname, new_surname)
            text = re.sub(rf"\b{re.escape(surname)}\b", new_surname, page.text)
            extra.append(
                replace(page, title=new_title, page_id=next_id, revision_id=page.revision_id + next_id, text=text)
            )
            next_id += 1
            members[membership].append(new_title)
    dump, index = build(sorted([*pages, *extra], key=lambda p: p.page_id))
    (folder / "dump.xml.bz2").write_bytes(dump)
    (folder / "index.txt.bz2").write_bytes(index)
    recipe = DEMO_RECIPE.read_text(encoding="utf-8")
    recipe = recipe.replace('path = "package:demo"', 'path = "dump.xml.bz2"')  # relative to the recipe file
    recipe = recipe.replace('index = "package:demo"', 'index = "index.txt.bz2"')
    recipe = recipe.replace("sim = { ", "sim = { latency_ms = 0, ", 1)
    for (_axis, category), titles in members.items():
        listed_now = "[" + ", ".join(f'"{t}"' for t in titles) + "]"
        pattern = rf'(name = "{re.escape(category)}"\npersonas = )\[[^\]]*\]'
        recipe = re.sub(pattern, lambda m, new=listed_now: m.group(1) + new, recipe)
    path = folder / "recipe.toml"
    path.write_text(recipe, encoding="utf-8")
    return path


def run(n: int, root: Path) -> tuple[float, float, str]:
    folder = root / f"n{n}"
    folder.mkdir()
    recipe = write_case(n, folder)
    args = ["build", str(recipe), "--work", str(folder / "work"), "--out", str(folder / "release"), "--no-progress"]
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"N={n}: build failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-3:]}")
    rss_kb = float(re.search(r"maxrss_kb=(\d+)", proc.stderr).group(1))  # type: ignore[union-attr]
    summary = re.search(r"release written to .*", proc.stdout)
    return wall, rss_kb / 1024, summary.group(0) if summary else ""


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [8, 64, 256]
    print(f"{'N':>5} {'personas':>9} {'wall s':>9} {'s/persona':>10} {'x':>6} {'peak RSS MB':>12} {'x':>6}", flush=True)
    first: tuple[float, float] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for n in sizes:  # each row printed as soon as it is measured (a long N must not hide the short ones)
            wall, rss, summary = run(n, Path(tmp))
            per = wall / n
            first = first or (per, rss)
            built = re.search(r"(\d+) personas", summary)
            print(
                f"{n:>5} {built.group(1) if built else '?':>9} {wall:>9.1f} {per:>10.3f} {per / first[0]:>6.2f} "
                f"{rss:>12.1f} {rss / first[1]:>6.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
