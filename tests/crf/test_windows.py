"""Window, contact-hour and reminder arithmetic (crf.windows): table tests from SPEC.md
§3.5/§3.6 and Hypothesis properties, DST included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crf.windows import (
    AMSTERDAM,
    add_local_days,
    in_contact_hours,
    invitation_time,
    localise,
    next_contact_time,
    reminder_times,
    retry_time,
    window_for,
)

HOURS = (8, 21)


def ams(y, m, d, h=0, mi=0):
    return datetime(y, m, d, h, mi, tzinfo=AMSTERDAM)


@pytest.mark.parametrize(
    ("offset", "before", "after", "opens", "due", "closes"),
    [
        # baseline: day -14 .. day 0, due on day 0 (nothing after day 0)
        (0, 14, 0, date(2026, 2, 15), date(2026, 3, 1), date(2026, 3, 2)),
        # week 1: day 7, -2..+3
        (7, 2, 3, date(2026, 3, 6), date(2026, 3, 8), date(2026, 3, 12)),
        # week 4 (primary): day 28, -7..+7; crosses the spring DST change (29 March 2026)
        (28, 7, 7, date(2026, 3, 22), date(2026, 3, 29), date(2026, 4, 6)),
        # month 12: day 365, -28..+28
        (365, 28, 28, date(2027, 2, 1), date(2027, 3, 1), date(2027, 3, 30)),
    ],
)
def test_window_table(offset, before, after, opens, due, closes):
    w = window_for(day0=date(2026, 3, 1), day_offset=offset, before=before, after=after)
    assert w.opens_at == ams(opens.year, opens.month, opens.day)
    assert w.due_at == ams(due.year, due.month, due.day)
    assert w.closes_at == ams(closes.year, closes.month, closes.day)
    assert w.opens_at.tzinfo is UTC


def test_window_midnight_is_local_across_dst():
    """Local midnight is 23:00 UTC in winter and 22:00 UTC in summer."""
    w = window_for(day0=date(2026, 3, 20), day_offset=14, before=3, after=3)
    assert w.opens_at == datetime(2026, 3, 30, 22, 0, tzinfo=UTC)  # 31 March, CEST
    w = window_for(day0=date(2026, 3, 1), day_offset=0, before=14, after=0)
    assert w.opens_at == datetime(2026, 2, 14, 23, 0, tzinfo=UTC)  # 15 February, CET


def test_window_refuses_negative_days():
    with pytest.raises(ValueError):
        window_for(day0=date(2026, 3, 1), day_offset=7, before=-1, after=3)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ams(2026, 5, 4, 7, 59), ams(2026, 5, 4, 8, 0)),
        (ams(2026, 5, 4, 8, 0), ams(2026, 5, 4, 8, 0)),
        (ams(2026, 5, 4, 20, 59), ams(2026, 5, 4, 20, 59)),
        (ams(2026, 5, 4, 21, 0), ams(2026, 5, 5, 8, 0)),
        (ams(2026, 5, 4, 23, 30), ams(2026, 5, 5, 8, 0)),
        (ams(2026, 5, 4, 0, 0), ams(2026, 5, 4, 8, 0)),
        # the night of the spring change (02:00 -> 03:00)
        (ams(2026, 3, 28, 22, 0), ams(2026, 3, 29, 8, 0)),
        # the night of the autumn change (03:00 -> 02:00)
        (ams(2026, 10, 24, 21, 30), ams(2026, 10, 25, 8, 0)),
    ],
)
def test_next_contact_time_table(at, expected):
    assert next_contact_time(at, HOURS) == expected


def test_next_contact_time_is_utc_and_needs_aware():
    assert next_contact_time(ams(2026, 5, 4, 9), HOURS).tzinfo is UTC
    with pytest.raises(ValueError):
        next_contact_time(datetime(2026, 5, 4, 9), HOURS)


def test_invitation_goes_out_at_eight_on_the_opening_day():
    w = window_for(day0=date(2026, 6, 1), day_offset=28, before=7, after=7)
    assert invitation_time(w, HOURS) == ams(2026, 6, 22, 8, 0)


def test_reminders_after_three_and_seven_days_keep_wall_clock_across_dst():
    sent = ams(2026, 3, 26, 10, 15)  # CET; +3 days is CEST
    closes = ams(2026, 4, 10)
    assert reminder_times(sent_at=sent, closes_at=closes, reminder_days=[3, 7], hours=HOURS) == [
        ams(2026, 3, 29, 10, 15),
        ams(2026, 4, 2, 10, 15),
    ]


def test_reminders_never_at_or_after_window_close():
    sent = ams(2026, 5, 1, 12, 0)
    # week-1 style window closing 4 days after sending: only the +3 reminder fits
    assert reminder_times(
        sent_at=sent, closes_at=ams(2026, 5, 5), reminder_days=[3, 7], hours=HOURS
    ) == [ams(2026, 5, 4, 12, 0)]
    assert (
        reminder_times(
            sent_at=sent, closes_at=ams(2026, 5, 4, 12, 0), reminder_days=[3, 7], hours=HOURS
        )
        == []
    )


def test_reminder_late_evening_moves_to_next_morning():
    sent = ams(2026, 5, 1, 20, 55)
    times = reminder_times(sent_at=sent, closes_at=ams(2026, 6, 1), reminder_days=[3], hours=HOURS)
    assert times == [ams(2026, 5, 4, 20, 55)]
    # configured contact hours until 20:00 push it to the morning after
    times = reminder_times(
        sent_at=sent, closes_at=ams(2026, 6, 1), reminder_days=[3], hours=(8, 20)
    )
    assert times == [ams(2026, 5, 5, 8, 0)]


def test_retry_backoff_doubles_and_respects_contact_hours():
    failed = ams(2026, 5, 4, 10, 0)
    assert retry_time(failed_at=failed, attempts=1, hours=HOURS, base_seconds=300) == ams(
        2026, 5, 4, 10, 5
    )
    assert retry_time(failed_at=failed, attempts=3, hours=HOURS, base_seconds=300) == ams(
        2026, 5, 4, 10, 20
    )
    assert retry_time(failed_at=ams(2026, 5, 4, 20, 58), attempts=1, hours=HOURS) == ams(
        2026, 5, 5, 8, 0
    )
    # capped at 6 hours
    assert retry_time(failed_at=failed, attempts=30, hours=HOURS) == ams(2026, 5, 4, 16, 0)


def test_localise_handles_gap_and_fold():
    # 02:30 does not exist on 29 March 2026: moved forward by the gap
    assert localise(date(2026, 3, 29), datetime(2000, 1, 1, 2, 30).time()) == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )
    # 02:30 happens twice on 25 October 2026: the first one (CEST)
    assert localise(date(2026, 10, 25), datetime(2000, 1, 1, 2, 30).time()) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


# --- properties --------------------------------------------------------------------------------
instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
hour_pairs = st.tuples(st.integers(0, 22), st.integers(1, 24)).filter(lambda p: p[0] < p[1])


@settings(max_examples=300, deadline=None)
@given(at=instants, hours=hour_pairs)
def test_next_contact_time_is_inside_hours_and_not_before(at, hours):
    result = next_contact_time(at, hours)
    assert result >= at
    assert in_contact_hours(result, hours)
    assert result - at < timedelta(days=1, hours=2)
    if in_contact_hours(at, hours):
        assert result == at


@settings(max_examples=300, deadline=None)
@given(
    day0=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 1, 1)),
    offset=st.integers(0, 400),
    before=st.integers(0, 30),
    after=st.integers(0, 30),
)
def test_window_properties(day0, offset, before, after):
    w = window_for(day0=day0, day_offset=offset, before=before, after=after)
    assert w.opens_at <= w.due_at < w.closes_at
    span_hours = (w.closes_at - w.opens_at).total_seconds() / 3600
    # whole local days; a DST change inside adds or removes one hour
    assert abs(span_hours - 24 * (before + after + 1)) <= 1
    assert w.opens_at.astimezone(AMSTERDAM).hour == 0
    assert w.closes_at.astimezone(AMSTERDAM).hour == 0


@settings(max_examples=300, deadline=None)
@given(
    sent=instants,
    window_days=st.integers(1, 60),
    days=st.lists(st.integers(1, 30), max_size=4),
    hours=hour_pairs,
)
def test_reminders_in_contact_hours_before_close_and_increasing(sent, window_days, days, hours):
    closes = sent + timedelta(days=window_days)
    times = reminder_times(sent_at=sent, closes_at=closes, reminder_days=days, hours=hours)
    assert times == sorted(set(times))
    for t in times:
        assert sent < t < closes
        assert in_contact_hours(t, hours)


@settings(max_examples=200, deadline=None)
@given(at=instants, days=st.integers(0, 400))
def test_add_local_days_keeps_wall_clock(at, days):
    result = add_local_days(at, days)
    local_in, local_out = at.astimezone(AMSTERDAM), result.astimezone(AMSTERDAM)
    assert local_out.date() == local_in.date() + timedelta(days=days)
    # the same wall-clock time except when it falls in the spring-forward gap
    shift = abs((local_out.hour * 60 + local_out.minute) - (local_in.hour * 60 + local_in.minute))
    assert shift in (0, 60)


# --- completion dates of paper / phone entries (SPEC.md §3.6) --------------------------------
def _completion(day, clock=None, **overrides):
    from datetime import date, datetime, time  # noqa: F401 - local to this table

    from crf.windows import AMSTERDAM, completion_day_check

    values = {
        "clock": clock,
        "now": datetime(2025, 3, 10, 15, 0, tzinfo=AMSTERDAM),
        "registered_on": date(2025, 1, 6),
        "consent_in_force": True,
        "died_on": None,
        "stopped_on": None,
        "first_day": date(2025, 3, 1),
        "last_day": date(2025, 3, 8),
    } | overrides
    return completion_day_check(day, **values)


@pytest.mark.parametrize(
    ("day", "clock", "overrides", "refusal", "outside"),
    [
        ("2025-03-01", None, {}, None, False),  # first window day, bounds included
        ("2025-03-08", None, {}, None, False),  # last window day
        ("2025-02-28", None, {}, None, True),
        ("2025-03-09", None, {}, None, True),
        ("2025-03-10", None, {}, None, True),  # today, no time
        ("2025-03-10", "14:59", {}, None, True),
        ("2025-03-10", "15:01", {}, "future", True),  # later today
        ("2025-03-11", None, {}, "future", True),
        ("2025-01-06", None, {}, None, True),  # the registration day itself
        ("2025-01-05", None, {}, "before_registration", True),
        ("2025-03-05", None, {"consent_in_force": False}, "before_consent", False),
        ("2025-03-05", None, {"died_on": "2025-03-05"}, None, False),  # the day of death
        ("2025-03-06", None, {"died_on": "2025-03-05"}, "after_death", False),
        ("2025-03-06", None, {"stopped_on": "2025-03-05"}, "after_withdrawal", False),
        ("2025-03-04", None, {"stopped_on": "2025-03-05"}, None, False),
    ],
)
def test_completion_day_check(day, clock, overrides, refusal, outside):
    from datetime import date, time

    overrides = {
        k: date.fromisoformat(v) if isinstance(v, str) else v for k, v in overrides.items()
    }
    result = _completion(
        date.fromisoformat(day), time.fromisoformat(clock) if clock else None, **overrides
    )
    assert (result.refusal, result.outside_window) == (refusal, outside)
