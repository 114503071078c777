# mypy: disallow-untyped-calls, disallow-any-generics, warn-return-any
"""Versioned code lists (CTCAE v5.0): lookups, the one loading service, and the reader of
NCI's spreadsheet.

Which version applies: the current version loaded into the database
(:class:`crf.models.CodeList`) if one was ever loaded, else the list shipped with the code
in ``crf/codelists/<file>.json`` (for CTCAE the terms relevant to spinal SBRT and surgery).

- :func:`codes`, :func:`current_version`, :func:`term`, :func:`terms`: lookups, cached per
  process. A load clears the loading process's cache when it commits; other processes see
  a new version within :data:`CACHE_SECONDS` (a code list changes a few times in a trial's
  life, never mid-form: a record stores the version it was validated against).
- :func:`code_list_load`: the only write. Administrators and data managers load a version
  once; a second load of the same version is refused; nothing is half-loaded.
- :func:`read_ctcae_file`: NCI's CTCAE v5.0 spreadsheet layout (columns MedDRA Code,
  MedDRA SOC, CTCAE Term, Grade 1..Grade 5, Definition; other columns ignored) as CSV or
  XLSX, into rows for :func:`code_list_load`. A file with any bad row is refused whole,
  with every problem and its row number.
"""

from __future__ import annotations

import csv
import json
import re
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from core.access import access_for
from core.audit import reason as audit_reason
from core.models import Role, User
from core.refusals import Invalid, NotAllowed, Refusal
from core.services import top_level
from crf.models import CodeList, CodeListTerm

__all__ = [
    "CACHE_SECONDS",
    "GRADES",
    "CodeListFileError",
    "InvalidCodeList",
    "Term",
    "UnknownCodeList",
    "VersionAlreadyLoaded",
    "clear_cache",
    "code_list_load",
    "codes",
    "current_version",
    "read_ctcae_file",
    "shipped",
    "term",
    "terms",
]

GRADES = (1, 2, 3, 4, 5)
CACHE_SECONDS = 300.0
MAX_ROWS = 10_000
CODE_MAX = 20
TEXT_MAX = 200
# A grade that does not exist for a term: NCI writes a dash.
_NO_GRADE = {"", "-", "–", "—"}  # the dashes NCI writes
_LIST_CODE = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,19}$")
_TERM_CODE = re.compile(r"^\S{1,20}$")
_MEDDRA = re.compile(r"^\d{8}$")


# --- errors ---------------------------------------------------------------------------------
class UnknownCodeList(KeyError):  # noqa: N818 - reads as the lookup's answer
    """No code list with that code, shipped or loaded."""


class InvalidCodeList(Invalid):
    """Rows that cannot be loaded (every problem listed); nothing was written."""

    code = "invalid_code_list"


class CodeListFileError(InvalidCodeList):
    """A spreadsheet that cannot be read as NCI's CTCAE layout; nothing was written."""

    code = "invalid_code_list_file"


class VersionAlreadyLoaded(Refusal):
    code = "code_list_version_loaded"


