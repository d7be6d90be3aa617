"""``wikipersona audit``: how far do people agree with the release's LLM judge? (issue 14, item 3)

``export`` writes an annotation sheet (``sheet.csv`` and ``sheet.jsonl``, the same rows) for a seeded
sample of test pairs: the persona card the judge was given (supported claims with their evidence
sentence ids and the article revision), the question, and the pair's two answers in a seeded random
order labelled A and B, with an empty ``choice`` column (A, B or tie). The sheet carries no judge
verdict, no judge agreement, no pair id and no candidate id: nothing an annotator could use to find out
which answer the judge chose.

The sheet id ``vX.Y.Z:<data digest>:seed=S:n=N`` binds the sheet to the release's data files (the
sha256 of every parquet shard, as recorded in the manifest and checked by ``verify``) and says how to
redraw the sample, so ``import`` recomputes which item is which pair and which letter was the chosen
answer; the sheet holds no mapping to tamper with. A patch release (the audit's own bump) keeps the data
files, so a sheet stays valid for it and a later annotator can still be imported.

``import`` reads one or more filled sheets (each choice column is one annotator), maps A/B back to
chosen/rejected, and computes raw agreement and Cohen's kappa (``release/kappa.py``) between every
annotator and the judge, and between every two annotators, overall and per axis ("personal" for personal
questions). Kappa is computed on the labels as shown (A, B, tie): in chosen/rejected terms the judge's
label is always "chosen", which makes kappa 0 (or undefined) by construction whatever people answered;
as shown, the random order makes the judge's labels vary and the chance term meaningful. The figures are
written into a new patch version of the release (manifest ``judge_audit``, a card section, a changelog
entry), written by the release writer, so checksums and card are redone exactly as for a build.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wikipersona_data.errors import ConfigError, InputError
from wikipersona_data.fileio import canonical_json
from wikipersona_data.release import manifest as mf
from wikipersona_data.release.kappa import cohen_kappa, raw_agreement

COLUMNS = ("sheet_id", "item_id", "persona", "persona_card", "question", "answer_A", "answer_B", "choice")
LABELS = ("A", "B", "tie")
SHEET_ID = re.compile(r"^v(?P<version>\d+\.\d+\.\d+):(?P<digest>[0-9a-f]{16}):seed=(?P<seed>-?\d+):n=(?P<n>\d+)$")
PERSONAL = "personal"  # the group of personal questions (they have no axis)


@dataclass(frozen=True)
class Item:
    """One sampled test pair as shown: ``chosen_is`` is the letter the pair's chosen answer got."""

    item_id: str
    pair: dict[str, Any]
    chosen_is: str

    @property
    def group(self) -> str:
        return self.pair["axis"] or PERSONAL


def data_digest(manifest: mf.Manifest) -> str:
    """sha256 of the release's data files (path and sha256 of every parquet shard); cards and charts excluded."""
    files = {p: e.sha256 for p, e in manifest.data.files.items() if p.startswith("data/")}
    if not files:
        raise InputError("manifest.json lists no data files (not a release?)")
    return hashlib.sha256(canonical_json(files).encode("utf-8")).hexdigest()


def sheet_id(manifest: mf.Manifest, seed: int, n: int) -> str:
    return f"{manifest.tag}:{data_digest(manifest)[:16]}:seed={seed}:n={n}"


def draw(test_pairs: list[dict[str, Any]], digest: str, seed: int, n: int) -> list[Item]:
    """The seeded sample, in annotation order, with each item's A/B order (same seed -> same sheet)."""
    if n < 1:
        raise ConfigError(f"--sample {n}: must be at least 1")
    ordered = sorted(test_pairs, key=lambda r: r["pair_id"])
    if n > len(ordered):
        raise ConfigError(f"--sample {n}: the release has only {len(ordered)} test pairs")
    rng = random.Random(seed)
    picks = rng.sample(range(len(ordered)), n)
    items = []
    for index in picks:
        pair = ordered[index]
        chosen_is = "B" if rng.random() < 0.5 else "A"
        item_id = "i-" + hashlib.sha256(f"{digest}\x1f{seed}\x1f{pair['pair_id']}".encode()).hexdigest()[:12]
        items.append(Item(item_id=item_id, pair=pair, chosen_is=chosen_is))
    return items


