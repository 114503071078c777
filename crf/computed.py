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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
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


CheckFunction = Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], list[Finding]]


@dataclass(frozen=True)
class Check:
    """A cross-item check: its parameters (item roles) with their default item codes, and
    its numeric ``options`` (protocol values such as a dose range or an interval, with
    defaults a definition can override: doses and intervals are data, never code).

    ``context`` is the read-only record context of :func:`crf.selectors.record_context`
    (arm, day 0, consent, death, the other forms' values); a check that needs a fact the
    context lacks finds nothing (it never guesses)."""

    name: str
    params: Mapping[str, str]
    function: CheckFunction
    options: Mapping[str, float] = field(default_factory=dict)

    def __call__(
        self,
        data: Mapping[str, Any],
        items: Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
    ) -> list[Finding]:
        return self.function(data, {**self.options, **items}, context or {})


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


# --- checks against the record's context (SPEC.md §3.7 data quality; "warning": each
# finding is for review: an automatic query, never a refusal, since the data may be right)


def _day(value: Any) -> date | None:
    moment = _moment(value)
    if isinstance(moment, datetime):
        return moment.astimezone(AMSTERDAM).date()
    return moment


def _surgery_within_hours_of_sbrt(
    data: Mapping[str, Any], items: Mapping[str, Any], context: Mapping[str, Any]
) -> list[Finding]:
    """Intervention arm: surgery starts within ``hours`` after the (first) SBRT, not before it."""
    if context.get("arm") != "intervention":
        return []
    surgery = as_datetime(data.get(items["start"]))
    sbrt = [m for m in (as_datetime(v) for v in context.get("sbrt_started", ())) if m]
    if surgery is None or not sbrt:
        return []
    first = min(sbrt)
    if surgery < first:
        return [Finding(items["start"], "warning", _("Surgery is recorded before the SBRT."))]
    if surgery - first > timedelta(hours=float(items["hours"])):
        return [
            Finding(
                items["start"],
                "warning",
                _("Surgery started more than %(hours)s hours after the SBRT.")
                % {"hours": _number(items["hours"])},
            )
        ]
    return []


def _not_within_days_after_surgery(
    data: Mapping[str, Any], items: Mapping[str, Any], context: Mapping[str, Any]
) -> list[Finding]:
    """Radiotherapy after surgery starts no earlier than ``days`` days after the surgery."""
    start, surgery = _day(data.get(items["start"])), context.get("surgery_on")
    if start is None or not isinstance(surgery, date):
        return []
    if (start - surgery).days < float(items["days"]):
        return [
            Finding(
                items["start"],
                "warning",
                _("Radiotherapy started less than %(days)s days after the surgery.")
                % {"days": _number(items["days"])},
            )
        ]
    return []


def _fatal_grade_needs_a_death(
    data: Mapping[str, Any], items: Mapping[str, Any], context: Mapping[str, Any]
) -> list[Finding]:
    """An adverse event of grade 5 (death) while no death is recorded."""
    if data.get(items["grade"]) == 5 and context.get("died_on") is None and "died_on" in context:
        return [
            Finding(
                items["grade"],
                "warning",
                _("Grade 5 means the event was fatal, but no death is recorded."),
            )
        ]
    return []


def _onset_within_study(
    data: Mapping[str, Any], items: Mapping[str, Any], context: Mapping[str, Any]
) -> list[Finding]:
    """An adverse event starts after consent to randomisation and before the end of study."""
    onset = _day(data.get(items["onset"]))
    if onset is None:
        return []
    consented, ended = context.get("consented_on"), context.get("ended_on")
    if isinstance(consented, date) and onset < consented:
        return [Finding(items["onset"], "warning", _("The onset is before the consent."))]
    if isinstance(ended, date) and onset > ended:
        return [Finding(items["onset"], "warning", _("The onset is after the end of study."))]
    return []


def _dose_per_fraction_in_range(
    data: Mapping[str, Any], items: Mapping[str, Any], context: Mapping[str, Any]
) -> list[Finding]:
    """Each target's dose per fraction (dose / fractions) lies in [min_gy, max_gy]."""
    rows = data.get(items["rows"])
    if not isinstance(rows, list):
        return []
    found = []
    low, high = float(items["min_gy"]), float(items["max_gy"])
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            continue
        dose, fractions = _positive(row.get(items["dose"])), _positive(row.get(items["fractions"]))
        if dose is None or fractions is None:
            continue
        per_fraction = dose / fractions
        if not low <= per_fraction <= high:
            found.append(
                Finding(
                    f"{items['rows']}-{index}-{items['dose']}",
                    "warning",
                    _("%(dose)s Gy per fraction is outside the protocol's %(min)s–%(max)s Gy.")
                    % {
                        "dose": _number(round(per_fraction, 2)),
                        "min": _number(low),
                        "max": _number(high),
                    },
                )
            )
    return found


