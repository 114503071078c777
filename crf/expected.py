# mypy: disallow-untyped-calls, disallow-any-generics, warn-return-any
"""Which clinical forms a participant is expected to have, and the status of each: pure,
no ORM (SPEC.md §3.7; EXAMPLES.md §2).

The rules are data (:data:`RULES`): per form its arms, anchor, window and how often it
occurs. They are a typed Python constant rather than a JSON file because the form
definition loader owns ``crf/definitions/*.json`` (a rules file there would be read as a
form), and because a constant is checked by mypy and needs no loader of its own; changing
a rule is still a one-line data change reviewed like any other.

Follow-up timepoints are the questionnaire timepoints (SPEC.md §3.5): the per-timepoint
form takes each timepoint's day offset and window from :class:`crf.models.Timepoint`
(pass them as ``timepoints``, e.g. with :func:`timepoint_windows`), and every window is
computed with :func:`crf.windows.window_for`, the one window rule of the questionnaires.
Without ``timepoints`` the SPEC's defaults apply (:data:`DEFAULT_TIMEPOINTS`; a test pins
them to the migrated schedule).

Statuses (one per expected form and occurrence):

- a record decides when there is one: ``draft``, ``complete`` or ``not_done`` (a visit
  missed, with its reason on the record); a record always shows, even where the form
  would not be expected (data is never hidden). A ``voided`` record (made in error)
  counts as no record;
- ``not_applicable``: the form is not for this arm; or, once a death is recorded, a form
  without a record whose window had not closed before the date of death (every form but
  the adverse event log and end of study: no more forms are expected after death, while
  one missed before it stays overdue);
- ``overdue``: a required form with no record whose window closed before ``today``;
- ``not_started``: otherwise. A draft stays ``draft`` after its window (it is incomplete,
  not unstarted).

On an "add another" entry (below) ``not_applicable`` means no further entry is expected;
a record of an event that happened before the death can still be entered (the record's
own date checks decide that).

Occurrences are short strings: the timepoint code for per-timepoint forms (``"week4"``),
``"1"``, ``"2"``, … for the others. Per-event forms expect occurrence ``"1"``; per-event
and log forms also get one optional entry with ``occurrence=None`` standing for "add
another" (``required`` false), so a grid can offer it and a worklist can skip it.

A refuser (intervention arm, offer declined) keeps the intervention arm (ITT) and gets the
control arm's treatment forms as well (radiotherapy after surgery).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, Protocol

from crf.windows import AMSTERDAM, window_for

__all__ = [
    "ANCHORS",
    "ARMS",
    "DEFAULT_TIMEPOINTS",
    "FORM_CODES",
    "OCCURS",
    "RECORD_STATUSES",
    "RULES",
    "STATUSES",
    "DayWindow",
    "Expected",
    "Rule",
    "TimepointWindow",
    "expected_forms",
    "occurrence_key",
    "rule_for",
    "timepoint_windows",
]

Arm = Literal["intervention", "control"]
Anchor = Literal["day0", "surgery"]
Occurs = Literal["once", "per_timepoint", "per_event", "log"]

ARMS: tuple[str, ...] = ("intervention", "control")
ANCHORS: tuple[str, ...] = ("day0", "surgery")
OCCURS: tuple[str, ...] = ("once", "per_timepoint", "per_event", "log")
STATUSES: tuple[str, ...] = (
    "not_started",
    "draft",
    "complete",
    "not_done",
    "overdue",
    "not_applicable",
)
# The statuses a clinical record can have (``voided``: a log entry made in error).
RECORD_STATUSES: tuple[str, ...] = ("draft", "complete", "not_done", "voided")


@dataclass(frozen=True)
class Rule:
    """When one form is expected. ``window`` is (first, last) day relative to the
    anchor, both included; ``None`` for forms expected at any time. ``timepoints`` names
    the follow-up timepoints of a per-timepoint form. ``refusers`` adds the intervention
    arm's refusers to a control-arm form. ``after_death``: still expected after death."""

    form_code: str
    arms: tuple[str, ...]
    occurs: Occurs
    anchor: Anchor | None = None
    window: tuple[int, int] | None = None
    timepoints: tuple[str, ...] = ()
    refusers: bool = False
    after_death: bool = False


