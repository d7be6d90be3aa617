"""``eval.json`` and the table printed on stdout.

The table follows the paper's comparison layout: one row per way of personalizing (prefix mode), columns for
the overall win rate, personal and divergent questions, personas seen and unseen in training, and equity
across personas; then win rates per axis and per persona fold, and preference accuracy. Every cell is the
figure and its bootstrap 95 % interval.
"""

from __future__ import annotations

from typing import Any

from wikipersona_data.evaluate.accuracy import TEMPLATE, load_eval_template
from wikipersona_data.evaluate.data import EvalRelease
from wikipersona_data.evaluate.endpoints import Target
from wikipersona_data.evaluate.winrate import Outcome

KINDS = {
    "win_rate": "policy win rate vs chosen",
    "accuracy": "preference accuracy (chosen preferred)",
    "reward": "reward-model accuracy (chosen scored higher)",
}


def _ledger(summary: dict[str, Any]) -> dict[str, Any]:
    """This run's calls: new (sent) and replayed from the cache, per ledger line; preflight apart."""
    lines = []
    for row in summary.get("by_stage_model", []):
        lines.append(
            {
                "stage": row["stage"],
                "model": row["model"],
                "calls": row["calls"],
                "new_calls": row["calls"] - row["cache_hits"],
                "cache_hits": row["cache_hits"],
                "cost_usd": row.get("cost_usd"),
            }
        )
    data = [r for r in lines if r["stage"] != "preflight"]
    return {
        "new_calls": sum(r["new_calls"] for r in data),
        "cache_hits": sum(r["cache_hits"] for r in data),
        "cost_usd": round(sum(r["cost_usd"] for r in data if r["cost_usd"] is not None), 6),
        "unpriced_models": sorted({r["model"] for r in data if r["cost_usd"] is None}),
        "preflight_calls": sum(r["calls"] for r in lines if r["stage"] == "preflight"),
        "by_stage_model": lines,
    }


def _failures(rows: list[Outcome]) -> dict[str, Any]:
    failed = [o for o in rows if o.score is None]
    return {
        "failed": len(failed),
        "first": failed[0].failure if failed else None,
        "truncated": sum(o.truncated for o in rows),
    }


def build_report(
    options: Any,
    release: EvalRelease,
    pairs: list[dict[str, Any]],
    targets: dict[str, Target],
    outcomes: dict[str, dict[str, list[Outcome]]],
    summaries: dict[str, dict[str, Any]],
    ledger: dict[str, Any],
) -> dict[str, Any]:
    from wikipersona_data.release.audit import data_digest

    recipe = release.recipe
    judge = recipe.stage("judge")
    failures = {kind: {mode: _failures(rows) for mode, rows in by_mode.items()} for kind, by_mode in outcomes.items()}
    report: dict[str, Any] = {
        "release": {
            "name": release.manifest.data.name,
            "version": release.manifest.data.version,
            "data_digest": data_digest(release.manifest)[:16],
            "test_pairs": len(release.test_pairs),
        },
        "pairs_evaluated": len(pairs),
        "limit": options.limit,
        "prefix_modes": list(options.modes),
        "bootstrap": {
            "replicates": options.replicates,
            "seed": options.seed,
            "method": "pairs redrawn with replacement within each persona; percentile interval 2.5-97.5",
        },
        "scores": "win 1, tie or orders disagreeing 0.5, loss 0 (both orders judged)",
        "win_rate": None,
        "accuracy": None,
        "reward": None,
    }
    if "policy" in targets:
        policy = targets["policy"]
        report["win_rate"] = {
            "policy": {
                "target": policy.shown,
                "model": policy.model,
                "temperature": options.policy_temperature,
                "max_tokens": options.policy_max_tokens,
                "seed": options.policy_seed,
            },
            "judge": {
                "model": judge.model,
                "temperature": judge.temperature,
                "max_tokens": judge.max_tokens,
                "persona_view": recipe.judge.persona_view,
                "both_orders": recipe.judge.both_orders,
                "allow_ties": recipe.judge.allow_ties,
                "template": release.judge_template(),
            },
            "unseen_folds": sorted(options.unseen_folds) if options.unseen_folds is not None else None,
            "failures": failures.get("win_rate", {}),
            "by_mode": summaries.get("win_rate", {}),
        }
    if "accuracy" in targets:
        target = targets["accuracy"]
        template = load_eval_template(TEMPLATE)
        report["accuracy"] = {
            "judge": {
                "target": target.shown,
                "model": target.model,
                "temperature": judge.temperature,
                "max_tokens": judge.max_tokens,
                "template": {"file": template.name, "sha256": template.sha256},
            },
            "failures": failures.get("accuracy", {}),
            "by_mode": summaries.get("accuracy", {}),
        }
    if "reward" in targets:
        target = targets["reward"]
        report["reward"] = {
            "model": {
                "target": target.shown,
                "model": target.model,
                "route": options.reward_route or "classify",
                "score_index": options.reward_score_index,
            },
            "scores": "chosen scored higher 1, equal 0.5, lower 0",
            "failures": failures.get("reward", {}),
            "by_mode": summaries.get("reward", {}),
        }
    report["complete"] = all(f["failed"] == 0 for by_mode in failures.values() for f in by_mode.values())
    report["run"] = _ledger(ledger)
    return report


