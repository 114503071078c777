"""The named pure functions a definition refers to: computed items and cross-item checks.

A definition never holds code. A computed item names a function of :data:`COMPUTATIONS`
and the items that are its inputs, in the order of the function's parameters::

    {"code": "sins_total", "kind": "computed", "function": "sins_total",
     "inputs": ["sins_location", "sins_pain", "sins_lesion", "sins_alignment",
                "sins_collapse", "sins_posterolateral"]}

A definition's ``checks`` name functions of :data:`CHECKS`, either by name (the check's
default items) or as ``{"name": ..., <parameter>: <item code>, ...}`` to say which items
it compares. A check returns :class:`Finding` objects; an ``"error"`` refuses the save
with its message on the item, a ``"warning"`` is shown and kept.

Values are as stored (JSON): dates are ISO ``yyyy-mm-dd`` strings, date-times ISO
``yyyy-mm-ddThh:mm[:ss][offset]`` strings, a date-time without offset being Amsterdam
wall-clock time. Pure: no ORM, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from crf import clinical_scales

__all__ = [
    "CHECKS",
    "COMPUTATIONS",
    "Check",
    "Computation",
    "Finding",
    "as_date",
    "as_datetime",
]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SEVERITIES = ("error", "warning")


def _(message: str) -> str:
    from crf.instruments import _ as translate

    return translate(message)


def as_date(value: Any) -> date | None:
    """An ISO date string, or the Amsterdam day of an ISO date-time, as a date; else None."""
    if not isinstance(value, str):
        return None
    if len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    moment = as_datetime(value)
    return moment.astimezone(AMSTERDAM).date() if moment else None


def as_datetime(value: Any) -> datetime | None:
    """An ISO date-time string as an aware datetime (no offset = Amsterdam time); None otherwise."""
    if not isinstance(value, str) or len(value) < 16 or value[10] != "T":
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=AMSTERDAM)


# --------------------------------------------------------------------------- computed items


@dataclass(frozen=True)
class Computation:
    """A computed item's function: its parameters (bound to the item's ``inputs`` in
    order), the kinds of item each parameter accepts, and the type of its value."""

    name: str
    params: tuple[str, ...]
    input_kinds: tuple[frozenset[str], ...]
    result: type
    function: Callable[..., Any]

    def __call__(self, values: Mapping[str, Any]) -> Any:
        return self.function(**values)


def _sins_total(**parts: Any) -> int | None:
    cleaned = {name: value if isinstance(value, str) else None for name, value in parts.items()}
    return clinical_scales.sins_total(**cleaned)


def _sins_class(*, total: Any) -> str | None:
    ok = isinstance(total, int) and not isinstance(total, bool)
    return clinical_scales.sins_class(total=total if ok else None)


def _length_of_stay(*, admitted_on: Any, discharged_on: Any) -> int | None:
    return clinical_scales.length_of_stay(
        admitted_on=as_date(admitted_on), discharged_on=as_date(discharged_on)
    )


_CHOICE = frozenset({"choice"})
_DATES = frozenset({"date", "datetime"})
_SINS_PARTS = ("location", "pain", "lesion", "alignment", "collapse", "posterolateral")

COMPUTATIONS: Mapping[str, Computation] = {
    c.name: c
    for c in (
        Computation("sins_total", _SINS_PARTS, (_CHOICE,) * 6, int, _sins_total),
        Computation(
            "sins_class", ("total",), (frozenset({"computed", "number"}),), str, _sins_class
        ),
        Computation(
            "length_of_stay",
            ("admitted_on", "discharged_on"),
            (_DATES, _DATES),
            int,
            _length_of_stay,
        ),
    )
}


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Finding:
    """What a check found: on which item, how bad ("error" | "warning"), and why."""

    item: str
    severity: str
    message: str


CheckFunction = Callable[[Mapping[str, Any], Mapping[str, str], Mapping[str, Any]], list[Finding]]


@dataclass(frozen=True)
class Check:
    """A cross-item check: its parameters (item roles) with their default item codes."""

    name: str
    params: Mapping[str, str]
    function: CheckFunction

    def __call__(
        self,
        data: Mapping[str, Any],
        items: Mapping[str, str],
        context: Mapping[str, Any] | None = None,
    ) -> list[Finding]:
        return self.function(data, items, context or {})


def _moment(value: Any) -> datetime | date | None:
    return as_datetime(value) or as_date(value)


def _before(end: Any, start: Any) -> bool:
    """Whether ``end`` is strictly before ``start`` (dates against date-times by day)."""
    end_at, start_at = _moment(end), _moment(start)
    if end_at is None or start_at is None:
        return False
    if isinstance(end_at, datetime) and isinstance(start_at, datetime):
        return end_at < start_at
    end_day = end_at.astimezone(AMSTERDAM).date() if isinstance(end_at, datetime) else end_at
    start_day = (
        start_at.astimezone(AMSTERDAM).date() if isinstance(start_at, datetime) else start_at
    )
    return end_day < start_day


def _end_not_before_start(
    data: Mapping[str, Any], items: Mapping[str, str], context: Mapping[str, Any]
) -> list[Finding]:
    if _before(data.get(items["end"]), data.get(items["start"])):
        return [Finding(items["end"], "error", _("The end cannot be before the start."))]
    return []


def _discharge_not_before_admission(
    data: Mapping[str, Any], items: Mapping[str, str], context: Mapping[str, Any]
) -> list[Finding]:
    if _before(data.get(items["discharged"]), data.get(items["admitted"])):
        return [
            Finding(
                items["discharged"], "error", _("The discharge date cannot be before admission.")
            )
        ]
    return []


CHECKS: Mapping[str, Check] = {
    c.name: c
    for c in (
        Check("end_not_before_start", {"start": "start", "end": "end"}, _end_not_before_start),
        Check(
            "discharge_not_before_admission",
            {"admitted": "admitted_on", "discharged": "discharged_on"},
            _discharge_not_before_admission,
        ),
    )
}
