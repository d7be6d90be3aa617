"""The JSONL store of one stage: a journal while working, sorted rows and rejects when done.

Layout under ``work/<recipe>/<stage>/``:

- ``journal.jsonl``: one line per finished *unit of work* (e.g. one question's candidates), appended
  and flushed as soon as the unit is done. A SIGKILL can only truncate the last line, which is then
  ignored on load, so a unit is either wholly done or redone (its LLM calls replay from the cache).
- ``rows.jsonl`` / ``rejects.jsonl``: the stage's output, rewritten atomically (temp file + rename)
  at the end of the stage, sorted by id with sorted keys, so equal inputs give equal bytes.

A unit whose rejects include an LLM failure is not considered done: the next run retries it (the
failed attempts replay from the cache for free, HTTP failures were never cached).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from wikipersona_data import redact
from wikipersona_data.fileio import canonical_json, iter_jsonl, iter_jsonl_lines, write_jsonl
from wikipersona_data.stages.rows import RejectRow

RowT = TypeVar("RowT", bound=BaseModel)

RETRIED_REASONS = frozenset({"llm_failure"})


def dumps(row: BaseModel | dict[str, Any]) -> str:
    """Canonical JSON line: sorted keys, no ASCII escaping, no spaces that vary; secrets replaced by a
    marker (journals and rejects hold raw, unfiltered text; see ``wikipersona_data.redact``)."""
    data = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
    text = canonical_json(data)
    redactor = redact.active()
    if redactor.needs_scrub(text) or "\\u" in text:
        text = canonical_json(redactor.scrub_value(data))
    return text


def read_jsonl(path: Path, model: type[RowT]) -> list[RowT]:
    """Rows of a finished stage file (written atomically, so every line is whole)."""
    return list(iter_rows(path, model))


def iter_rows(path: Path, model: type[RowT]) -> Iterator[RowT]:
    """Rows of a finished stage file one at a time, for passes that need each row once (reports, ledgers):
    memory stays at one row whatever the size of the build."""
    if path.is_file():
        for _, line in iter_jsonl_lines(path):
            yield model.model_validate_json(line)


class StoredRows(Generic[RowT]):
    """A finished stage's rows, left on disk: iterated (as often as needed) one row at a time from its
    ``rows.jsonl``, in the order the stage returned them (sorted by id). What the runner hands on instead of
    the list once no later stage reads the rows (issue 12 item 6: memory bounded by the largest stage in use,
    not by the whole build)."""

    def __init__(self, path: Path, model: type[RowT]) -> None:
        self.path = path
        self.model = model
        self._len: int | None = None

    def __iter__(self) -> Iterator[RowT]:
        return iter_rows(self.path, self.model)

    def __len__(self) -> int:
        if self._len is None:
            self._len = sum(1 for _ in iter_jsonl_lines(self.path)) if self.path.is_file() else 0
        return self._len

    def __repr__(self) -> str:
        return f"StoredRows({str(self.path)!r}, {self.model.__name__})"


class StageStore(Generic[RowT]):
    """Journal + output files of one stage; ``id_field`` names the row id used for sorting."""

    def __init__(self, work_dir: Path, stage: str, model: type[RowT], id_field: str) -> None:
        self.stage = stage
        self.dir = work_dir / stage
        self.model = model
        self.id_field = id_field
        self.journal_path = self.dir / "journal.jsonl"
        self.rows_path = self.dir / "rows.jsonl"
        self.rejects_path = self.dir / "rejects.jsonl"
        self._handle: Any = None

    # -- journal -------------------------------------------------------
    def load_units(self) -> dict[str, tuple[list[RowT], list[RejectRow]]]:
        """Finished units from the journal; a truncated last line (killed mid-write) is skipped."""
        units: dict[str, tuple[list[RowT], list[RejectRow]]] = {}
        if not self.journal_path.is_file():
            return units
        for entry in iter_jsonl(self.journal_path, skip_invalid=True):  # only a kill's torn line is invalid
            try:
                rows = [self.model.model_validate(r) for r in entry["rows"]]
                rejects = [RejectRow.model_validate(r) for r in entry["rejects"]]
            except (ValueError, KeyError, TypeError):
                continue
            if any(r.reason in RETRIED_REASONS for r in rejects):
                units.pop(entry["unit"], None)
                continue
            units[entry["unit"]] = (rows, rejects)
        return units

    def record_unit(self, unit: str, rows: list[RowT], rejects: list[RejectRow]) -> None:
        """Append one finished unit and flush it to the OS, so a kill right after keeps it."""
        if self._handle is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._handle = self.journal_path.open("a", encoding="utf-8", newline="\n")
        entry = {
            "unit": unit,
            "rows": [r.model_dump(mode="json") for r in rows],
            "rejects": [r.model_dump() for r in rejects],
        }
        self._handle.write(dumps(entry) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    # -- output --------------------------------------------------------
    def write_output(self, rows: Iterable[RowT], rejects: Iterable[RejectRow]) -> None:
        """The stage's final rows and rejects, sorted, atomically replaced."""
        self.close()
        ordered = sorted(rows, key=lambda r: getattr(r, self.id_field))
        write_jsonl(self.rows_path, (dumps(r) for r in ordered))
        ordered_rejects = sorted(rejects, key=lambda r: (r.id, r.reason, r.detail))
        write_jsonl(self.rejects_path, (dumps(r) for r in ordered_rejects))

    def read_output(self) -> list[RowT]:
        return read_jsonl(self.rows_path, self.model)