def _card(persona: dict[str, Any]) -> dict[str, Any]:
    """What the judge is told about the persona (stages/judge.py ``persona_card``: refuted claims left out),
    plus where the evidence is: sentence ids of the article at the recorded revision."""
    claims = [c for c in persona["claims"] or [] if c["supported"] is not False]

    def of(kind: str) -> list[dict[str, Any]]:
        return [{"text": c["text"], "evidence": list(c["evidence"] or [])} for c in claims if c["kind"] == kind]

    return {
        "name": persona["name"],
        "background": of("background"),
        "preferences": of("preference"),
        "source": f"{persona['wiki_url']} (revision {persona['wiki_revision_id']})",
    }


def _card_text(card: dict[str, Any]) -> str:
    lines = [card["name"]]
    for title, key in (("Background", "background"), ("Preferences", "preferences")):
        lines.append(f"{title}:")
        lines += [f"- {c['text']} [evidence: sentence {', '.join(c['evidence']) or 'none'}]" for c in card[key]]
    lines.append(f"Source: {card['source']}")
    return "\n".join(lines)


def _answer(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m["content"] for m in messages)


def sheet_rows(items: list[Item], personas: dict[str, dict[str, Any]], sid: str) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        pair = item.pair
        chosen, rejected = _answer(pair["chosen"]), _answer(pair["rejected"])
        a, b = (chosen, rejected) if item.chosen_is == "A" else (rejected, chosen)
        card = _card(personas[pair["persona_id"]])
        rows.append(
            {
                "sheet_id": sid,
                "item_id": item.item_id,
                "persona": pair["persona"],
                "persona_card": card,
                "question": _answer(pair["prompt"]),
                "answer_A": a,
                "answer_B": b,
                "choice": "",
            }
        )
    return rows