# Source: EXAMPLES.md §2 (the shape, with placeholder windows until the protocol's values
# are entered here) and SPEC.md §3.7. Day offsets are calendar days.
RULES: tuple[Rule, ...] = (
    Rule("baseline_clinical", ("intervention", "control"), "once", "day0", (-14, 0)),
    Rule("sbrt_delivery", ("intervention",), "per_event", "day0", (-1, 1)),
    Rule("surgery", ("intervention", "control"), "per_event", "day0", (-1, 14)),
    Rule("rt_after_surgery", ("control",), "per_event", "surgery", (7, 42), refusers=True),
    # admitted the day before, on, or the day after surgery
    Rule("admission", ("intervention", "control"), "per_event", "surgery", (-1, 1)),
    Rule(
        "followup_clinical",
        ("intervention", "control"),
        "per_timepoint",
        "day0",
        timepoints=("week4", "week12", "month6"),
    ),
    Rule("adverse_event", ("intervention", "control"), "log", after_death=True),
    Rule("systemic_therapy", ("intervention", "control"), "log"),
    Rule("deviation", ("intervention", "control"), "log"),
    Rule("end_of_study", ("intervention", "control"), "once", after_death=True),
)
FORM_CODES: tuple[str, ...] = tuple(r.form_code for r in RULES)
_RULES = {r.form_code: r for r in RULES}


@dataclass(frozen=True)
class TimepointWindow:
    """A follow-up timepoint's day offset from day 0 and its window (days before, after)."""

    day_offset: int
    before: int
    after: int


# SPEC.md §3.5 (the migrated BLEND schedule, crf/migrations/0002): week 4, week 12, month 6.
DEFAULT_TIMEPOINTS: Mapping[str, TimepointWindow] = {
    "week4": TimepointWindow(28, 7, 7),
    "week12": TimepointWindow(84, 7, 14),
    "month6": TimepointWindow(182, 14, 28),
}