# ASIA impairment scale from worst (A, complete) to normal (E).
ASIA_ORDER = ("A", "B", "C", "D", "E")


def _asia_not_worse(
    data: Mapping[str, Any], items: Mapping[str, Any], context: Mapping[str, Any]
) -> list[Finding]:
    """Neurological deterioration: an ASIA grade worse than at baseline (for review)."""
    now, before = data.get(items["asia"]), context.get("baseline_asia")
    if now not in ASIA_ORDER or before not in ASIA_ORDER:
        return []
    if ASIA_ORDER.index(now) < ASIA_ORDER.index(before):
        return [
            Finding(
                items["asia"],
                "warning",
                _(
                    "ASIA %(now)s is worse than at baseline (%(before)s): neurological deterioration?"
                )
                % {"now": now, "before": before},
            )
        ]
    return []


def _dates_within_life(
    data: Mapping[str, Any], items: Mapping[str, Any], context: Mapping[str, Any]
) -> list[Finding]:
    """No date before the year of birth, none after the date of death (every date and
    date-time of the record, repeat rows included). The death date itself on the end of
    study form is compared by its own check."""
    born, died = context.get("born_year"), context.get("died_on")
    found: list[Finding] = []

    def visit(key: str, value: Any) -> None:
        day = _day(value) if isinstance(value, str) and len(value) >= 10 else None
        if day is None:
            return
        if isinstance(born, int) and day.year < born:
            found.append(Finding(key, "warning", _("This date is before the year of birth.")))
        elif isinstance(died, date) and day > died:
            found.append(Finding(key, "warning", _("This date is after the date of death.")))

    for key, value in data.items():
        if isinstance(value, list):
            for index, row in enumerate(value):
                if isinstance(row, Mapping):
                    for field_name, field_value in row.items():
                        visit(f"{key}-{index}-{field_name}", field_value)
        else:
            visit(key, value)
    return found


def _death_matches_cohort(
    data: Mapping[str, Any], items: Mapping[str, Any], context: Mapping[str, Any]
) -> list[Finding]:
    """End of study against the cohort's death record: a recorded death needs the reason
    "died" and the same date; "died" needs a recorded death; a death from treatment needs a
    grade 5 adverse event. Without the context's facts (``died_on`` absent) nothing."""
    if "died_on" not in context:
        return []
    died, reason = context.get("died_on"), data.get(items["reason"])
    death_on = as_date(data.get(items["death"]))
    if isinstance(died, date) and reason not in (None, "died"):
        return [
            Finding(
                items["reason"],
                "warning",
                _(
                    "A death is recorded for this participant; the end of study gives another reason."
                ),
            )
        ]
    if reason != "died":
        return []
    if died is None:
        return [
            Finding(items["reason"], "warning", _("No death is recorded for this participant."))
        ]
    found = []
    if death_on is not None and death_on != died:
        found.append(
            Finding(
                items["death"],
                "warning",
                _("The date of death differs from the one recorded in the cohort."),
            )
        )
    if data.get(items["cause"]) == "treatment" and not context.get("fatal_ae"):
        found.append(
            Finding(
                items["cause"],
                "warning",
                _("A death from treatment needs a grade 5 adverse event."),
            )
        )
    return found


def _positive(value: Any) -> float | None:
    """``value`` as a float when it is a positive number, else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def _number(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


CHECKS: Mapping[str, Check] = {
    c.name: c
    for c in (
        Check("end_not_before_start", {"start": "start", "end": "end"}, _end_not_before_start),
        Check(
            "discharge_not_before_admission",
            {"admitted": "admitted_on", "discharged": "discharged_on"},
            _discharge_not_before_admission,
        ),
        Check(
            "surgery_within_hours_of_sbrt",
            {"start": "started_at"},
            _surgery_within_hours_of_sbrt,
            {"hours": 24},
        ),
        Check(
            "not_within_days_after_surgery",
            {"start": "started_on"},
            _not_within_days_after_surgery,
            {"days": 7},
        ),
        Check("fatal_grade_needs_a_death", {"grade": "grade"}, _fatal_grade_needs_a_death),
        Check("onset_within_study", {"onset": "onset_on"}, _onset_within_study),
        Check(
            "dose_per_fraction_in_range",
            {"rows": "targets", "dose": "dose_gy", "fractions": "fractions"},
            _dose_per_fraction_in_range,
            {"min_gy": 8, "max_gy": 24},
        ),
        Check("asia_not_worse_than_baseline", {"asia": "asia"}, _asia_not_worse),
        Check("dates_within_life", {}, _dates_within_life),
        Check(
            "death_matches_cohort",
            {"reason": "reason", "death": "death_on", "cause": "death_cause"},
            _death_matches_cohort,
        ),
    )
}
