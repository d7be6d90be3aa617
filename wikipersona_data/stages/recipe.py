"""The recipe: one declarative TOML file per dataset version (alignment-handbook style).

A build is a function of (recipe, dump, LLM endpoints): the code holds no persona lists, paths, models
or counts. Validation is strict (unknown keys are errors) because a typo in a recipe would otherwise
silently fall back to a default and publish a different dataset. Every error is ONE line naming the
recipe file and the key path, e.g. ``builders/demo.toml: stages.judge.model: field required``.

Paths in ``[dump]`` are relative to the recipe file; ``package:demo`` names the bundled demo dump.
The ``[filters]`` table belongs to the verification filters: if ``wikipersona_data.verify.config``
defines ``FiltersConfig`` (a pydantic model) it validates the table, otherwise values are kept as given.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from wikipersona_data.errors import ConfigError
from wikipersona_data.release.manifest import KNOWN_LICENSES, SEMVER

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PACKAGE_PREFIX = "package:"
SIM_FIXED = ("host", "port", "allow_remote", "api_key")
"""Simulator settings a recipe may not set (see ``EndpointSpec._sim_stays_on_loopback``)."""


class _Strict(BaseModel):
    """Unknown keys and wrong types are errors: ``temperature = "0.0"`` is refused, not converted."""

    model_config = ConfigDict(extra="forbid", strict=True)


NonBlank = Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]


def _relative_path(value: str | None) -> str | None:
    """Dump paths go into the published manifest (the recipe text): never a path of the build machine."""
    if value is None or value.startswith(PACKAGE_PREFIX):
        return value
    if value.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", value):
        raise ValueError(f"{value!r} is absolute; give it relative to the recipe file (the recipe is published)")
    return value


class DumpSpec(_Strict):
    source: Literal["dump", "online"] = Field(
        default="dump",
        description="'dump': the files below; 'online': pages by title from the live wiki's Special:Export (the "
        "wiki is the one `name` starts with, e.g. enwiki; no download; revision ids go into the manifest).",
    )
    path: str | None = Field(
        default=None, description="Dump file (.xml.bz2), relative to the recipe, or 'package:demo' (source 'dump')."
    )
    index: str | None = Field(
        default=None, description="Multistream index file, relative to the recipe, or 'package:demo' (source 'dump')."
    )
    name: str = Field(description="Dump name recorded in the manifest, e.g. 'enwiki-20261101'.")
    date: str = Field(description="Dump date (YYYY-MM-DD), recorded in the manifest.")
    scan: str | None = Field(
        default=None, description="Table of `wikipersona scan` (jsonl/parquet): fame scores for auto selection."
    )

    @field_validator("path", "index", "scan")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        return _relative_path(value)

    @model_validator(mode="after")
    def _files_or_online(self) -> DumpSpec:
        if self.source == "dump" and (self.path is None or self.index is None):
            raise ValueError("path and index are required (or source = 'online': pages from the live wiki)")
        if self.source == "online":
            from wikipersona_data.wiki.online import wiki_of

            try:
                wiki_of(self.name)
            except Exception as err:  # InputError: a one-line reason
                raise ValueError(f"source 'online': name {err}") from None
        return self


class EndpointSpec(_Strict):
    # Lax on purpose: the LLM client adds per-endpoint settings here, some given as strings by design.
    model_config = ConfigDict(extra="forbid", strict=False)

    base_url: str = Field(default="", description="'' with profile 'sim' = start an embedded simulator.")
    profile: Literal["sim", "openai", "vllm", "ollama", "llamacpp"] = "openai"
    api_key_env: str = "OPENAI_API_KEY"
    alias: str | None = Field(default=None, description="Cache identity of the endpoint (defaults: 'sim' for sim).")
    max_concurrency: int = Field(default=16, ge=1)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    sim: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="SimConfig options of the embedded simulator (profile 'sim', no base_url)."
    )
    timeout_s: float | None = Field(
        default=None, gt=0, description="Total deadline of one request, body included; default per profile."
    )
    max_retry_seconds: float | None = Field(
        default=None, gt=0, description="Time budget of one call's retries; default per profile."
    )
    max_attempts: int = Field(default=6, ge=1, le=50, description="HTTP requests per call at most.")
    max_reply_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="Largest reply body read.")
    context_tokens: int | None = Field(
        default=None, ge=16, description="Server context size when the server cannot be asked (llama.cpp /props)."
    )
    json_schema: Literal["enforced", "instructed"] | None = Field(
        default=None, description="Override the profile: send response_format, or state the schema in the prompt."
    )
    mode: Literal["online", "batch", "offline"] = Field(
        default="online",
        description="online: one HTTP request per call; batch: the OpenAI Batch API (/v1/files, /v1/batches), "
        "in rounds, at the batch price; offline: the build writes the pending requests and stops, for "
        "`wikipersona batch export` / `vllm run-batch` / `wikipersona batch import` (docs/batch.md).",
    )
    preflight: Literal["start", "first_use"] = Field(
        default="start",
        description="start: the server is checked before stage 1 (fail in seconds); first_use: just before the "
        "first request sent to it, so a server only a later stage needs (a reward model's GPU) need not run "
        "until then, nor in a run that finds that stage's calls in the cache.",
    )
    batch_poll_s: float = Field(default=30.0, gt=0, description="Seconds between two looks at a running batch.")
    batch_max_requests: int = Field(
        default=50_000, ge=1, le=50_000, description="Requests per batch input file (the OpenAI limit: 50,000)."
    )
    batch_max_bytes: int = Field(
        default=200 * 1024 * 1024,
        ge=1024,
        le=200 * 1024 * 1024,
        description="Bytes per batch input file (the OpenAI limit: 200 MB).",
    )
    batch_max_enqueued_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Prompt tokens of this endpoint's batches in progress at once, per model (the provider's "
        "'enqueued token limit' of your usage tier; set it below that limit, as it is counted by our estimate). "
        "Unset: batches are submitted at once and one the provider refuses for its queue is submitted again "
        "when an earlier one finishes.",
    )

    @model_validator(mode="after")
    def _batch_needs_a_batch_api(self) -> EndpointSpec:
        """Refused at load, not after the first round's requests were collected: vLLM, llama.cpp and Ollama
        have no ``/v1/batches`` (an offline ``vllm run-batch`` is ``mode = "offline"``)."""
        from wikipersona_data.llm.profiles import get_profile

        if self.mode == "batch" and not get_profile(self.profile).batch_api:
            raise ValueError(
                f"mode 'batch' needs a server with the OpenAI Batch API (/v1/batches); profile {self.profile!r} "
                'has none: use mode = "offline" (vllm run-batch, docs/batch.md) or "online"'
            )
        return self

    @field_validator("sim")
    @classmethod
    def _sim_stays_on_loopback(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Where the embedded simulator listens and its key are not a recipe's to say (a recipe may come
        from a release someone else made): always 127.0.0.1, a free port, no key."""
        for key in SIM_FIXED:
            if key in value:
                raise ValueError(
                    f"{key!r} cannot be set from a recipe: the embedded simulator always listens on 127.0.0.1 "
                    "at a free port, without a key (run `wikipersona llm-sim` yourself for anything else)"
                )
        return value


