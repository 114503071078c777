"""Window, due-time and reminder-time arithmetic for questionnaires: pure functions.

No ORM and no settings: callers pass the time zone, contact hours and reminder
days. All datetimes going in and out are timezone-aware; results are in UTC.
Calendar arithmetic (``day 0 + 28 days``, ``sent + 3 days``) is done on the
local (Europe/Amsterdam) wall clock, so a reminder sent at 10:00 before a DST
change is followed by one at 10:00 after it, not at 09:00 or 11:00.

Rules (SPEC.md §3.5, §3.6):

- A timepoint's window runs from local midnight of ``day0 + offset - before``
  up to (not including) local midnight after ``day0 + offset + after``: the
  last window day is answerable all day. The due moment is local midnight of
  ``day0 + offset`` (for the baseline, day 0 itself: it is due before day 0 ends).
- Patients are contacted only inside the contact hours ``[from, until)`` local
  time; a moment outside them moves to the next opening (08:00).
- The invitation goes out when the window opens (at the first contact hour).
- Reminders go ``d`` local calendar days after the invitation for each ``d``
  in the reminder days, moved into contact hours, and only when that is before
  the window closes.
- A failed send is retried after an exponential backoff, moved into contact hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@dataclass(frozen=True)
class Window:
    opens_at: datetime
    due_at: datetime
    closes_at: datetime

    def contains(self, at: datetime) -> bool:
        return self.opens_at <= at < self.closes_at


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")


def local_midnight(day: date, tz: ZoneInfo = AMSTERDAM) -> datetime:
    """The UTC instant of 00:00 local time on ``day`` (never ambiguous in Europe)."""
    return datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)


def localise(day: date, wall: time, tz: ZoneInfo = AMSTERDAM) -> datetime:
    """The UTC instant of the local wall-clock time ``wall`` on ``day``.

    A wall time that does not exist (spring-forward gap) is moved forward by the
    gap; an ambiguous one (autumn fold) takes the first occurrence.
    """
    # PEP 495 fold=0: in a gap the offset from before the change applies (so the time
    # moves forward by the gap); in a fold it picks the first occurrence.
    return datetime.combine(day, wall).replace(tzinfo=tz, fold=0).astimezone(UTC)


def window_for(
    *, day0: date, day_offset: int, before: int, after: int, tz: ZoneInfo = AMSTERDAM
) -> Window:
    """The window of one timepoint for a participant whose day 0 is ``day0``."""
    if before < 0 or after < 0:
        raise ValueError("window_before and window_after are non-negative day counts")
    due_day = day0 + timedelta(days=day_offset)
    return Window(
        opens_at=local_midnight(due_day - timedelta(days=before), tz),
        due_at=local_midnight(due_day, tz),
        closes_at=local_midnight(due_day + timedelta(days=after + 1), tz),
    )


def in_contact_hours(at: datetime, hours: tuple[int, int], tz: ZoneInfo = AMSTERDAM) -> bool:
    _require_aware(at)
    start, end = hours
    local = at.astimezone(tz)
    return start <= local.hour < end


def next_contact_time(at: datetime, hours: tuple[int, int], tz: ZoneInfo = AMSTERDAM) -> datetime:
    """``at`` itself if inside the contact hours, else the next opening of them (UTC)."""
    _require_aware(at)
    start, end = hours
    if not 0 <= start < end <= 24:
        raise ValueError("contact hours must satisfy 0 <= from < until <= 24")
    if in_contact_hours(at, hours, tz):
        return at.astimezone(UTC)
    local = at.astimezone(tz)
    day = local.date() if local.hour < start else local.date() + timedelta(days=1)
    return localise(day, time(start, 0), tz)


def add_local_days(at: datetime, days: int, tz: ZoneInfo = AMSTERDAM) -> datetime:
    """``at`` plus ``days`` calendar days on the local wall clock."""
    _require_aware(at)
    local = at.astimezone(tz)
    return localise(local.date() + timedelta(days=days), local.timetz().replace(tzinfo=None), tz)


def invitation_time(window: Window, hours: tuple[int, int], tz: ZoneInfo = AMSTERDAM) -> datetime:
    """When the invitation of a window is due to be sent: the first contact moment in it."""
    return next_contact_time(window.opens_at, hours, tz)


def reminder_times(
    *,
    sent_at: datetime,
    closes_at: datetime,
    reminder_days: list[int] | tuple[int, ...],
    hours: tuple[int, int],
    tz: ZoneInfo = AMSTERDAM,
) -> list[datetime]:
    """The reminder moments after an invitation sent at ``sent_at``: inside contact
    hours and strictly before the window closes, in increasing order."""
    _require_aware(sent_at)
    times: list[datetime] = []
    for days in sorted(set(reminder_days)):
        if days <= 0:
            continue
        at = next_contact_time(add_local_days(sent_at, days, tz), hours, tz)
        if at < closes_at and (not times or at > times[-1]):
            times.append(at)
    return times


def next_reminder_time(
    *,
    sent_at: datetime,
    reminders_sent: int,
    closes_at: datetime,
    reminder_days: list[int] | tuple[int, ...],
    hours: tuple[int, int],
    tz: ZoneInfo = AMSTERDAM,
) -> datetime | None:
    """The moment of reminder number ``reminders_sent + 1``, or None when there is none."""
    times = reminder_times(
        sent_at=sent_at, closes_at=closes_at, reminder_days=reminder_days, hours=hours, tz=tz
    )
    return times[reminders_sent] if reminders_sent < len(times) else None


def retry_time(
    *,
    failed_at: datetime,
    attempts: int,
    hours: tuple[int, int],
    base_seconds: int = 300,
    max_seconds: int = 6 * 3600,
    tz: ZoneInfo = AMSTERDAM,
) -> datetime:
    """When to retry after ``attempts`` failed sends: base × 2^(attempts−1), capped,
    then moved into the contact hours."""
    if attempts < 1:
        raise ValueError("attempts counts the failed sends so far (>= 1)")
    delay = min(base_seconds * (2 ** (attempts - 1)), max_seconds)
    return next_contact_time(failed_at + timedelta(seconds=delay), hours, tz)


# --- when a questionnaire was answered (paper / phone entry) -------------------------------
@dataclass(frozen=True)
class CompletionDay:
    """The verdict on a reported completion date: ``refusal`` is a reason code or None;
    ``outside_window`` is true when the date lies outside the timepoint's window."""

    refusal: str | None
    outside_window: bool


