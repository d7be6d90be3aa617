"""``wikipersona evaluate``: a thin click wrapper over ``wikipersona_data.api.evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from wikipersona_data.conventions import progress_option, quiet_library_bars, release_endpoint_options, want_progress
from wikipersona_data.errors import ConfigError, WikipersonaError


def _folds(text: str | None) -> frozenset[int] | None:
    if text is None:
        return None
    try:
        folds = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--unseen-folds {text!r}: expected fold numbers, e.g. 0 or 0,2") from None
    if not folds:
        raise ConfigError("--unseen-folds: give at least one fold number")
    return folds


@click.command()
@click.argument("release", type=click.Path(path_type=Path))
@click.option(
    "--policy",
    default=None,
    help="The model to evaluate: an http(s) base URL (with --policy-model), an endpoint of the recipe (with "
    "--policy-model), or a stage of the recipe (its endpoint and model).",
)
@click.option("--policy-model", default=None, help="Model name for --policy.")
@click.option(
    "--policy-profile",
    type=click.Choice(["openai", "vllm", "ollama", "llamacpp", "sim"]),
    default=None,
    help="Server kind of a --policy URL (default openai).",
)
@click.option("--policy-key-env", default=None, help="Environment variable holding the key of a --policy URL.")
@click.option("--policy-temperature", type=float, default=0.0, show_default=True)
@click.option("--policy-max-tokens", type=int, default=512, show_default=True)
@click.option("--policy-seed", type=int, default=0, show_default=True)
@click.option(
    "--prefix",
    "prefix_modes",
    default="none,name,description,inferred,fewshot",
    show_default=True,
    help="Prefix modes to evaluate, comma-separated.",
)
@click.option("--accuracy", is_flag=True, help="Also (or only) measure preference accuracy of a judge (item 2).")
@click.option(
    "--accuracy-judge",
    default=None,
    help="Judge whose preference accuracy is measured: URL, recipe endpoint or stage (default: stage judge).",
)
@click.option("--accuracy-model", default=None, help="Model name for --accuracy-judge.")
@click.option(
    "--accuracy-profile",
    type=click.Choice(["openai", "vllm", "ollama", "llamacpp", "sim"]),
    default=None,
    help="Server kind of an --accuracy-judge URL.",
)
@click.option(
    "--accuracy-key-env", default=None, help="Environment variable holding the key of an --accuracy-judge URL."
)
@click.option(
    "--accuracy-reward",
    default=None,
    help="A reward model whose preference accuracy is measured: a vLLM base URL (with --accuracy-reward-model) or "
    "an endpoint of the recipe.",
)
@click.option("--accuracy-reward-model", default=None, help="Model name for --accuracy-reward.")
@click.option(
    "--accuracy-reward-profile",
    type=click.Choice(["vllm", "llamacpp", "sim"]),
    default=None,
    help="Server kind of an --accuracy-reward URL (default vllm; llamacpp serves /rerank only).",
)
@click.option("--accuracy-reward-key-env", default=None, help="Environment variable with the key of its URL.")
@click.option(
    "--accuracy-reward-route",
    type=click.Choice(["classify", "pooling", "rerank"]),
    default=None,
    help="Route the reward model is served on (default: the recipe's reward band's, else classify).",
)
@release_endpoint_options
@click.option(
    "--work",
    type=click.Path(path_type=Path),
    default=None,
    help="Work dir holding the call cache (default: work/<recipe> beside RELEASE, the build's).",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Output folder (default RELEASE-eval-<model>)."
)
@click.option("--limit", type=int, default=None, help="Only the first N test pairs (by pair id), for a quick look.")
@click.option("--max-usd", type=float, default=None, help="Stop before spending more than this (USD).")
@click.option(
    "--cache",
    "cache_mode",
    type=click.Choice(["use", "only"]),
    default="use",
    show_default=True,
    help="Call cache: use it, or replay only (fail on a miss; nothing is sent).",
)
@click.option("--bootstrap", "replicates", type=int, default=1000, show_default=True, help="Bootstrap replicates.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option(
    "--unseen-folds",
    default=None,
    help="Persona folds the policy did not see in training (e.g. 0): adds seen vs unseen figures.",
)
@click.option("--no-charts", is_flag=True, help="Write eval.json and the table only.")
@click.option("--estimate", "estimate_only", is_flag=True, help="Only print the calls, tokens and cost; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print eval.json instead of the table.")
@progress_option
def evaluate(
    release: Path,
    policy: str | None,
    policy_model: str | None,
    policy_profile: str | None,
    policy_key_env: str | None,
    policy_temperature: float,
    policy_max_tokens: int,
    policy_seed: int,
    prefix_modes: str,
    accuracy: bool,
    accuracy_judge: str | None,
    accuracy_model: str | None,
    accuracy_profile: str | None,
    accuracy_key_env: str | None,
    accuracy_reward: str | None,
    accuracy_reward_model: str | None,
    accuracy_reward_profile: str | None,
    accuracy_reward_key_env: str | None,
    accuracy_reward_route: str | None,
    recipe_path: Path | None,
    base_url: str | None,
    work: Path | None,
    out: Path | None,
    limit: int | None,
    max_usd: float | None,
    cache_mode: str,
    replicates: int,
    seed: int,
    unseen_folds: str | None,
    no_charts: bool,
    estimate_only: bool,
    as_json: bool,
    progress: bool | None,
) -> int:
    """The paper's personalization evaluation on RELEASE's test pairs.

    With --policy: the policy answers every test question under each prefix mode, and the release's judge
    (grounded persona card, both orders, ties) compares its answer with the pair's chosen answer: win rates
    overall, personal vs divergent, per axis, per persona fold, and equity across personas, with bootstrap
    95 % intervals. With --accuracy: how often a judge prefers chosen over rejected under each prefix mode;
    with --accuracy-reward: how often a reward model scores chosen above rejected.

    Writes eval.json, outcomes.jsonl and charts into --out; prints the table. Calls are cached in the work
    dir: a rerun pays nothing.
    """
    from wikipersona_data.api import evaluate as run_evaluate
    from wikipersona_data.evaluate.run import EndpointOptions

    quiet_library_bars()
    if accuracy_judge is not None or accuracy_model is not None:
        accuracy = True
    result = run_evaluate(
        release,
        policy=EndpointOptions(policy, policy_model, policy_profile, policy_key_env) if policy else None,
        accuracy=EndpointOptions(accuracy_judge or "judge", accuracy_model, accuracy_profile, accuracy_key_env)
        if accuracy
        else None,
        reward=EndpointOptions(accuracy_reward, accuracy_reward_model, accuracy_reward_profile, accuracy_reward_key_env)
        if accuracy_reward
        else None,
        reward_route=accuracy_reward_route,
        prefix=prefix_modes,
        recipe=recipe_path,
        base_url=base_url,
        work=work,
        out=out,
        policy_temperature=policy_temperature,
        policy_max_tokens=policy_max_tokens,
        policy_seed=policy_seed,
        limit=limit,
        max_usd=max_usd,
        cache_mode=cache_mode,
        replicates=replicates,
        seed=seed,
        unseen_folds=_folds(unseen_folds),
        charts=not no_charts,
        estimate=estimate_only,
        progress=want_progress(progress),
        echo=lambda msg: click.echo(msg, err=True),
    )
    if as_json:
        click.echo(json.dumps(result.report, indent=2, ensure_ascii=False))
    else:
        for line in result.table:
            click.echo(line)
    for line in result.notes:
        click.echo(line, err=True)
    if estimate_only:
        return 0
    shown = ", ".join(["eval.json", "outcomes.jsonl", *result.charts.values()])
    click.echo(f"written to {result.out}: {shown}", err=True)
    if not result.complete:
        raise WikipersonaError(f"{result.out}: evaluation incomplete (pairs not scored; see the table and eval.json)")
    return 0