class PriceSpec(_Strict):
    """USD per 1M tokens."""

    input: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    output: float = Field(ge=0)


class StageSpec(_Strict):
    endpoint: str
    model: str
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    frequency_penalty: float | None = Field(
        default=None,
        ge=-2,
        le=2,
        description="Penalty on tokens by how often they already appear (every OpenAI-compatible server takes "
        "it); breaks a small model's loops ('2.2.2.2...'). Unset: not sent.",
    )
    max_tokens: int = Field(default=1024, ge=1)
    max_reasks: int = Field(default=2, ge=0, le=5)


class EmbedSpec(_Strict):
    endpoint: str
    model: str


class RewardSpec(_Strict):
    """The optional reward band (the paper's S4): score every candidate with a reward model, keep ``band`` of
    them of comparable score, and run the diversity selection on those only (``stages/reward.py``)."""

    endpoint: str
    model: str
    route: Literal["classify", "pooling", "rerank"] = Field(
        default="classify", description="Route that serves the model (llm/reward.py); rerank: a reranker's score."
    )
    score_index: int = Field(default=0, ge=0, le=1023, description="Element of the returned vector that is the score.")
    band: int = Field(ge=2, le=256, description="Candidates per question kept in the band (the paper: 20 of 50).")
    band_position: Literal["tightest", "median"] = Field(
        default="tightest",
        description="'tightest': the window of `band` ranked scores with the smallest spread (the paper's code); "
        "'median': the window centred on the median score.",
    )


