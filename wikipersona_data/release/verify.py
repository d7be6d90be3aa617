"""Re-check a release folder before anyone trusts or uploads it.

Every check is independent and reports ok/FAIL with a one-line detail, so one broken file does not
hide the other problems. Checks that need something unreadable (no manifest, an unreadable
parquet) fail with the reason instead of crashing. ``publish`` runs this first and refuses a
release with any failure.
"""

from __future__ import annotations

import fnmatch
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from wikipersona_data.errors import WikipersonaError
from wikipersona_data.release.files import NotRegularFile, open_regular, read_bytes, read_text, refuse_special
from wikipersona_data.release.manifest import Manifest, find_leaks
from wikipersona_data.release.tables import SPLITS, contract, has_reward_band, schema_mismatch, split_glob

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PAIR_COLUMNS = ["pair_id", "persona_id", "question_id", "question_type", "axis", "prompt", "chosen", "rejected"]
PAIR_COLUMNS += ["judge_agreement"]
PAIR_COLUMNS += ["persona"]
PERSONA_COLUMNS = ["persona_id", "name"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    skipped: bool = False
    """Could not run because what it needs is broken (reported once, by the check that found it): not a failure."""

    @property
    def status(self) -> str:
        return "ok" if self.ok else "skip" if self.skipped else "FAIL"


@dataclass
class VerifyReport:
    release: Path
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and not c.skipped]

    @property
    def skipped(self) -> list[Check]:
        return [c for c in self.checks if c.skipped]

    def lines(self) -> list[str]:
        width = max((len(c.name) for c in self.checks), default=0)
        out = [f"{c.status:<4} {c.name:<{width}}  {c.detail}" for c in self.checks]
        verdict = "release OK"
        if not self.ok:
            verdict = f"release FAILED: {len(self.failures)} of {len(self.checks)} checks failed"
            verdict += f", {len(self.skipped)} skipped" if self.skipped else ""
        return [*out, f"{verdict} ({self.release})"]

    def as_json(self) -> dict[str, Any]:
        """For ``verify --json``: the verdict and every check with its status (ok, FAIL, skip)."""
        return {
            "release": str(self.release),
            "ok": self.ok,
            "failed": len(self.failures),
            "skipped": len(self.skipped),
            "checks": [{"name": c.name, "status": c.status, "detail": c.detail} for c in self.checks],
        }


class _Fail(Exception):
    """A check's failure detail."""


class _Skip(Exception):
    """A check that cannot run: what it needs failed another check (which names the cause)."""


@dataclass
class _Release:
    """What the checks share: the manifest and the rows, loaded once (only the columns checks need)."""

    root: Path
    manifest: Manifest | None = None
    manifest_error: str | None = None
    files: dict[str, list[str]] = field(default_factory=dict)  # (config/split) -> relative parquet paths
    pairs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    personas: list[dict[str, Any]] | None = None
    read_errors: dict[str, str] = field(default_factory=dict)


def verify_release(path: Path) -> VerifyReport:
    """Run every check on the release folder at ``path``."""
    root = Path(path)
    report = VerifyReport(release=root)
    if not root.is_dir():
        report.checks.append(Check("release folder", False, f"{root} is not a directory"))
        return report
    try:
        refuse_special(root)  # a FIFO would block the first read forever: refuse before reading anything
    except NotRegularFile as err:
        report.checks.append(Check("regular files", False, str(err)))
        return report
    rel = _load(root)
    checks: list[tuple[str, Callable[[_Release], str]]] = [
        ("manifest", _check_manifest),
        ("checksums", _check_checksums),
        ("schema", _check_schema),
        ("row counts", _check_counts),
        ("unique pair_id", _check_unique_ids),
        ("personas referenced", _check_personas_exist),
        ("message shapes", _check_shapes),
        ("column values", _check_values),
        ("chosen != rejected", _check_chosen_differs),
        ("identity leaks", _check_leaks),
        ("duplicate questions", _check_duplicate_questions),
        ("split disjointness", _check_split_disjoint),
        ("card", _check_card),
        ("endpoints", _check_endpoints),
        ("no paths or keys", _check_no_secrets),
        ("text cells", _check_cells),
        ("no empty split", _check_no_empty_split),
        ("loads with datasets", _check_loads),
    ]
    for name, check in checks:
        try:
            detail = check(rel)
            report.checks.append(Check(name, True, detail))
        except _Fail as err:
            report.checks.append(Check(name, False, str(err)))
        except _Skip as err:
            report.checks.append(Check(name, False, str(err), skipped=True))
        except Exception as err:  # a damaged release must give a report, never a traceback
            report.checks.append(Check(name, False, f"could not run: {type(err).__name__}: {_first_line(err)}"))
    return report