def load_verified(release: Path) -> tuple[mf.Manifest, dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Manifest and rows of a release that verifies (checksums checked, so the data digest is the data's)."""
    from wikipersona_data.release.extend import read_rows
    from wikipersona_data.release.verify import verify_release

    release = Path(release)
    manifest = mf.Manifest.load(release / "manifest.json")
    checked = verify_release(release)
    if not checked.ok:
        failed = checked.failures[0]
        raise InputError(f"{release}: fails verify ({failed.name}: {failed.detail}); audit a release that verifies")
    pairs, personas = read_rows(release)
    return manifest, pairs, personas


@dataclass(frozen=True)
class Exported:
    sheet_id: str
    csv: Path
    jsonl: Path
    items: int


def export_sheet(release: Path, *, sample: int, seed: int, out: Path | None = None) -> Exported:
    """Write ``sheet.csv`` and ``sheet.jsonl`` into ``out`` (default ``<release>-audit-seedS-nN`` beside it).

    Existing sheets are never overwritten: an annotator may be filling them in.
    """
    release = Path(release)
    manifest, pairs, personas = load_verified(release)
    digest = data_digest(manifest)
    items = draw(pairs["test"], digest, seed, sample)
    sid = sheet_id(manifest, seed, sample)
    rows = sheet_rows(items, {p["persona_id"]: p for p in personas}, sid)
    out = Path(out) if out else release.with_name(f"{release.name}-audit-seed{seed}-n{sample}")
    csv_path, jsonl_path = out / "sheet.csv", out / "sheet.jsonl"
    for path in (csv_path, jsonl_path):
        if path.exists():
            raise InputError(f"{path}: exists (maybe being filled in); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "persona_card": _card_text(row["persona_card"])})
    csv_path.write_text(buffer.getvalue(), encoding="utf-8")
    jsonl_path.write_text(
        "".join(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n" for row in rows), encoding="utf-8"
    )
    return Exported(sheet_id=sid, csv=csv_path, jsonl=jsonl_path, items=len(rows))


# ---------------------------------------------------------------- import


def read_sheet(path: Path) -> list[dict[str, Any]]:
    """Rows of a filled sheet, ``.csv`` or ``.jsonl`` (one line per problem, naming the file)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # spreadsheet programs often save CSV with a BOM
    except FileNotFoundError:
        raise InputError(f"{path}: no such sheet") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the sheet ({err})") from None
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path} line {number}: not JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path} line {number}: a row must be a JSON object")
            rows.append(row)
    elif path.suffix.lower() == ".csv":
        try:
            rows = list(csv.DictReader(io.StringIO(text)))
        except csv.Error as err:
            raise InputError(f"{path}: not a readable CSV ({err})") from None
    else:
        raise InputError(f"{path}: a sheet is a .csv or .jsonl file")
    if not rows:
        raise InputError(f"{path}: empty sheet (no rows)")
    return rows


def _label(value: Any, where: str) -> str:
    text = "" if value is None else str(value).strip()
    for label in LABELS:
        if text.lower() == label.lower():
            return label
    if not text:
        raise InputError(f"{where}: no choice (write A, B or tie)")
    raise InputError(f"{where}: unknown label {text!r} (expected A, B or tie)")


@dataclass
class Annotations:
    """Every annotator's label (as shown: A, B, tie) per item id, and the sheet id they share."""

    sheet_id: str
    by_annotator: dict[str, dict[str, str]]


def read_annotations(sheets: list[Path], columns: tuple[str, ...]) -> Annotations:
    """Each (sheet, choice column) is one annotator, named after the sheet (and the column if several)."""
    found_id: str | None = None
    by_annotator: dict[str, dict[str, str]] = {}
    for path in sheets:
        rows = read_sheet(path)
        for column in ("sheet_id", "item_id", *columns):
            if column not in rows[0]:
                raise InputError(f"{path}: no {column!r} column")
        ids = {str(r.get("sheet_id") or "").strip() for r in rows}
        if len(ids) > 1:
            raise InputError(f"{path}: rows of several sheets ({', '.join(sorted(ids))})")
        sid = ids.pop()
        if found_id is not None and sid != found_id:
            raise InputError(
                f"{path}: sheet {sid!r} differs from {sheets[0]}'s {found_id!r}; import one sheet's copies"
            )
        found_id = sid
        seen: set[str] = set()
        for number, row in enumerate(rows, 1):
            item = str(row.get("item_id") or "").strip()
            if item in seen:
                raise InputError(f"{path} row {number}: duplicate item_id {item!r}")
            seen.add(item)
        for column in columns:
            name = path.stem if len(columns) == 1 else f"{path.stem}:{column}"
            if name in by_annotator:
                raise InputError(f"{path}: annotator {name!r} given twice (rename one sheet)")
            by_annotator[name] = {
                str(row["item_id"]).strip(): _label(row.get(column), f"{path} row {number} {column}")
                for number, row in enumerate(rows, 1)
            }
    assert found_id is not None
    return Annotations(sheet_id=found_id, by_annotator=by_annotator)


def match_sample(annotations: Annotations, manifest: mf.Manifest, test_pairs: list[dict[str, Any]]) -> list[Item]:
    """Redraw the sheet's sample from the release; refuse a sheet of other data, missing or foreign rows."""
    match = SHEET_ID.match(annotations.sheet_id)
    if not match:
        raise InputError(f"sheet id {annotations.sheet_id!r} is not one `wikipersona audit export` writes")
    digest = data_digest(manifest)
    if match["digest"] != digest[:16]:
        raise InputError(
            f"sheet {annotations.sheet_id!r} is of another release (data {match['digest']}, "
            f"this release {manifest.tag} has data {digest[:16]})"
        )
    items = draw(test_pairs, digest, int(match["seed"]), int(match["n"]))
    expected = {i.item_id for i in items}
    for name, labels in annotations.by_annotator.items():
        foreign = sorted(set(labels) - expected)
        if foreign:
            raise InputError(f"annotator {name}: item_id {foreign[0]!r} is not in sheet {annotations.sheet_id!r}")
        missing = [i.item_id for i in items if i.item_id not in labels]
        if missing:
            raise InputError(
                f"annotator {name}: {len(missing)} of {len(items)} rows missing, first item_id {missing[0]!r}"
            )
    return items


def _figures(a: list[str], b: list[str]) -> mf.AuditFigures:
    kappa = cohen_kappa(a, b)
    return mf.AuditFigures(
        items=len(a), agreement=round(raw_agreement(a, b), 6), kappa=None if kappa is None else round(kappa, 6)
    )


def _by_group(items: list[Item], a: list[str], b: list[str]) -> dict[str, mf.AuditFigures]:
    out = {"overall": _figures(a, b)}
    for group in sorted({i.group for i in items}):
        idx = [k for k, i in enumerate(items) if i.group == group]
        out[group] = _figures([a[k] for k in idx], [b[k] for k in idx])
    return out


def agreement(items: list[Item], annotations: Annotations) -> mf.JudgeAudit:
    """The audit figures (see the module doc for why kappa is computed on the labels as shown)."""
    match = SHEET_ID.match(annotations.sheet_id)
    assert match is not None
    judge = [i.chosen_is for i in items]
    names = list(annotations.by_annotator)
    labels = {name: [annotations.by_annotator[name][i.item_id] for i in items] for name in names}
    choices = {}
    for name in names:
        mapped = [
            "tie" if lab == "tie" else ("chosen" if lab == i.chosen_is else "rejected")
            for lab, i in zip(labels[name], items, strict=True)
        ]
        choices[name] = {k: round(mapped.count(k) / len(items), 6) for k in ("chosen", "rejected", "tie")}
    return mf.JudgeAudit(
        sheet_id=annotations.sheet_id,
        seed=int(match["seed"]),
        sample=int(match["n"]),
        annotators=names,
        vs_judge={name: _by_group(items, labels[name], judge) for name in names},
        between_annotators={
            f"{x} / {y}": _by_group(items, labels[x], labels[y]) for x, y in itertools.combinations(names, 2)
        },
        choices=choices,
    )


def _kappa_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def summary(audit: mf.JudgeAudit) -> str:
    """The changelog line: what was measured and that the data did not change."""
    parts = []
    for name in audit.annotators:
        f = audit.vs_judge[name]["overall"]
        parts.append(f"{name} agrees {f.agreement:.3f}, kappa {_kappa_text(f.kappa)}")
    return (
        f"Judge audit (`wikipersona audit import`): {len(audit.annotators)} annotator(s) labelled "
        f"{audit.sample} sampled test pairs of sheet {audit.sheet_id} without the judge's verdict; "
        f"vs the judge: {'; '.join(parts)}. Data files unchanged."
    )


def table(audit: mf.JudgeAudit) -> list[str]:
    lines = [f"{'annotator':<24} {'vs':<12} {'group':<12} {'items':>5} {'agreement':>9} {'kappa':>7}"]
    rows = [(n, "judge", g) for n, g in audit.vs_judge.items()]
    rows += [(n, "annotator", g) for n, g in audit.between_annotators.items()]
    for name, against, groups in rows:
        for group, f in groups.items():
            lines.append(
                f"{name:<24} {against:<12} {group:<12} {f.items:>5} {f.agreement:>9.3f} {_kappa_text(f.kappa):>7}"
            )
    return lines


def import_sheets(
    release: Path,
    sheets: list[Path],
    *,
    columns: tuple[str, ...] = ("choice",),
    out: Path | None = None,
    echo: Callable[[str], None] = print,
) -> tuple[Path, mf.JudgeAudit, str]:
    """Compute the audit and write it as a patch version of ``release``; return (folder, audit, version)."""
    from wikipersona_data.release.versions import bump, with_entry
    from wikipersona_data.release.writer import refuse_to_clobber, write_release

    release = Path(release)
    if not sheets:
        raise ConfigError("give at least one filled sheet")
    if not columns:
        raise ConfigError("--annotator-col: give at least one column")
    manifest, pairs, personas = load_verified(release)
    annotations = read_annotations([Path(s) for s in sheets], columns)
    items = match_sample(annotations, manifest, pairs["test"])
    audit = agreement(items, annotations)
    version = bump(manifest.data.version, "patch")
    out = Path(out) if out else release.with_name(f"{release.name}-v{version}")
    if out.resolve() == release.resolve():
        raise ConfigError(f"--out {out}: is the release being audited; write the new version elsewhere")
    refuse_to_clobber(out)
    data = manifest.data.model_copy(update={"version": version, "judge_audit": audit, "files": {}})
    data = with_entry(data, summary=summary(audit), previous=manifest.data)
    path = write_release(out, pairs=pairs, personas=personas, manifest=mf.Manifest(data=data, run=manifest.run))
    echo(f"release {manifest.tag} -> v{version} written to {path} (judge audit added; data files unchanged)")
    return path, audit, version