class StagesSpec(_Strict):
    personas: StageSpec | None = Field(default=None, description="Needed only if an axis uses auto_select.")
    describe: StageSpec
    questions: StageSpec
    respond: StageSpec
    judge: StageSpec
    prefixes: StageSpec
    embed: EmbedSpec
    reward: RewardSpec | None = Field(
        default=None, description="Optional: the reward band between respond and selection."
    )


STAGE_NAMES: tuple[str, ...] = tuple(StagesSpec.model_fields)
"""The recipe's ``[stages.X]`` specs: the LLM calls the registry's stages declare (``stages/registry.py``)."""


class AutoSelectSpec(_Strict):
    """Ask the LLM for candidate people per category; keep living, famous, evidenced ones."""

    candidates: int = Field(default=5, ge=1, description="Titles asked for per category.")
    keep: int = Field(default=1, ge=1, description="Personas kept per category.")
    min_fame: float = Field(default=0.0, ge=0)


class CategorySpec(_Strict):
    name: NonBlank
    personas: list[str] = Field(default_factory=list, description="Wikipedia titles (redirects are followed).")
    key_terms: list[str] = Field(
        default_factory=list, description="Words an evidence sentence must contain (auto selection); default: name."
    )


class AxisSpec(_Strict):
    name: NonBlank
    categories: list[CategorySpec] = Field(
        min_length=1, description="At least two in a recipe (checked by Recipe): divergent pairs need them."
    )
    auto_select: AutoSelectSpec | None = None

    @model_validator(mode="after")
    def _unique_categories(self) -> AxisSpec:
        names = [c.name for c in self.categories]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate category names in axis {self.name!r}")
        return self


class CountsSpec(_Strict):
    """How much to make. Upper bounds are sanity limits far above any real recipe (the paper: 100 + 100
    questions, 50 candidates): a typo such as ``candidates_generated = 1000000000`` is refused at load in
    one line instead of exhausting memory while the first stage schedules its calls (issue 11: 23 GB and
    an OOM kill before ``--max-usd`` could stop anything)."""

    personal_questions: int = Field(default=100, ge=1, le=10_000)
    divergent_questions: int = Field(default=100, ge=1, le=10_000)
    question_batch: int = Field(default=20, ge=1, le=200)
    max_question_batches: int = Field(
        default=0, ge=0, le=10_000, description="0 = 2 x the batches needed without losses."
    )
    candidates_generated: int = Field(default=8, ge=2, le=256)
    candidates_kept: int = Field(default=4, ge=2, le=64)
    description_max_sentences: int = Field(
        default=80, ge=5, le=5_000, description="Article sentences shown to describe."
    )
    inference_shots: int = Field(
        default=4, ge=1, le=200, description="Train pairs shown to the persona-inference call."
    )
    fewshot_shots: int = Field(
        default=2, ge=1, le=100, description="Train (question, chosen) pairs in the few-shot prefix."
    )

    @model_validator(mode="after")
    def _kept_le_generated(self) -> CountsSpec:
        if self.candidates_kept > self.candidates_generated:
            raise ValueError("candidates_kept must be <= candidates_generated")
        return self


class SeedsSpec(_Strict):
    """Every random choice has its own seed; LLM calls send ``seed = <stage seed> + sample_idx``."""

    split: int = 24
    personas: int = 0
    describe: int = 0
    questions: int = 0
    respond: int = 0
    judge: int = 0
    select: int = 0
    prefixes: int = 0
    folds: int = 0
    sim: int = Field(default=0, description="Seed of the embedded simulator (profile 'sim' only).")


class JudgeSpec(_Strict):
    persona_view: Literal["name", "description", "both"] = "description"
    rejected: Literal["random", "worst"] = "random"
    both_orders: bool = True
    allow_ties: bool = True


class SplitSpec(_Strict):
    personal_test_fraction: float = Field(default=0.5, gt=0, lt=1)
    divergent_test_fraction: float = Field(default=0.5, gt=0, lt=1)
    persona_folds: int = Field(default=5, ge=2)