# ---------------------------------------------------------------------------------------------- loading


def _load(root: Path) -> _Release:
    rel = _Release(root=root)
    try:
        rel.manifest = Manifest.load(root / "manifest.json")
    except WikipersonaError as err:
        rel.manifest_error = str(err)
    for config, splits in SPLITS.items():
        for split in splits:
            rel.files[f"{config}/{split}"] = sorted(
                p.relative_to(root).as_posix() for p in root.glob(split_glob(config, split))
            )
    for split in SPLITS["pairs"]:
        rows = _read(rel, f"pairs/{split}", PAIR_COLUMNS)
        if rows is not None:
            rel.pairs[split] = rows
    rel.personas = _read(rel, "personas/train", PERSONA_COLUMNS)
    return rel


def _read(rel: _Release, key: str, columns: list[str]) -> list[dict[str, Any]] | None:
    rows: list[dict[str, Any]] = []
    for name in rel.files[key]:
        try:
            with open_regular(rel.root / name) as fh:
                rows += pq.read_table(fh, columns=columns).to_pylist()
        except Exception as err:  # any pyarrow/OS error: the file is unusable, say which and why
            rel.read_errors[name] = f"{type(err).__name__}: {_first_line(err)}"
            return None
    return rows


def _num_rows(rel: _Release, name: str) -> int:
    try:
        with open_regular(rel.root / name) as fh:
            return pq.ParquetFile(fh).metadata.num_rows
    except Exception as err:
        raise _Fail(f"{name}: not a readable parquet file ({type(err).__name__}: {_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def _need_manifest(rel: _Release) -> Manifest:
    if rel.manifest is None:
        raise _Skip("skipped: no valid manifest.json (see manifest)")
    return rel.manifest


def _need_rows(rel: _Release) -> tuple[dict[str, list[dict]], list[dict]]:
    if rel.read_errors:
        raise _Skip(f"skipped: {next(iter(rel.read_errors))} is unreadable (see schema)")
    if rel.personas is None or set(rel.pairs) != set(SPLITS["pairs"]):
        raise _Skip("skipped: data files missing (see schema)")
    return rel.pairs, rel.personas


# ---------------------------------------------------------------------------------------------- checks


def _check_manifest(rel: _Release) -> str:
    if rel.manifest is None:
        raise _Fail(rel.manifest_error or "manifest.json missing")
    return f"version {rel.manifest.version}, {len(rel.manifest.data.files)} files listed"


def _check_checksums(rel: _Release) -> str:
    from wikipersona_data.release.writer import sha256_file

    manifest = _need_manifest(rel)
    listed = manifest.data.files
    on_disk = {
        p.relative_to(rel.root).as_posix()
        for sub in ("data", "charts")
        for p in (rel.root / sub).rglob("*")
        if p.is_file()
    }
    for name, entry in sorted(listed.items()):
        path = rel.root / name
        if not path.is_file():
            raise _Fail(f"{name}: listed in manifest.json but missing")
        size = path.stat().st_size
        if size != entry.bytes:
            raise _Fail(f"{name}: {size} bytes, manifest says {entry.bytes} (truncated or replaced)")
        if sha256_file(path) != entry.sha256:
            raise _Fail(f"{name}: sha256 differs from manifest.json (file corrupted or modified)")
    extra = sorted(on_disk - set(listed))
    if extra:
        raise _Fail(f"{extra[0]}: file not listed in manifest.json")
    if not any(name.startswith("data/") for name in listed):
        raise _Fail("manifest.json lists no data files")
    return f"{len(listed)} files match sha256 and size"


def _check_schema(rel: _Release) -> str:
    checked = 0
    for key, names in sorted(rel.files.items()):
        config = key.split("/")[0]
        if not names:
            raise _Fail(f"no parquet file for {key} (expected {split_glob(*key.split('/'))})")
        for name in names:
            try:
                with open_regular(rel.root / name) as fh:
                    schema = pq.read_schema(fh)
            except Exception as err:
                raise _Fail(f"{name}: not a readable parquet file ({type(err).__name__}: {_first_line(err)})") from None
            problem = schema_mismatch(schema, contract(config, has_reward_band(rel.manifest)))
            if problem:
                raise _Fail(f"{name}: {problem}")
            checked += 1
    return f"{checked} parquet files have the contract columns and types"


def _check_counts(rel: _Release) -> str:
    manifest = _need_manifest(rel)
    pairs, personas = _need_rows(rel)
    for names in rel.files.values():
        for name in names:
            rows = _num_rows(rel, name)
            listed = manifest.data.files.get(name)
            if listed is not None and listed.rows != rows:
                raise _Fail(f"{name}: {rows} rows, manifest says {listed.rows}")
    counts = manifest.data.counts
    types = Counter(r["question_type"] for rows in pairs.values() for r in rows)
    actual = {
        "personas": len(personas),
        "pairs_train": len(pairs["train"]),
        "pairs_test": len(pairs["test"]),
        "personal": types["personal"],
        "divergent": types["divergent"],
    }
    for key, value in actual.items():
        if counts.get(key) != value:
            raise _Fail(f"counts.{key} in manifest.json is {counts.get(key)}, data has {value}")
    return ", ".join(f"{k} {v}" for k, v in actual.items())


def _check_unique_ids(rel: _Release) -> str:
    pairs, personas = _need_rows(rel)
    seen: dict[str, str] = {}
    for split, rows in sorted(pairs.items()):
        for r in rows:
            if r["pair_id"] in seen:
                raise _Fail(f"pair_id {r['pair_id']!r} appears twice ({seen[r['pair_id']]} and {split})")
            seen[r["pair_id"]] = split
    dup = [pid for pid, n in Counter(p["persona_id"] for p in personas).items() if n > 1]
    if dup:
        raise _Fail(f"persona_id {dup[0]!r} appears twice in personas")
    return f"{len(seen)} pair ids, {len(personas)} persona ids, all unique"


def _check_personas_exist(rel: _Release) -> str:
    pairs, personas = _need_rows(rel)
    known = {p["persona_id"]: p["name"] for p in personas}
    for split, rows in sorted(pairs.items()):
        for r in rows:
            if r["persona_id"] not in known:
                raise _Fail(f"pair {r['pair_id']!r} ({split}) references unknown persona_id {r['persona_id']!r}")
            if r["persona"] != known[r["persona_id"]]:
                raise _Fail(
                    f"pair {r['pair_id']!r} ({split}): persona {r['persona']!r} is not the name of "
                    f"{r['persona_id']!r} ({known[r['persona_id']]!r})"
                )
    return f"every pair's persona_id is in personas ({len(known)})"


def _check_shapes(rel: _Release) -> str:
    pairs, _ = _need_rows(rel)
    for split, rows in sorted(pairs.items()):
        for r in rows:
            where = f"pair {r['pair_id']!r} ({split})"
            prompt = r["prompt"] or []
            if not prompt or prompt[-1]["role"] != "user" or any(m["role"] not in ("system", "user") for m in prompt):
                raise _Fail(f"{where}: prompt must be user messages (optionally after a system message)")
            for column in ("chosen", "rejected"):
                messages = r[column] or []
                if not messages or any(m["role"] != "assistant" for m in messages):
                    raise _Fail(f"{where}: {column} must be [{{role: assistant, content}}]")
            for column in ("prompt", "chosen", "rejected"):
                if any(not (m["content"] or "").strip() for m in r[column]):
                    raise _Fail(f"{where}: empty content in {column}")
    return "prompt = user turns, chosen/rejected = assistant turns, no empty content"


def _check_values(rel: _Release) -> str:
    pairs, _ = _need_rows(rel)
    for split, rows in sorted(pairs.items()):
        for r in rows:
            where = f"pair {r['pair_id']!r} ({split})"
            if r["question_type"] not in ("personal", "divergent"):
                raise _Fail(f"{where}: question_type {r['question_type']!r} is not personal or divergent")
            if (r["question_type"] == "divergent") != bool(r["axis"]):
                raise _Fail(f"{where}: axis {r['axis']!r} must be set exactly for divergent questions")
            agreement = r["judge_agreement"]
            if agreement is None or not 0.0 <= agreement <= 1.0:
                raise _Fail(f"{where}: judge_agreement {agreement!r} is not in 0..1")
    return "question_type, axis and judge_agreement are in range"


def _check_chosen_differs(rel: _Release) -> str:
    pairs, _ = _need_rows(rel)
    for split, rows in sorted(pairs.items()):
        for r in rows:
            if _norm(_text(r["chosen"])) == _norm(_text(r["rejected"])):
                raise _Fail(f"pair {r['pair_id']!r} ({split}): chosen and rejected are the same text")
    return "chosen and rejected differ in every pair"


def _check_leaks(rel: _Release) -> str:
    pairs, personas = _need_rows(rel)
    from wikipersona_data.textsafety import fold

    patterns = {p["persona_id"]: name_pattern(p["name"] or "") for p in personas}
    # the same match on folded text: look-alike letters and invisible characters do not hide a name
    # (the full name case-insensitively on case-folded text, the surname as written: see name_pattern)
    folded = {p["persona_id"]: name_pattern(fold(p["name"] or "")) for p in personas}
    full = {p["persona_id"]: name_pattern(fold((p["name"] or "").casefold()), surname=False) for p in personas}
    for split, rows in sorted(pairs.items()):
        for r in rows:
            pid, prompt = r["persona_id"], _text(r["prompt"])
            pattern = patterns.get(pid)
            if pattern is not None and (match := pattern.search(prompt)):
                raise _Fail(f"pair {r['pair_id']!r} ({split}): prompt names the persona ({match.group(0)!r})")
            for hidden, text in ((folded.get(pid), fold(prompt)), (full.get(pid), fold(prompt.casefold()))):
                if hidden is not None and (match := hidden.search(text)):
                    raise _Fail(
                        f"pair {r['pair_id']!r} ({split}): prompt names the persona behind look-alike or "
                        f"invisible characters ({match.group(0)!r} once folded)"
                    )
    return "no prompt contains its persona's name or surname (also once look-alikes are folded)"


def _check_duplicate_questions(rel: _Release) -> str:
    pairs, _ = _need_rows(rel)
    for split, rows in sorted(pairs.items()):
        seen: dict[tuple[str, str], str] = {}
        for r in rows:
            key = (r["persona_id"], _norm(_text(r["prompt"])))
            if key in seen:
                raise _Fail(
                    f"persona {r['persona_id']!r} has the same question twice in {split} "
                    f"(pairs {seen[key]!r} and {r['pair_id']!r})"
                )
            seen[key] = r["pair_id"]
    return "no persona has a question twice within a split"


def _check_split_disjoint(rel: _Release) -> str:
    pairs, _ = _need_rows(rel)
    by_question: dict[str, set[str]] = defaultdict(set)
    for split, rows in pairs.items():
        for r in rows:
            by_question[r["question_id"]].add(split)
    both = sorted(q for q, splits in by_question.items() if len(splits) > 1)
    if both:
        raise _Fail(f"question_id {both[0]!r} is in both train and test ({len(both)} questions overlap)")
    return f"{len(by_question)} questions, none in both train and test"


def _check_card(rel: _Release) -> str:
    from datasets import Features
    from huggingface_hub import DatasetCard

    path = rel.root / "README.md"
    if not path.is_file():
        raise _Fail("README.md missing")
    try:
        data = DatasetCard(read_text(path)).data.to_dict()
    except Exception as err:
        raise _Fail(f"README.md front matter does not parse: {_first_line(err)}") from None
    configs = {c.get("config_name"): c for c in data.get("configs") or []}
    if set(configs) != {"pairs", "personas"}:
        raise _Fail(f"README.md configs are {sorted(configs)}, expected pairs and personas")
    if not configs["pairs"].get("default"):
        raise _Fail("README.md: config pairs is not marked default: true")
    for config, entry in configs.items():
        data_files = entry.get("data_files")
        specs = data_files if isinstance(data_files, list) else [{"split": "train", "path": data_files}]
        declared = {s.get("split", "train"): s.get("path") for s in specs}
        if set(declared) != set(SPLITS[config]):
            raise _Fail(f"README.md config {config}: splits {sorted(declared)}, expected {list(SPLITS[config])}")
        for split, pattern in declared.items():
            patterns = pattern if isinstance(pattern, list) else [pattern]
            matched = sorted(
                p.relative_to(rel.root).as_posix()
                for p in (rel.root / "data").rglob("*.parquet")
                if any(fnmatch.fnmatchcase(p.relative_to(rel.root).as_posix(), pat) for pat in patterns)
            )
            if matched != rel.files[f"{config}/{split}"] or not matched:
                raise _Fail(f"README.md config {config}/{split}: {patterns} matches {matched or 'no files'}")
    unchecked: list[str] = []
    infos = data.get("dataset_info") or []
    infos = infos if isinstance(infos, list) else [infos]
    for info in infos:
        config = info.get("config_name")
        if config not in configs:
            raise _Fail(f"README.md dataset_info for unknown config {config!r}")
        try:
            features = Features._from_yaml_list(info.get("features") or [])
        except Exception as err:
            raise _Fail(f"README.md dataset_info {config}: features do not parse ({_first_line(err)})") from None
        if features != Features.from_arrow_schema(contract(config, has_reward_band(rel.manifest))):
            raise _Fail(f"README.md dataset_info {config}: features differ from the column contract")
        for split in info.get("splits") or []:
            files = rel.files.get(f"{config}/{split.get('name')}", [])
            if any(f in rel.read_errors for f in files):
                unchecked.append(f"{config}/{split.get('name')}")  # unreadable: schema reports it, once
                continue
            rows = sum(_num_rows(rel, f) for f in files)
            if split.get("num_examples") != rows:
                raise _Fail(
                    f"README.md dataset_info {config}/{split.get('name')}: num_examples "
                    f"{split.get('num_examples')}, files have {rows}"
                )
    if {i.get("config_name") for i in infos} != set(configs):
        raise _Fail("README.md dataset_info does not describe every config")
    if unchecked:
        skipped = ", ".join(unchecked)
        return f"front matter parses; configs match the files; row counts of {skipped} not checked (unreadable)"
    return "front matter parses; configs pairs (default) and personas match the files; dataset_info counts match"


def _check_no_secrets(rel: _Release) -> str:
    for name in ("manifest.json", "README.md"):
        path = rel.root / name
        if not path.is_file():
            continue
        leaks = find_leaks(read_bytes(path).decode("utf-8", errors="replace"))
        if leaks:
            raise _Fail(f"{name}: {leaks[0]}")
    return "manifest.json and README.md carry no absolute paths or key-looking strings"


def _check_endpoints(rel: _Release) -> str:
    """The recipe's endpoints must be the ones the manifest and card declare: a recipe edited to send calls
    (and a key) elsewhere stands out. (Consistency only: whoever edits all three can make them agree,
    which is why ``extend`` never takes endpoints from a release at all.)"""
    import hashlib

    from wikipersona_data.release.manifest import redact_base_url

    manifest = _need_manifest(rel)
    text = manifest.data.recipe.text
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != manifest.data.recipe.sha256:
        raise _Fail("manifest.json: recipe.text does not match recipe.sha256")
    try:
        endpoints = tomllib.loads(text).get("endpoints") or {}
    except tomllib.TOMLDecodeError as err:
        raise _Fail(f"manifest.json: recipe.text is not TOML ({_first_line(err)})") from None
    if not isinstance(endpoints, dict) or not all(isinstance(v, dict) for v in endpoints.values()):
        raise _Fail("manifest.json: recipe [endpoints] is not a table of tables")
    declared = {e.name: e for e in manifest.data.endpoints}
    if set(endpoints) != set(declared):
        raise _Fail(f"recipe endpoints {sorted(endpoints)} are not the ones the manifest declares {sorted(declared)}")
    card = read_text(rel.root / "README.md") if (rel.root / "README.md").is_file() else ""
    for name, spec in sorted(endpoints.items()):
        have = declared[name]
        profile = spec.get("profile", "openai")
        if profile != have.profile:
            raise _Fail(f"endpoint {name!r}: recipe profile {profile!r}, declared {have.profile!r}")
        url = spec.get("base_url") or ""
        if url and redact_base_url(str(url)) != have.base_url_redacted:
            raise _Fail(
                f"endpoint {name!r}: the recipe sends calls to {redact_base_url(str(url))!r}, "
                f"the manifest declares {have.base_url_redacted!r}"
            )
        if card and f"{name} ({have.profile}, {have.base_url_redacted})" not in card:
            raise _Fail(f"endpoint {name!r}: README.md does not declare it as in manifest.json")
    return f"{len(endpoints)} endpoint(s): recipe, manifest and card agree"


def _check_cells(rel: _Release) -> str:
    """Every string of every row of every parquet file (nested ones too): no secret or key-shaped string,
    no control, bidi-override or invisible character (``wikipersona_data/textsafety.py``)."""
    from wikipersona_data.redact import active
    from wikipersona_data.textsafety import first_unsafe

    if rel.read_errors:  # the schema check names the unreadable file, once
        raise _Skip(f"skipped: {next(iter(rel.read_errors))} is unreadable (see schema)")
    redactor = active()
    cells = 0
    for name in sorted(n for names in rel.files.values() for n in names):
        path = rel.root / name
        offset = 0
        with open_regular(path) as fh:  # only regular files are read (a FIFO would block)
            for batch in pq.ParquetFile(fh).iter_batches(batch_size=512):
                for i, row in enumerate(batch.to_pylist()):
                    for where, text in _strings(row, ""):
                        cells += 1
                        found = redactor.find(text)
                        if found:
                            raise _Fail(f"{name} row {offset + i} {where}: carries {found}")
                        bad = first_unsafe(text)
                        if bad is not None:
                            raise _Fail(f"{name} row {offset + i} {where}: {bad[1]} at character {bad[0]}")
                offset += batch.num_rows
    return f"{cells} strings: no secret or key-shaped string, no control, bidi or invisible character"


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")


# ---------------------------------------------------------------------------------------------- helpers


def _check_no_empty_split(rel: _Release) -> str:
    """An empty split is not a release: ``datasets`` cannot load it (ArrowInvalid: BatchSize ...)."""
    _need_rows(rel)  # an unreadable file is reported once (schema); this check is skipped
    sizes = {}
    for key, names in sorted(rel.files.items()):
        sizes[key] = sum(_num_rows(rel, name) for name in names)
        if sizes[key] == 0:
            raise _Fail(f"{key}: no rows (an empty split cannot be loaded or trained on)")
    return ", ".join(f"{k} {v}" for k, v in sizes.items())


def _check_loads(rel: _Release) -> str:
    """Every config of the card loads with ``datasets.load_dataset`` from the local folder, as a user
    would load it (no network: a local folder; a throwaway cache so nothing outside is written)."""
    _need_rows(rel)
    import tempfile

    import datasets

    bars_were_off = datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()  # verify prints its own report; no bars on stderr
    verbosity = datasets.logging.get_verbosity()
    datasets.logging.set_verbosity_error()
    try:
        with tempfile.TemporaryDirectory(prefix="wikipersona-verify-") as cache:
            loaded = _load_configs(rel, datasets, cache)
    finally:
        datasets.logging.set_verbosity(verbosity)
        if not bars_were_off:
            datasets.utils.enable_progress_bars()
    return "; ".join(loaded)


def _load_configs(rel: _Release, datasets: Any, cache: str) -> list[str]:
    loaded = []
    for config, splits in SPLITS.items():
        try:
            ds = datasets.load_dataset(str(rel.root), config, cache_dir=cache)
        except Exception as err:
            name = type(err).__name__
            raise _Fail(f"load_dataset({rel.root.name!r}, {config!r}): {name}: {_first_line(err)}") from None
        missing = sorted(set(splits) - set(ds))
        if missing:
            raise _Fail(f"load_dataset({rel.root.name!r}, {config!r}): no split {missing[0]!r}")
        loaded.append(f"{config} " + "/".join(f"{split} {ds[split].num_rows}" for split in splits))
    return loaded


def _text(messages: list[dict] | None) -> str:
    return "\n".join((m.get("content") or "") for m in messages or [])


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def name_pattern(name: str, surname: bool = True) -> re.Pattern[str] | None:
    """Whole-word match of the full name (any case) or of the surname as written (3+ letters).

    The surname is matched case-sensitively because many surnames are common words ("Stone",
    "Gates", "Brown"): "a stone wall" is not a leak, "Stone's films" is.
    """
    parts = [p for p in re.split(r"\s+", name.strip()) if p]
    if not parts:
        return None
    alternatives = [rf"(?i:{re.escape(' '.join(parts))})"]
    last = parts[-1].strip(".,")
    if surname and len(parts) > 1 and len(last) >= 3:
        alternatives.append(re.escape(last))
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)")