def _cell(figure: dict[str, Any] | None) -> str:
    if not figure:
        return "-"
    low, high = figure["ci95"]
    return f"{figure['value']:.2f} [{low:.2f},{high:.2f}]"


def _grid(title: str, header: list[str], rows: list[tuple[str, list[str]]]) -> list[str]:
    widths = [max(len(h), *(len(cells[i]) for _, cells in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = [title, f"{'prefix':<12}" + "  ".join(f"{h:<{w}}" for h, w in zip(header, widths, strict=True))]
    for mode, cells in rows:
        lines.append(f"{mode:<12}" + "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)))
    return [*lines, ""]


def _section(kind: str, part: dict[str, Any]) -> list[str]:
    by_mode = part["by_mode"]
    modes = list(by_mode)
    seen = kind == "win_rate" and part.get("unseen_folds") is not None
    header = ["overall", "personal", "divergent"] + (["seen", "unseen"] if seen else [])
    if kind == "win_rate":
        header += ["persona std", "persona min", "personas <0.5"]
    rows = []
    for mode in modes:
        s = by_mode[mode]
        if s is None:
            rows.append((mode, ["-"] * len(header)))
            continue
        cells = [_cell(s["rate"]), _cell(s["by_type"]["personal"]), _cell(s["by_type"]["divergent"])]
        if seen:
            cells += [_cell(s["seen_unseen"]["seen"]), _cell(s["seen_unseen"]["unseen"])]
        if kind == "win_rate":
            e = s["equity"]
            cells += [_cell(e["std"]), _cell(e["min"]), _cell(e["share_below_half"])]
        rows.append((mode, cells))
    lines = _grid(f"{KINDS[kind]} (95 % bootstrap intervals)", header, rows)
    axes = sorted({a for s in by_mode.values() if s for a in s["by_axis"]})
    if axes:
        rows = [(m, [_cell((by_mode[m] or {}).get("by_axis", {}).get(a)) for a in axes]) for m in modes]
        lines += _grid(f"{KINDS[kind]} per axis (divergent questions)", axes, rows)
    folds = sorted({f for s in by_mode.values() if s for f in s["by_fold"]}, key=int)
    if kind == "win_rate" and folds:
        rows = [(m, [_cell((by_mode[m] or {}).get("by_fold", {}).get(f)) for f in folds]) for m in modes]
        lines += _grid(f"{KINDS[kind]} per persona fold", [f"fold {f}" for f in folds], rows)
    for mode, f in part["failures"].items():
        if f["failed"]:
            lines.append(f"{mode}: {f['failed']} pair(s) not scored (first: {f['first']})")
        if f.get("truncated"):
            lines.append(f"{mode}: {f['truncated']} answer(s) cut at --policy-max-tokens, judged as cut")
    return lines


def table_lines(report: dict[str, Any]) -> list[str]:
    r = report["release"]
    lines = [
        f"release {r['name']} v{r['version']}: {report['pairs_evaluated']} of {r['test_pairs']} test pairs"
        + (f" (--limit {report['limit']}: a quick look, not the release's figures)" if report["limit"] else ""),
    ]
    if report["win_rate"]:
        p, j = report["win_rate"]["policy"], report["win_rate"]["judge"]
        lines.append(f"policy {p['model']} ({p['target']}); judge {j['model']} (the release's, both orders, ties)")
    if report["accuracy"]:
        a = report["accuracy"]["judge"]
        lines.append(f"preference accuracy of {a['model']} ({a['target']})")
    if report["reward"]:
        m = report["reward"]["model"]
        lines.append(f"reward-model accuracy of {m['model']} ({m['target']}, /{m['route']})")
    lines.append("")
    for kind in ("win_rate", "accuracy", "reward"):
        if report[kind]:
            lines += _section(kind, report[kind])
    run = report["run"]
    unpriced = f" (no price for {', '.join(run['unpriced_models'])})" if run["unpriced_models"] else ""
    lines.append(
        f"calls: {run['new_calls']} new, {run['cache_hits']} from the cache, cost ${run['cost_usd']:.4f}{unpriced}"
    )
    if not report["complete"]:
        lines.append("INCOMPLETE: some pairs were not scored (see above); the figures cover the scored pairs only")
    return lines