class Recipe(_Strict):
    """A validated recipe. ``source`` / ``text`` / ``sha256`` are filled by :func:`load_recipe`."""

    version: str
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    pretty_name: str
    description: str = Field(default="", description="One paragraph for the dataset card (what this build is for).")
    fictional_people: bool = Field(
        default=False,
        description="The dump's people are invented (e.g. the demo dump): the card says so and links to no "
        "Wikipedia page, since none exists for them.",
    )
    license: str = "cc-by-sa-4.0"
    dump: DumpSpec
    endpoints: dict[str, EndpointSpec] = Field(min_length=1)
    prices: dict[str, PriceSpec] = Field(default_factory=dict)
    stages: StagesSpec
    axes: list[AxisSpec] = Field(min_length=1)
    counts: CountsSpec = CountsSpec()
    seeds: SeedsSpec = SeedsSpec()
    judge: JudgeSpec = JudgeSpec()
    split: SplitSpec = SplitSpec()
    filters: dict[str, Any] = Field(default_factory=dict)
    stage_filters: dict[str, list[str | dict[str, Any]]] = Field(
        default_factory=dict,
        description="Per stage, its filters in order, each a name or a table {name, parameters} "
        "(verify/listing.py); a stage not listed runs its default filters.",
    )

    # filled by load_recipe, not part of the TOML
    source: Path | None = Field(default=None, exclude=True)
    text: str = Field(default="", exclude=True)
    sha256: str = Field(default="", exclude=True)

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not SEMVER.match(value):  # the manifest's rule: no leading zeros, ASCII digits only
            raise ValueError(f"must be a semantic version X.Y.Z without leading zeros, got {value!r}")
        return value

    @field_validator("license")
    @classmethod
    def _license(cls, value: str) -> str:
        if value not in KNOWN_LICENSES:
            known = ", ".join(KNOWN_LICENSES)
            raise ValueError(f"unknown license {value!r}: Wikipedia text needs a share-alike license, one of {known}")
        return value

    @model_validator(mode="after")
    def _references(self) -> Recipe:
        for stage in STAGE_NAMES:
            spec = getattr(self.stages, stage)
            if spec is not None and spec.endpoint not in self.endpoints:
                raise ValueError(f"stages.{stage}.endpoint: unknown endpoint {spec.endpoint!r}")
        if "temperature" not in self.stages.judge.model_fields_set:
            self.stages.judge.temperature = 0.0  # a judge samples nothing: same input, same verdict
        self._check_reward()
        if any(a.auto_select for a in self.axes) and self.stages.personas is None:
            raise ValueError("stages.personas: required when an axis uses auto_select")
        names = [a.name for a in self.axes]
        if len(set(names)) != len(names):
            raise ValueError("axes: duplicate axis names")
        for axis in self.axes:
            if axis.auto_select is None and not any(c.personas for c in axis.categories):
                raise ValueError(f"axes.{axis.name}: no personas listed and no auto_select")
        return self

    def _check_reward(self) -> None:
        from wikipersona_data.llm.profiles import get_profile

        spec = self.stages.reward
        if spec is None:
            return
        generated, kept = self.counts.candidates_generated, self.counts.candidates_kept
        if spec.band > generated:
            raise ValueError(
                f"stages.reward.band: {spec.band} is more than counts.candidates_generated ({generated}); "
                "the band keeps some of the generated candidates"
            )
        if spec.band < kept:
            raise ValueError(
                f"stages.reward.band: {spec.band} is less than counts.candidates_kept ({kept}); the diversity "
                "selection picks the kept candidates from inside the band"
            )
        profile = self.endpoints[spec.endpoint].profile
        if spec.route not in get_profile(profile).reward_routes:
            raise ValueError(
                f"stages.reward.route: endpoint {spec.endpoint!r} has profile {profile!r}, which serves no "
                f"/{spec.route} reward route (use a 'vllm' endpoint)"
            )

    # -- derived views -------------------------------------------------
    def stage(self, name: str) -> StageSpec:
        spec = getattr(self.stages, name)
        if spec is None:
            raise ConfigError(f"{self.source}: stages.{name}: not configured")
        return spec

    def axis(self, name: str) -> AxisSpec:
        for axis in self.axes:
            if axis.name == name:
                return axis
        raise KeyError(name)

    def dump_paths(self) -> tuple[Path, Path]:
        return _resolve(self, "path"), _resolve(self, "index")

    def scan_path(self) -> Path | None:
        return _resolve(self, "scan") if self.dump.scan else None