# --- a term ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """One term of a code list version. ``grades`` holds the descriptions of grades 1–5
    in order, ``None`` where a grade does not exist for the term."""

    list_code: str
    version: str
    code: str
    term: str
    term_nl: str
    soc: str
    definition: str
    grades: tuple[str | None, str | None, str | None, str | None, str | None]

    @property
    def label(self) -> str:
        """The term in the active language (Dutch label when there is one)."""
        if (get_language() or "nl").startswith("nl") and self.term_nl:
            return self.term_nl
        return self.term

    def grade(self, grade: int) -> str | None:
        """The description of ``grade`` (1–5), ``None`` where it does not exist."""
        if grade not in GRADES:
            raise ValueError(f"a grade is 1..5, not {grade!r}")
        return self.grades[grade - 1]

    @property
    def available_grades(self) -> tuple[int, ...]:
        return tuple(g for g in GRADES if self.grades[g - 1] is not None)

    @property
    def needs_specification(self) -> bool:
        """An "Other, specify" term: the event must be described in words."""
        return self.term.casefold().rstrip().endswith("other, specify")


@dataclass(frozen=True)
class _Version:
    code: str
    version: str
    terms: Mapping[str, Term]


# --- rows: one validation for the shipped file, a spreadsheet and the service --------------
def _text(value: Any) -> str:
    if value is None:
        return ""
    return " ".join(str(value).replace("\u00a0", " ").split())


def _grade_text(value: Any) -> str | None:
    text = _text(value)
    return None if text in _NO_GRADE else text


def _grades_of(row: Mapping[str, Any]) -> Mapping[Any, Any]:
    grades = row.get("grades")
    return grades if isinstance(grades, Mapping) else {}


def _clean_row(row: Mapping[str, Any], *, label: str, errors: list[str]) -> dict[str, Any] | None:
    """One row as stored (code, term, term_nl, soc, definition, grades {"1".."5"}), or
    None with its problems appended to ``errors``."""
    problems: list[str] = []
    code = _text(row.get("code"))
    term_text = _text(row.get("term"))
    soc = _text(row.get("soc"))
    if not code:
        problems.append(_("the code is missing"))
    elif not _TERM_CODE.match(code):
        problems.append(
            _("the code %(code)r is not a code of at most 20 characters") % {"code": code}
        )
    if not term_text:
        problems.append(_("the term is missing"))
    elif len(term_text) > TEXT_MAX:
        problems.append(_("the term is longer than %(max)d characters") % {"max": TEXT_MAX})
    if not soc:
        problems.append(_("the system organ class is missing"))
    elif len(soc) > TEXT_MAX:
        problems.append(
            _("the system organ class is longer than %(max)d characters") % {"max": TEXT_MAX}
        )
    term_nl = _text(row.get("term_nl"))
    if len(term_nl) > TEXT_MAX:
        problems.append(_("the Dutch term is longer than %(max)d characters") % {"max": TEXT_MAX})
    given = _grades_of(row)
    unknown = sorted(str(k) for k in given if str(k) not in {str(g) for g in GRADES})
    if unknown:
        problems.append(_("unknown grades %(grades)s (grades are 1 to 5)") % {"grades": unknown})
    grades = {str(g): _grade_text(given.get(str(g), given.get(g))) for g in GRADES}
    if all(v is None for v in grades.values()):
        problems.append(_("no grade has a description"))
    if problems:
        errors.append(f"{label} ({code or '?'}): " + "; ".join(problems) + ".")
        return None
    return {
        "code": code,
        "term": term_text,
        "term_nl": term_nl,
        "soc": soc,
        "definition": _grade_text(row.get("definition")) or "",  # NCI's "-": none
        "grades": grades,
    }


def _clean_rows(
    rows: Iterable[Mapping[str, Any]], *, labels: Sequence[str] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    errors: list[str] = []
    cleaned: list[dict[str, Any]] = []
    first_seen: dict[str, str] = {}
    for index, row in enumerate(rows):
        label = labels[index] if labels is not None else _("row %(n)d") % {"n": index + 1}
        if not isinstance(row, Mapping):
            errors.append(_("%(row)s: not a term.") % {"row": label})
            continue
        clean = _clean_row(row, label=label, errors=errors)
        if clean is None:
            continue
        if clean["code"] in first_seen:
            errors.append(
                _("%(row)s: code %(code)s appears twice (first at %(first)s).")
                % {"row": label, "code": clean["code"], "first": first_seen[clean["code"]]}
            )
            continue
        first_seen[clean["code"]] = label
        cleaned.append(clean)
    if not cleaned and not errors:
        errors.append(_("There are no terms to load."))
    return cleaned, errors


def _term(list_code: str, version: str, row: Mapping[str, Any]) -> Term:
    grades = row["grades"]
    return Term(
        list_code=list_code,
        version=version,
        code=row["code"],
        term=row["term"],
        term_nl=row.get("term_nl") or "",
        soc=row["soc"],
        definition=row.get("definition") or "",
        grades=(grades["1"], grades["2"], grades["3"], grades["4"], grades["5"]),
    )


# --- the shipped lists ----------------------------------------------------------------------
def _shipped_files() -> Iterator[Any]:
    folder = resources.files("crf").joinpath("codelists")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            yield entry


@cache
def _shipped_all() -> Mapping[str, _Version]:
    found: dict[str, _Version] = {}
    for entry in _shipped_files():
        data = json.loads(entry.read_text(encoding="utf-8"))
        code, version = data.get("code"), data.get("version")
        if not isinstance(code, str) or not _LIST_CODE.match(code):
            raise ValueError(f"crf/codelists/{entry.name}: 'code' is not a code list code")
        if not isinstance(version, str) or not _VERSION.match(version):
            raise ValueError(f"crf/codelists/{entry.name}: 'version' is missing or malformed")
        if not str(data.get("source") or "").strip():
            raise ValueError(f"crf/codelists/{entry.name}: 'source' is missing")
        if code in found:
            raise ValueError(f"crf/codelists/{entry.name}: a second file for list {code!r}")
        rows, errors = _clean_rows(data.get("terms") or [])
        if errors:
            raise ValueError(f"crf/codelists/{entry.name}: " + " ".join(errors))
        found[code] = _Version(
            code=code, version=version, terms={r["code"]: _term(code, version, r) for r in rows}
        )
    return found


def shipped(list_code: str) -> _Version:
    """The list shipped with the code (ignores the database)."""
    try:
        return _shipped_all()[list_code]
    except KeyError:
        raise UnknownCodeList(list_code) from None


def shipped_source(list_code: str) -> str:
    shipped(list_code)
    for entry in _shipped_files():
        data = json.loads(entry.read_text(encoding="utf-8"))
        if data.get("code") == list_code:
            return str(data["source"])
    raise UnknownCodeList(list_code)  # pragma: no cover - shipped() found it


# --- the lookups (database first, cached per process) ---------------------------------------
_cache: dict[str, tuple[float, _Version]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget the cached lists of this process (a load calls it when it commits)."""
    with _cache_lock:
        _cache.clear()