class _TimepointRow(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def day_offset(self) -> int: ...
    @property
    def window_before(self) -> int: ...
    @property
    def window_after(self) -> int: ...


def timepoint_windows(rows: Iterable[_TimepointRow]) -> dict[str, TimepointWindow]:
    """``timepoints`` for :func:`expected_forms` from the trial's Timepoint rows."""
    return {r.code: TimepointWindow(r.day_offset, r.window_before, r.window_after) for r in rows}


@dataclass(frozen=True)
class DayWindow:
    """First and last day (both included, Europe/Amsterdam calendar days) on which a form
    is expected; ``None`` where the window is open or not yet known."""

    start: date | None
    end: date | None

    def contains(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


OPEN = DayWindow(None, None)


@dataclass(frozen=True)
class Expected:
    """One expected form (and occurrence) with its window and status."""

    form_code: str
    occurrence: str | None
    window: DayWindow
    status: str
    required: bool
    occurs: str


def rule_for(form_code: str) -> Rule:
    try:
        return _RULES[form_code]
    except KeyError:
        raise ValueError(f"unknown clinical form {form_code!r}") from None


def _days(*, anchor: date, day_offset: int, before: int, after: int) -> DayWindow:
    """The calendar days of :func:`crf.windows.window_for`'s window (its last day is the
    day before it closes at local midnight)."""
    window = window_for(day0=anchor, day_offset=day_offset, before=before, after=after)
    last = window.closes_at - timedelta(microseconds=1)
    return DayWindow(
        start=window.opens_at.astimezone(AMSTERDAM).date(),
        end=last.astimezone(AMSTERDAM).date(),
    )


def _rule_window(rule: Rule, anchors: Mapping[str, date | None]) -> DayWindow | None:
    """The rule's window in days; ``OPEN`` for any-time forms; None when its anchor date is
    not known yet."""
    if rule.window is None or rule.anchor is None:
        return OPEN
    anchor = anchors[rule.anchor]
    if anchor is None:
        return None
    first, last = rule.window
    return _days(anchor=anchor, day_offset=first, before=0, after=last - first)


def occurrence_key(occurrence: str) -> tuple[int, int | str]:
    """Sort key of occurrences: numbers in numeric order, then timepoint codes."""
    return (0, int(occurrence)) if occurrence.isdigit() else (1, occurrence)


def expected_forms(
    *,
    arm: str,
    refused: bool,
    day0: date | None,
    surgery_on: date | None,
    died_on: date | None,
    today: date,
    records: Iterable[tuple[str, str | int, str]],
    timepoints: Mapping[str, TimepointWindow] | None = None,
) -> list[Expected]:
    """The forms expected for one participant, in the order of :data:`RULES`.

    ``arm``: the allocated (ITT) arm; ``refused``: an intervention-arm participant whose
    offer was declined; ``day0``: the start of treatment (planned or actual; the windows
    move with it); ``surgery_on``: the (first) surgery date; ``died_on``: the date of death;
    ``today``: the Amsterdam calendar day; ``records``: the participant's existing
    records as (form code, occurrence, status). Malformed input raises ValueError.
    """
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r} (known: {', '.join(ARMS)})")
    if refused and arm != "intervention":
        raise ValueError("only an intervention-arm participant can refuse the intervention")
    points = DEFAULT_TIMEPOINTS if timepoints is None else timepoints

    by_form: dict[str, dict[str, str]] = {code: {} for code in FORM_CODES}
    for form_code, occurrence, status in records:
        rule = rule_for(form_code)
        if status not in RECORD_STATUSES:
            raise ValueError(f"unknown record status {status!r} of {form_code}")
        key = str(occurrence)
        if rule.occurs == "per_timepoint" and key not in rule.timepoints:
            raise ValueError(f"{form_code} has no timepoint {key!r}")
        if rule.occurs == "once" and key != "1":
            raise ValueError(f"{form_code} occurs once: occurrence '1', not {key!r}")
        if rule.occurs in ("per_event", "log") and not (key.isdigit() and int(key) >= 1):
            raise ValueError(f"{form_code} occurrences are 1, 2, ..., not {key!r}")
        if key in by_form[form_code]:
            raise ValueError(f"two records of {form_code} occurrence {key!r}")
        if status != "voided":
            by_form[form_code][key] = status

    anchors: dict[str, date | None] = {"day0": day0, "surgery": surgery_on}
    out: list[Expected] = []

    def status_of(
        rule: Rule, occurrence: str | None, window: DayWindow | None, *, applies: bool
    ) -> str:
        recorded = by_form[rule.form_code].get(occurrence) if occurrence else None
        if recorded is not None:
            return recorded
        if not applies:
            return "not_applicable"
        # After a death only a form whose window closed before it is still expected (it
        # was missed while the participant was alive), and no further event or log entry.
        if (
            died_on is not None
            and not rule.after_death
            and (
                occurrence is None or window is None or window.end is None or window.end >= died_on
            )
        ):
            return "not_applicable"
        required = occurrence is not None and rule.occurs != "log"
        if required and window is not None and window.end is not None and today > window.end:
            return "overdue"
        return "not_started"

    for rule in RULES:
        applies = arm in rule.arms or (rule.refusers and refused)
        if rule.occurs == "per_timepoint":
            for code in rule.timepoints:
                if code not in points:
                    raise ValueError(f"timepoint {code!r} of {rule.form_code} is not given")
                tp = points[code]
                window = (
                    None
                    if day0 is None
                    else _days(
                        anchor=day0, day_offset=tp.day_offset, before=tp.before, after=tp.after
                    )
                )
                status = status_of(rule, code, window, applies=applies)
                out.append(
                    Expected(rule.form_code, code, window or OPEN, status, True, rule.occurs)
                )
            continue
        window = _rule_window(rule, anchors)
        if rule.occurs == "once":
            status = status_of(rule, "1", window, applies=applies)
            out.append(Expected(rule.form_code, "1", window or OPEN, status, True, rule.occurs))
            continue
        # per_event and log: the expected first event, every recorded one, and "add another"
        recorded = sorted(by_form[rule.form_code], key=occurrence_key)
        occurrences = (
            recorded if rule.occurs == "log" else sorted({"1", *recorded}, key=occurrence_key)
        )
        for occurrence in occurrences:
            status = status_of(rule, occurrence, window, applies=applies)
            required = rule.occurs == "per_event" and occurrence == "1"
            out.append(
                Expected(rule.form_code, occurrence, window or OPEN, status, required, rule.occurs)
            )
        add_status = status_of(rule, None, window, applies=applies)
        out.append(Expected(rule.form_code, None, window or OPEN, add_status, False, rule.occurs))
    return out
