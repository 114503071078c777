"""Pain medication rows and the oral morphine equivalent daily dose (OMED), SPEC.md §4.5.

The conversion table is versioned data in ``crf/instruments/omed.json``: each version maps a
drug to its routes, and each (drug, route) with a known conversion to a factor and the unit
the dose is entered in (``mg/day``; transdermal fentanyl in ``µg/h`` of patch strength). A
row for an opioid whose (drug, route) has no factor in the table version (e.g. subcutaneous
morphine, "other opioid") makes the OMED unknown (``None``) instead of guessing; the trial
pharmacist adds factors by issuing a new table version.

A row is ``{"drug": code, "route": code, "daily_dose": number, "unit": code}`` with an
optional free-text ``"name"`` (for "other" drugs). Pure Python, no ORM.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, TypeGuard

from crf.instruments import I18n, _

__all__ = [
    "OmedTable",
    "check_row",
    "current_version",
    "normalise_unit",
    "omed",
    "parse_rows",
    "table",
]

ROW_KEYS = frozenset({"drug", "route", "daily_dose", "unit", "name"})
MAX_DAILY_DOSE = 100_000  # anything above is a typing error in any unit we accept
NAME_MAX = 200


@dataclass(frozen=True)
class Drug:
    code: str
    label: I18n
    opioid: bool
    # route -> (factor, unit) for the routes with a known conversion
    conversions: Mapping[str, tuple[float, str]]


@dataclass(frozen=True)
class OmedTable:
    version: str
    source: str
    confirmed_by: str
    drugs: Mapping[str, Drug]
    routes: Mapping[str, I18n]
    units: Mapping[str, I18n]
    unit_aliases: Mapping[str, str]

    def conversion(self, drug: str, route: str) -> tuple[float, str] | None:
        return self.drugs[drug].conversions.get(route)


@cache
def _data() -> dict[str, Any]:
    path = resources.files("crf").joinpath("instruments", "omed.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def current_version() -> str:
    """The table version used when none is named."""
    return str(_data()["current"])


def versions() -> list[str]:
    return list(_data()["versions"])


@cache
def table(version: str | None = None) -> OmedTable:
    """The OMED conversion table ``version`` (the current one by default)."""
    version = version or current_version()
    try:
        raw = _data()["versions"][version]
    except KeyError:
        raise ValueError(f"unknown OMED table version {version!r}") from None
    units = {code: I18n(label) for code, label in raw["units"].items()}
    routes = {code: I18n(label) for code, label in raw["routes"].items()}
    drugs = {}
    for code, entry in raw["drugs"].items():
        conversions = {}
        for route, conv in entry.get("routes", {}).items():
            factor = float(conv["factor"])
            if route not in routes or conv["unit"] not in units or not factor > 0:
                raise ValueError(f"OMED table {version}: bad conversion {code}/{route}")
            conversions[route] = (factor, conv["unit"])
        drugs[code] = Drug(
            code=code,
            label=I18n(entry["label"]),
            opioid=bool(entry["opioid"]),
            conversions=conversions,
        )
    return OmedTable(
        version=version,
        source=str(raw.get("source", "")),
        confirmed_by=str(raw.get("confirmed_by", "")),
        drugs=drugs,
        routes=routes,
        units=units,
        unit_aliases=dict(raw.get("unit_aliases", {})),
    )


def normalise_unit(unit: Any, version: str | None = None) -> Any:
    """``"ug/h"``, ``"mcg/h"`` ... → ``"µg/h"``; anything else unchanged."""
    if not isinstance(unit, str):
        return unit
    cleaned = unit.strip()
    return table(version).unit_aliases.get(cleaned.lower(), cleaned)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_row(row: Any, version: str | None = None) -> str | None:
    """What is wrong with one medication row, or ``None`` when it is valid."""
    t = table(version)
    if not isinstance(row, Mapping):
        return _("enter drug, route, daily dose and unit.")
    unknown = set(row) - ROW_KEYS
    if unknown:
        return _("unknown field %(field)s.") % {"field": sorted(map(str, unknown))[0]}
    drug, route, dose = row.get("drug"), row.get("route"), row.get("daily_dose")
    unit = normalise_unit(row.get("unit"), version)
    # (every key is a str: the isinstance checks only narrow the types, after the lookups)
    if drug not in t.drugs or not isinstance(drug, str):
        return _("choose a medicine from the list.")
    if route not in t.routes or not isinstance(route, str):
        return _("choose how the medicine is taken.")
    if not _is_number(dose):
        return _("enter the daily dose as a number.")
    if dose <= 0:
        return _("the daily dose must be more than 0.")
    if dose > MAX_DAILY_DOSE:
        return _("the daily dose is too high; please check it.")
    if unit not in t.units:
        return _("choose the unit of the dose.")
    name = row.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > NAME_MAX):
        return _("the medicine name is too long.")
    conversion = t.conversion(drug, route)
    if conversion is not None and unit != conversion[1]:
        return _("for this medicine and route enter the dose in %(unit)s.") % {
            "unit": conversion[1]
        }
    return None


def omed(
    analgesics: Iterable[Mapping[str, Any]] | None, table_version: str | None = None
) -> float | None:
    """Oral morphine equivalent daily dose (mg/day) of a list of medication rows.

    ``None`` when the list is not answered, or when an opioid row has no conversion for its
    (drug, route) in this table version. Non-opioid rows add nothing; an empty list is 0.
    Raises ``ValueError`` on an invalid row (validate answers first).
    """
    if analgesics is None:
        return None
    t = table(table_version)
    total = 0.0
    unknown = False
    for row in analgesics:
        problem = check_row(row, t.version)
        if problem:
            raise ValueError(problem)
        drug = t.drugs[row["drug"]]
        if not drug.opioid:
            continue
        conversion = drug.conversions.get(row["route"])
        if conversion is None:
            unknown = True
            continue
        factor, _unit = conversion
        total += factor * float(row["daily_dose"])
    return None if unknown else total


def parse_rows(
    drugs: list[str], routes: list[str], doses: list[str], units: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Build medication rows from parallel form lists (one entry per row on the page).

    Rows left entirely blank are skipped. Returns ``(rows, problems)``; each problem names
    its row number. Decimal commas are accepted ("2,5").
    """
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    count = max(len(drugs), len(routes), len(doses), len(units), 0)

    def at(values: list[str], index: int) -> str:
        return (values[index] if index < len(values) else "").strip()

    for index in range(count):
        drug, route, dose_text, unit = (at(v, index) for v in (drugs, routes, doses, units))
        if not (drug or route or dose_text):
            continue
        try:
            dose: Any = float(dose_text.replace(",", "."))
            if dose.is_integer():
                dose = int(dose)
        except ValueError:
            dose = dose_text
        row = {"drug": drug, "route": route, "daily_dose": dose, "unit": normalise_unit(unit)}
        problem = check_row(row)
        if problem:
            problems.append(
                _("Medicine %(row)s: %(problem)s") % {"row": index + 1, "problem": problem}
            )
        rows.append(row)
    return rows, problems