def _from_database(list_code: str) -> _Version | None:
    """The current loaded version, ``None`` when none was loaded. Raises DatabaseError when
    the table cannot be read (e.g. system checks before ``migrate``)."""
    # A savepoint of its own: a missing table must not break the caller's transaction.
    with transaction.atomic():
        current = CodeList.objects.filter(code=list_code, is_current=True).first()
        if current is None:
            return None
        rows = CodeListTerm.objects.filter(code_list=current).values(
            "code", "term", "term_nl", "soc", "definition", "grades"
        )
        terms = {r["code"]: _term(list_code, current.version, r) for r in rows}
    return _Version(code=list_code, version=current.version, terms=terms)


def _current(list_code: str) -> _Version:
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(list_code)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    try:
        loaded = _from_database(list_code)
    except DatabaseError:
        # No readable table (before migrate, database down): the shipped list, not cached.
        return shipped(list_code)
    if loaded is None:
        loaded = shipped(list_code)
    with _cache_lock:
        _cache[list_code] = (now, loaded)
    return loaded


def codes(list_code: str) -> frozenset[str]:
    """The term codes of the current version of ``list_code`` (UnknownCodeList, a
    KeyError, when there is no such list)."""
    return frozenset(_current(list_code).terms)


def current_version(list_code: str) -> str:
    """The version of ``list_code`` that applies now (e.g. ``"5.0"``)."""
    return _current(list_code).version


def term(list_code: str, code: str) -> Term | None:
    """One term of the current version, ``None`` when the code is not in it."""
    return _current(list_code).terms.get(str(code))


def terms(list_code: str) -> tuple[Term, ...]:
    """Every term of the current version, by system organ class and term."""
    return tuple(sorted(_current(list_code).terms.values(), key=lambda t: (t.soc, t.term)))


# --- the one write --------------------------------------------------------------------------
LOADER_ROLES = (Role.ADMINISTRATOR, Role.DATA_MANAGER)


def can_load_code_lists(user: User) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and access_for(user).has_role(
        *LOADER_ROLES
    )