def _resolve(recipe: Recipe, key: str) -> Path:
    value: str | None = getattr(recipe.dump, key)
    where = f"{recipe.source}: dump.{key}"
    if value is None:
        raise ConfigError(f"{where}: not set (dump.source is {recipe.dump.source!r}: pages come from the live wiki)")
    if value.startswith(PACKAGE_PREFIX):
        bundle = value[len(PACKAGE_PREFIX) :]
        if bundle != "demo":
            raise ConfigError(f"{where}: unknown bundled dump {value!r} (known: 'package:demo')")
        from wikipersona_data.demo import paths

        if key == "scan":
            raise ConfigError(f"{where}: the demo dump has no bundled scan table")
        path = Path(paths.DEMO_DUMP if key == "path" else paths.DEMO_INDEX)
    else:
        base = recipe.source.parent if recipe.source else Path.cwd()
        path = (base / value).resolve()
    if not path.is_file():
        raise ConfigError(f"{where}: file not found: {path}")
    return path


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def _first_error(err: ValidationError) -> str:
    """The first problem as 'key.path: message (got value)'; one line is enough to fix one thing at a time."""
    first = err.errors()[0]
    msg = first["msg"].removeprefix("Value error, ")
    loc = _loc(first["loc"])
    if first["type"] == "missing":
        return f"{loc}: field required"
    if first["type"] == "extra_forbidden":
        return f"{loc}: unknown key"
    if first["type"] == "value_error" and re.match(r"^[\w.]+: ", msg):  # a cross-field check names its own key
        return msg if not first["loc"] else f"{loc}.{msg}"
    value = first.get("input")
    if isinstance(value, str | int | float | bool) and first["type"] != "value_error":
        msg = f"{msg} (got {value!r})"
    return f"{loc}: {msg}"


def _validate_filters(recipe: Recipe, source: Path) -> None:
    from wikipersona_data.verify.config import FiltersConfig

    try:
        validated = FiltersConfig.model_validate(recipe.filters)
    except ValidationError as err:
        raise ConfigError(f"{source}: filters.{_first_error(err)}") from None
    recipe.filters = validated.model_dump()


def parse_recipe(text: str, source: Path) -> Recipe:
    """Validate recipe text; ``source`` is used for messages and relative paths."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: invalid TOML: {err}") from None
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_first_error(err)}") from None
    recipe.source = source
    recipe.text = text
    recipe.sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    _validate_filters(recipe, source)
    if recipe.stage_filters:
        from wikipersona_data.stages.registry import check_stage_filters  # the registry imports this module

        check_stage_filters(recipe)
    _check_manifest_facts(recipe, source)
    for axis in recipe.axes:
        if len(axis.categories) < 2:  # warned, not refused: a one-category axis is legal but yields no divergence
            print(
                f"warning: {source}: axes.{axis.name}.categories: only one category; its 'divergent' pairs compare "
                "people of the same category",
                file=sys.stderr,
            )
    return recipe


def _check_manifest_facts(recipe: Recipe, source: Path) -> None:
    """Put the recipe's facts through the manifest models now, so what the release writer would refuse at the
    end (an absolute path or a key in the recipe text, a version or license the manifest rejects) is refused
    before any work, in one line."""
    from wikipersona_data.release import manifest as mf

    try:
        data = mf.ManifestData(
            name=recipe.pretty_name,
            version=recipe.version,
            recipe=mf.Recipe(name=recipe.name, sha256=recipe.sha256, text=recipe.text),
            dump=mf.Dump(name=recipe.dump.name, date=recipe.dump.date),
            seeds=recipe.seeds.model_dump(),
            license=recipe.license,
        )
        mf.Manifest(data=data)
    except ValidationError as err:
        first = err.errors()[0]
        msg = first["msg"].removeprefix("Value error, ")
        loc = _loc(first["loc"])
        raise ConfigError(f"{source}: the release manifest would refuse this recipe ({loc}): {msg}") from None


def load_recipe(path: str | Path, *, check_dump: bool = True) -> Recipe:
    """Read and validate a recipe file, and (unless told not to, e.g. for ``estimate``) check that the
    dump files it names exist."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: recipe file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{source}: cannot read recipe: {err}") from None
    recipe = parse_recipe(text, source)
    if check_dump:
        if recipe.dump.source == "dump":
            recipe.dump_paths()
        recipe.scan_path()
    return recipe
