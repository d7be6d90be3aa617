"""What batch APIs and prompt caching do to the cost of a build (issue 13, items 5 and 6).

Part 1, the v1 recipe (builders/wikipersona-v1.toml), estimated: upper-bound cost per stage online, through
a batch API where the server has one (50 % of list prices), with the prompt-cache hits the endpoint's rule
gives on the prompts' shared leading parts (rendered from the real templates and reply schemas: `wikipersona
estimate`), and as configured (OpenAI through its Batch API, zephyr-7b-beta answering offline on vLLM at
GPU-time prices, the reward model online). Beside it, the same build with every call bought from OpenAI
(answers by gpt-4.1-mini), online, batch, batch + OpenAI's cache, and its prompts under vLLM's cache rule.

Part 2, the demo recipe built against the simulator: the cached-input share per stage the simulator measured
(``usage.prompt_tokens_details.cached_tokens`` summed in the manifest's ledger) next to the share the
estimate expected, for OpenAI's rule (the simulator's default) and a vLLM-like one (``cache_block_tokens=16,
cache_min_tokens=0``); and the same vLLM-like build in batch mode, whose ledger shows the batch price.

    .venv/bin/python benchmarks/bench_batch.py [--skip-demo]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.stages.estimate import estimate
from wikipersona_data.stages.order import pipeline_rank
from wikipersona_data.stages.pipeline import build_recipe
from wikipersona_data.stages.recipe import load_recipe, parse_recipe

ROOT = Path(__file__).resolve().parents[1]
V1 = ROOT / "builders" / "wikipersona-v1.toml"
DEMO = ROOT / "builders" / "demo.toml"
VLLM_SIM = {"cache_block_tokens": 16, "cache_min_tokens": 0}
DEMO_SIM = {"seed": 0, "unsupported_claim_rate": 0.1, "position_bias_rate": 0.1}


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"{value:9.2f}"


def _all_api(text: str) -> str:
    """The v1 recipe with every LLM call on OpenAI (answers by gpt-4.1-mini at its list price), as v1 was
    before its answers moved to zephyr-7b-beta on vLLM: what the same build costs bought entirely from an API."""
    text = text.replace(
        'endpoint = "gen"\nmodel = "HuggingFaceH4/zephyr-7b-beta"', 'endpoint = "openai"\nmodel = "gpt-4.1-mini"'
    )
    return text + '\n[prices."gpt-4.1-mini"]\ninput = 0.4\ncached_input = 0.1\noutput = 1.6\n'


def _vllm_endpoints(text: str) -> str:
    """The recipe with every OpenAI endpoint modelled as vLLM (same prices): only the cache rule changes."""
    return text.replace('profile = "openai"', 'profile = "vllm"').replace('mode = "batch"', 'mode = "online"')


def part_v1() -> None:
    table = estimate(load_recipe(V1, check_dump=False))
    text = V1.read_text(encoding="utf-8")
    api = estimate(parse_recipe(_all_api(text), V1))
    api_vllm = estimate(parse_recipe(_vllm_endpoints(_all_api(text)), V1))
    print("v1 recipe as configured, estimated upper bound (output at max_tokens), USD")
    head = (
        f"{'stage':<10}{'model':<32}{'mode':>8}{'online':>9}{'batch':>9}{'cache':>7}{'batch+cache':>12}"
        f"{'configured':>11}"
    )
    print(head)
    print("-" * len(head))
    rows = sorted(table["by_stage_model"], key=lambda r: (pipeline_rank(r["stage"]), r["model"]))
    for row in rows:
        print(
            f"{row['stage']:<10}{row['model'][:31]:<32}{row['mode']:>8}{_usd(row['cost_usd'])}"
            f"{_usd(row['batch_cost_usd'])}{row['cache_share']:>7.0%}{_usd(row['batch_cached_cost_usd']):>12}"
            f"{_usd(row['configured_cost_usd']):>11}"
        )
    t = table["totals"]
    print("-" * len(head))
    print(
        f"{'total':<50}{_usd(t['cost_usd'])}{_usd(t['batch_cost_usd'])}{t['cache_share']:>7.0%}"
        f"{_usd(t['batch_cached_cost_usd']):>12}{_usd(t['configured_cost_usd']):>11}"
    )
    by_mode = ", ".join(f"{mode} ${cost:.2f}" for mode, cost in t["modes"].items())
    print(
        f"configured = each endpoint's mode ({by_mode}); goal <= $150: "
        f"{'met' if t['configured_cost_usd'] <= 150 else 'NOT met'} (${t['configured_cost_usd']:.2f})"
    )
    a, v = api["totals"], api_vllm["totals"]
    print()
    print("the same build with every call on OpenAI (answers by gpt-4.1-mini), side by side")
    print(f"  online               : {_usd(a['cost_usd'])}")
    print(f"  batch                : {_usd(a['batch_cost_usd'])}  (x{a['batch_cost_usd'] / a['cost_usd']:.3f})")
    print(f"  batch + cache, OpenAI: {_usd(a['batch_cached_cost_usd'])}  (cache {a['cache_share']:.0%})")
    print(
        f"  online + cache, vLLM rule, same prices: {_usd(v['online_cached_cost_usd'])}  (cache {v['cache_share']:.0%})"
    )
    print(
        f"  v1 as configured     : {_usd(t['configured_cost_usd'])}  "
        f"(x{t['configured_cost_usd'] / a['cost_usd']:.3f} of all-API online)"
    )


def _demo_recipe(folder: Path, sim: dict[str, Any], mode: str) -> Path:
    text = DEMO.read_text(encoding="utf-8")
    options = ", ".join(f"{k} = {v}" for k, v in sim.items())
    if options:
        text = text.replace("sim = { ", f"sim = {{ {options}, ", 1)
    if mode != "online":
        anchor = "max_concurrency = 16\n"
        text = text.replace(anchor, f'{anchor}mode = "{mode}"\nbatch_poll_s = 0.05\n', 1)
    path = folder / f"demo-{mode}-{len(sim)}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _build(folder: Path, sim: dict[str, Any], mode: str) -> tuple[dict[str, Any], dict[str, Any], float]:
    """(manifest ledger, estimate, seconds) of the demo built against a simulator with ``sim`` settings."""
    recipe_path = _demo_recipe(folder, sim, mode)
    work = folder / f"work-{mode}-{len(sim)}"
    started = time.monotonic()
    with SimServer(SimConfig(**DEMO_SIM, **sim)) as server:
        release = build_recipe(
            recipe_path, work_dir=work, base_url=server.base_url, progress=False, echo=lambda _m: None
        )
    seconds = time.monotonic() - started
    ledger = json.loads((release / "manifest.json").read_text(encoding="utf-8"))["data"]["ledger"]
    return ledger, estimate(load_recipe(recipe_path)), seconds


def _shares(ledger: dict[str, Any]) -> dict[tuple[str, str], float]:
    return {(r["stage"], r["model"]): r["cached_input_share"] for r in ledger["by_stage_model"]}


def part_demo() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        openai_ledger, openai_est, s1 = _build(folder, {}, "online")
        vllm_ledger, vllm_est, s2 = _build(folder, VLLM_SIM, "online")
        batch_ledger, _, s3 = _build(folder, VLLM_SIM, "batch")
    print()
    print(f"demo recipe against the simulator (builds: {s1:.0f} s, {s2:.0f} s, batch {s3:.0f} s)")
    print("cached-input share per stage, measured by the simulator vs expected by the estimate")
    head = (
        f"{'stage':<10}{'model':<12}{'OpenAI rule: measured':>23}{'expected':>10}"
        f"{'vLLM rule: measured':>22}{'expected':>10}"
    )
    print(head)
    print("-" * len(head))
    expected_openai = {(r["stage"], r["model"]): r["cache_share"] for r in openai_est["by_stage_model"]}
    expected_vllm = {(r["stage"], r["model"]): r["cache_share"] for r in vllm_est["by_stage_model"]}
    measured_openai, measured_vllm = _shares(openai_ledger), _shares(vllm_ledger)
    for key in sorted(measured_vllm, key=lambda k: (pipeline_rank(k[0]), k[1])):
        print(
            f"{key[0]:<10}{key[1]:<12}{measured_openai.get(key, 0):>23.1%}{expected_openai.get(key, 0):>10.1%}"
            f"{measured_vllm[key]:>22.1%}{expected_vllm.get(key, 0):>10.1%}"
        )
    to, tv = openai_ledger["totals"], vllm_ledger["totals"]
    print("-" * len(head))
    print(
        f"{'total':<22}{to['cached_input_share']:>23.1%}{openai_est['totals']['cache_share']:>10.1%}"
        f"{tv['cached_input_share']:>22.1%}{vllm_est['totals']['cache_share']:>10.1%}"
    )
    print()
    print("paid for the demo's data (manifest ledger), USD at the demo's made-up prices")
    print(f"  online, OpenAI-rule cache : {to['cost_usd']:.4f}  ({to['calls']} calls)")
    print(f"  online, vLLM-rule cache   : {tv['cost_usd']:.4f}  ({tv['calls']} calls)")
    tb = batch_ledger["totals"]
    modes = ", ".join(f"{m['mode']} {m['calls']} calls ${m['cost_usd']:.4f}" for m in batch_ledger["by_mode"])
    print(f"  batch,  vLLM-rule cache   : {tb['cost_usd']:.4f}  ({modes})")
    print(f"  ratio batch / online (same cache rule): x{tb['cost_usd'] / tv['cost_usd']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-demo", action="store_true", help="Only the v1 estimate (no builds).")
    args = parser.parse_args()
    part_v1()
    if not args.skip_demo:
        part_demo()


if __name__ == "__main__":
    main()