@top_level
def code_list_load(
    *,
    by: User,
    code: str,
    version: str,
    rows: Iterable[Mapping[str, Any]],
    source: str,
    labels: Sequence[str] | None = None,
) -> CodeList:
    """Load ``rows`` as version ``version`` of code list ``code`` and make it current.

    Rows are mappings with ``code``, ``term``, ``soc``, ``grades`` ({1..5: description or
    None}) and optionally ``term_nl`` and ``definition``; ``labels`` names each row in
    messages (e.g. its spreadsheet row). A row without a Dutch label keeps the one the
    shipped list has for the same code. Refusals: not an administrator or data manager
    (NotAllowed); a malformed code, version, source or any bad row (InvalidCodeList, with
    every problem); a version loaded before (VersionAlreadyLoaded). All or nothing.
    """
    if not can_load_code_lists(by):
        raise NotAllowed(_("Only administrators and data managers load code lists."))
    code = (code or "").strip()
    version = (version or "").strip()
    source = (source or "").strip()
    field_errors: dict[str, list[str]] = {}
    if not _LIST_CODE.match(code):
        field_errors["code"] = [_("Give the code list's code (lower-case letters, digits, _).")]
    if not _VERSION.match(version):
        field_errors["version"] = [_("Give the version (e.g. 5.0), at most 20 characters.")]
    if not source:
        field_errors["source"] = [_("Say where the terms come from.")]
    if field_errors:
        raise InvalidCodeList(_("The code list cannot be loaded."), errors=field_errors)
    cleaned, errors = _clean_rows(list(rows), labels=labels)
    if errors:
        raise InvalidCodeList(
            _("The code list was not loaded: %(n)d problem(s).") % {"n": len(errors)},
            errors={"rows": errors},
        )

    # One load of a list at a time: the next one waits, then sees this one's version.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"crf.codelist:{code}"])
    earlier = CodeList.objects.filter(code=code, version=version).select_related("loaded_by")
    if (loaded := earlier.first()) is not None:
        raise VersionAlreadyLoaded(
            _(
                "Version %(version)s of %(code)s was already loaded on %(when)s by %(who)s; "
                "a version is loaded once. Give the new terms a new version."
            )
            % {
                "version": version,
                "code": code,
                "when": loaded.loaded_at.date().isoformat(),
                "who": loaded.loaded_by.get_username(),
            },
            field="version",
        )
    try:
        dutch = {c: t.term_nl for c, t in shipped(code).terms.items()}
    except UnknownCodeList:
        dutch = {}
    with audit_reason(f"code list {code} {version} loaded ({len(cleaned)} terms): {source}"):
        CodeList.objects.filter(code=code, is_current=True).update(is_current=False)
        code_list = CodeList.objects.create(
            code=code, version=version, source=source, loaded_by=by, is_current=True
        )
        CodeListTerm.objects.bulk_create(
            [
                CodeListTerm(
                    code_list=code_list,
                    code=row["code"],
                    term=row["term"],
                    term_nl=row["term_nl"] or dutch.get(row["code"], ""),
                    soc=row["soc"],
                    definition=row["definition"],
                    grades=row["grades"],
                )
                for row in cleaned
            ],
            batch_size=1000,
        )
    clear_cache()
    transaction.on_commit(clear_cache)
    return code_list


# --- NCI's spreadsheet ----------------------------------------------------------------------
# NCI's column headings (compared without case and spacing) -> row key.
CTCAE_COLUMNS = {
    "meddra code": "code",
    "meddra soc": "soc",
    "ctcae term": "term",
    "grade 1": "1",
    "grade 2": "2",
    "grade 3": "3",
    "grade 4": "4",
    "grade 5": "5",
    "definition": "definition",
}
_REQUIRED_COLUMNS = [k for k in CTCAE_COLUMNS if k != "definition"]
_HEADER_SEARCH_ROWS = 10


@dataclass(frozen=True)
class SheetRows:
    """The terms of a spreadsheet as rows for :func:`code_list_load`, each with a label
    naming where it came from ("row 7" of the file)."""

    rows: list[dict[str, Any]]
    labels: list[str]


_HEADING_VERSION = re.compile(r"\s+v\d+(\.\d+)*\s+")  # "MedDRA v12.0 Code" (older sheets)
_HEADING_ALIASES = {"meddra system organ class": "meddra soc"}


def _heading(value: Any) -> str:
    heading = _HEADING_VERSION.sub(" ", f" {_text(value).casefold()} ").strip()
    return _HEADING_ALIASES.get(heading, heading)


