# mypy: disallow-untyped-calls, disallow-any-generics, warn-return-any
"""Clinical scales computed from a form's items (SPEC.md §4.7): pure functions, no ORM.

- :func:`sins_total` and :func:`sins_class`: the Spinal Instability Neoplastic Score
  (SINS, 0–18) from its six components, and its stability class;
- :func:`length_of_stay`: calendar days between hospital admission and discharge.

The point tables are data (:data:`SINS_POINTS`, :data:`SINS_CLASSES`), transcribed from
SPEC.md §4.7 (Fisher et al., Spine 2010, as the spec lists it). The component values are
the choice codes the clinical form definitions use for them. A component left empty makes
the total unknown (``None``): a partial score is never shown as if it were the score.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

__all__ = [
    "SINS_CLASSES",
    "SINS_COMPONENTS",
    "SINS_MAX",
    "SINS_POINTS",
    "length_of_stay",
    "sins_class",
    "sins_total",
]

# Source: SPEC.md §4.7 "SINS (0–18)". component -> choice code -> points.
SINS_POINTS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {
        # spinal location
        "location": MappingProxyType({"junctional": 3, "mobile": 2, "semi_rigid": 1, "rigid": 0}),
        # pain: mechanical, occasional non-mechanical, pain-free lesion
        "pain": MappingProxyType({"mechanical": 3, "occasional": 1, "none": 0}),
        # bone lesion
        "lesion": MappingProxyType({"lytic": 2, "mixed": 1, "blastic": 0}),
        # radiographic spinal alignment: subluxation/translation, de novo deformity, normal
        "alignment": MappingProxyType({"subluxation": 4, "deformity": 2, "normal": 0}),
        # vertebral body collapse: > 50 %, < 50 %, none with > 50 % of the body involved, none
        "collapse": MappingProxyType(
            {"over_50": 3, "under_50": 2, "none_over_50_involved": 1, "none": 0}
        ),
        # posterolateral involvement of the spinal elements
        "posterolateral": MappingProxyType({"bilateral": 3, "unilateral": 1, "none": 0}),
    }
)
SINS_COMPONENTS: tuple[str, ...] = tuple(SINS_POINTS)
SINS_MAX = sum(max(points.values()) for points in SINS_POINTS.values())

# Source: SPEC.md §4.7: 0–6 stable, 7–12 potentially unstable, 13–18 unstable.
# (lowest total, highest total, class code), in increasing order.
SINS_CLASSES: tuple[tuple[int, int, str], ...] = (
    (0, 6, "stable"),
    (7, 12, "potentially_unstable"),
    (13, 18, "unstable"),
)


def _points(component: str, code: str) -> int:
    table = SINS_POINTS[component]
    if not isinstance(code, str) or code not in table:
        known = ", ".join(table)
        raise ValueError(f"unknown SINS {component} code {code!r} (known: {known})")
    return table[code]


def sins_total(
    *,
    location: str | None,
    pain: str | None,
    lesion: str | None,
    alignment: str | None,
    collapse: str | None,
    posterolateral: str | None,
) -> int | None:
    """The SINS total (0–18) from the six component codes; ``None`` when any is missing.

    An unknown code is a programming or definition error, not missing data: ValueError.
    Every given code is checked, even when another component is missing.
    """
    given = {
        "location": location,
        "pain": pain,
        "lesion": lesion,
        "alignment": alignment,
        "collapse": collapse,
        "posterolateral": posterolateral,
    }
    points = [_points(name, code) for name, code in given.items() if code is not None]
    if len(points) < len(given):
        return None
    return sum(points)


def sins_class(*, total: int | None) -> str | None:
    """The stability class of a SINS total: stable, potentially_unstable or unstable;
    ``None`` for no total. A total outside 0–18 is refused (ValueError)."""
    if total is None:
        return None
    if isinstance(total, bool) or not isinstance(total, int):
        raise ValueError(f"a SINS total is a whole number, not {total!r}")
    for low, high, name in SINS_CLASSES:
        if low <= total <= high:
            return name
    raise ValueError(f"a SINS total lies in 0..{SINS_MAX}, not {total}")


AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def _day(value: date, tz: ZoneInfo) -> date:
    """The calendar day of a date, or of a moment (an aware one on the local clock)."""
    if isinstance(value, datetime):
        return value.astimezone(tz).date() if value.tzinfo is not None else value.date()
    return value


def length_of_stay(
    *, admitted_on: date | None, discharged_on: date | None, tz: ZoneInfo = AMSTERDAM
) -> int | None:
    """Length of hospital stay in calendar days (a same-day discharge is 0 days).

    ``None`` when either date is missing, or when discharge lies before admission: that
    combination is refused by the admission form's check, and an impossible stay is
    never reported as a number. Days are counted on the calendar, never as 24-hour
    periods, so a change to or from summer time in between changes nothing; a moment
    (``datetime``) counts as its local calendar day in ``tz``.
    """
    if admitted_on is None or discharged_on is None:
        return None
    first, last = _day(admitted_on, tz), _day(discharged_on, tz)
    if last < first:
        return None
    return (last - first).days
