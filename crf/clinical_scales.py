"""Clinical scales (SPEC.md §4.7) as pure functions.

Placeholder with the agreed signatures so the definition engine can be tested; the full
module (point tables as data, table and property tests) replaces it.
"""

from __future__ import annotations

from datetime import date

__all__ = ["length_of_stay", "sins_class", "sins_total"]

_POINTS: dict[str, dict[str, int]] = {
    "location": {"junctional": 3, "mobile": 2, "semi_rigid": 1, "rigid": 0},
    "pain": {"mechanical": 3, "occasional": 1, "none": 0},
    "lesion": {"lytic": 2, "mixed": 1, "blastic": 0},
    "alignment": {"subluxation": 4, "deformity": 2, "normal": 0},
    "collapse": {"over_50": 3, "under_50": 2, "none_over_50_involved": 1, "none": 0},
    "posterolateral": {"bilateral": 3, "unilateral": 1, "none": 0},
}


def sins_total(
    *,
    location: str | None,
    pain: str | None,
    lesion: str | None,
    alignment: str | None,
    collapse: str | None,
    posterolateral: str | None,
) -> int | None:
    parts = {
        "location": location,
        "pain": pain,
        "lesion": lesion,
        "alignment": alignment,
        "collapse": collapse,
        "posterolateral": posterolateral,
    }
    if any(value is None for value in parts.values()):
        return None
    try:
        return sum(_POINTS[name][str(value)] for name, value in parts.items())
    except KeyError as exc:
        raise ValueError(f"unknown SINS code {exc}") from None


def sins_class(*, total: int | None) -> str | None:
    if total is None:
        return None
    if total <= 6:
        return "stable"
    return "potentially_unstable" if total <= 12 else "unstable"


def length_of_stay(*, admitted_on: date | None, discharged_on: date | None) -> int | None:
    if admitted_on is None or discharged_on is None or discharged_on < admitted_on:
        return None
    return (discharged_on - admitted_on).days