def _code_cell(value: Any) -> str:
    """A MedDRA code as text: spreadsheets hold it as a number (10053692 or 10053692.0)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return _text(value)


def _rows_from_table(table: Iterable[Sequence[Any]], *, name: str) -> SheetRows:
    header_at: int | None = None
    columns: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    labels: list[str] = []
    problems: list[str] = []
    for number, cells in enumerate(table, start=1):
        if header_at is None:
            if number > _HEADER_SEARCH_ROWS:
                break
            headings = [_heading(c) for c in cells]
            if "meddra code" in headings and "ctcae term" in headings:
                header_at = number
                for index, heading in enumerate(headings):
                    if heading in CTCAE_COLUMNS and heading not in columns:
                        columns[heading] = index
                missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
                if missing:
                    headings_needed = ", ".join(
                        h.title().replace("Meddra", "MedDRA").replace("Ctcae", "CTCAE")
                        for h in missing
                    )
                    raise CodeListFileError(
                        _("%(name)s lacks the column(s) %(columns)s of NCI's CTCAE layout.")
                        % {"name": name, "columns": headings_needed}
                    )
            continue
        values = list(cells)
        if not any(_text(v) for v in values):
            continue  # blank lines between blocks
        if len(rows) >= MAX_ROWS:
            raise CodeListFileError(
                _("%(name)s has more than %(max)d terms; this is not a CTCAE spreadsheet.")
                % {"name": name, "max": MAX_ROWS}
            )

        def cell(heading: str, values: list[Any] = values) -> Any:
            index = columns.get(heading)
            return values[index] if index is not None and index < len(values) else None

        code = _code_cell(cell("meddra code"))
        label = _("row %(n)d") % {"n": number}
        if code and not _MEDDRA.match(code):
            problems.append(
                _("%(row)s: the MedDRA code %(code)r is not 8 digits.")
                % {"row": label, "code": code}
            )
        rows.append(
            {
                "code": code,
                "soc": cell("meddra soc"),
                "term": cell("ctcae term"),
                "definition": cell("definition"),
                "grades": {g: cell(f"grade {g}") for g in ("1", "2", "3", "4", "5")},
            }
        )
        labels.append(label)
    if header_at is None:
        raise CodeListFileError(
            _(
                "%(name)s has no heading row with MedDRA Code, MedDRA SOC, CTCAE Term and "
                "Grade 1 to Grade 5 in its first %(n)d rows."
            )
            % {"name": name, "n": _HEADER_SEARCH_ROWS}
        )
    if problems:
        raise CodeListFileError(
            _("%(name)s was not loaded: %(n)d problem(s).") % {"name": name, "n": len(problems)},
            errors={"rows": problems},
        )
    if not rows:
        raise CodeListFileError(_("%(name)s has no terms below its heading row.") % {"name": name})
    return SheetRows(rows=rows, labels=labels)


def _csv_table(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CodeListFileError(
            _("%(name)s is not UTF-8 text; save the CSV as UTF-8.") % {"name": path.name}
        ) from None
    first = text.splitlines()[0] if text else ""
    delimiter = max(",;\t", key=first.count) if first else ","
    return list(csv.reader(text.splitlines(), delimiter=delimiter))


def _xlsx_table(path: Path) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise CodeListFileError(
            _("%(name)s is not a readable XLSX workbook (%(error)s).")
            % {"name": path.name, "error": type(exc).__name__}
        ) from None
    try:
        # The first sheet with NCI's heading row (the workbook may carry notes sheets).
        first: list[list[Any]] | None = None
        for sheet in workbook.worksheets:
            table = [list(r) for r in sheet.iter_rows(values_only=True)]
            if first is None:
                first = table
            for cells in table[:_HEADER_SEARCH_ROWS]:
                headings = [_heading(c) for c in cells]
                if "meddra code" in headings and "ctcae term" in headings:
                    return table
        return first or []
    finally:
        workbook.close()


def read_ctcae_file(path: Path | str) -> SheetRows:
    """The terms of NCI's CTCAE spreadsheet at ``path`` (``.csv`` or ``.xlsx``).

    Refuses (CodeListFileError) a missing or unreadable file, another format, a file
    without NCI's heading row or its columns, MedDRA codes that are not 8 digits, and a
    file without terms. The rows themselves are checked again by :func:`code_list_load`.
    """
    path = Path(path)
    if not path.is_file():
        raise CodeListFileError(_("There is no file %(name)s.") % {"name": str(path)})
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table: list[list[Any]] = _csv_table(path)
    elif suffix == ".xlsx":
        table = _xlsx_table(path)
    else:
        raise CodeListFileError(
            _("%(name)s is neither a .csv nor a .xlsx file.") % {"name": path.name}
        )
    return _rows_from_table(table, name=path.name)