def completion_day_check(
    day: date,
    *,
    clock: time | None,
    now: datetime,
    registered_on: date,
    consent_in_force: bool,
    died_on: date | None,
    stopped_on: date | None,
    first_day: date,
    last_day: date,
    tz: ZoneInfo = AMSTERDAM,
) -> CompletionDay:
    """Is ``day`` (and ``clock``, when the time is known) possible as the moment a patient
    answered a questionnaire? SPEC.md §3.6. Refusal codes, checked in this order:

    - ``future``: after today (or later today than now, when the time is known);
    - ``before_registration``: before the cohort registration;
    - ``before_consent``: consent (b) (questionnaires) was not in force on that day;
    - ``after_death``: after the date of death (the day itself is possible);
    - ``after_withdrawal``: after a withdrawal that stops questionnaires took effect.

    A possible date outside ``first_day .. last_day`` (both included) is not refused but
    ``outside_window``: it needs an explicit confirmation and is flagged on the record.
    """
    _require_aware(now)
    local_now = now.astimezone(tz)
    today = local_now.date()
    refusal = None
    if day > today or (
        day == today and clock is not None and clock > local_now.time().replace(tzinfo=None)
    ):
        refusal = "future"
    elif day < registered_on:
        refusal = "before_registration"
    elif not consent_in_force:
        refusal = "before_consent"
    elif died_on is not None and day > died_on:
        refusal = "after_death"
    elif stopped_on is not None and day > stopped_on:
        refusal = "after_withdrawal"
    return CompletionDay(refusal=refusal, outside_window=not first_day <= day <= last_day)
