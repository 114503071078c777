"""The sweep's decision rule (crf.lifecycle.decide): table tests and properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crf.lifecycle import Action, Snapshot, decide
from crf.windows import AMSTERDAM, in_contact_hours

HOURS = (8, 21)
KW = {"hours": HOURS, "reminder_days": [3, 7], "stale_seconds": 600}


def ams(y, m, d, h=0, mi=0):
    return datetime(y, m, d, h, mi, tzinfo=AMSTERDAM).astimezone(UTC)


OPENS, CLOSES = ams(2026, 5, 4), ams(2026, 5, 19)


def snap(**kw):
    base = {"status": "scheduled", "opens_at": OPENS, "closes_at": CLOSES}
    return Snapshot(**(base | kw))


@pytest.mark.parametrize(
    ("snapshot", "now", "action", "at", "status"),
    [
        # not open yet: wait for the window
        (snap(), ams(2026, 5, 1, 12), Action.WAIT, OPENS, None),
        # open at midnight: wait for 08:00 as "open"
        (snap(), ams(2026, 5, 4, 0, 1), Action.WAIT, ams(2026, 5, 4, 8), "open"),
        (snap(), ams(2026, 5, 4, 8), Action.SEND_INVITATION, None, None),
        (snap(status="open"), ams(2026, 5, 6, 21, 0), Action.WAIT, ams(2026, 5, 7, 8), "open"),
        # closed unanswered
        (snap(status="open"), CLOSES, Action.MISSED, None, None),
        (snap(status="sent", sent_at=ams(2026, 5, 4, 8)), CLOSES, Action.MISSED, None, None),
        # reminders at +3 and +7 days
        (
            snap(status="sent", sent_at=ams(2026, 5, 4, 8)),
            ams(2026, 5, 5, 9),
            Action.WAIT,
            ams(2026, 5, 7, 8),
            None,
        ),
        (
            snap(status="sent", sent_at=ams(2026, 5, 4, 8)),
            ams(2026, 5, 7, 8),
            Action.SEND_REMINDER,
            None,
            None,
        ),
        (
            snap(status="reminded", sent_at=ams(2026, 5, 4, 8), reminders_done=1),
            ams(2026, 5, 8, 9),
            Action.WAIT,
            ams(2026, 5, 11, 8),
            None,
        ),
        # after the last reminder: wait for the close
        (
            snap(status="reminded", sent_at=ams(2026, 5, 4, 8), reminders_done=2),
            ams(2026, 5, 12, 9),
            Action.WAIT,
            CLOSES,
            None,
        ),
        # a live claim: wait until it would be stale
        (
            snap(
                status="sending", sending_kind="invitation", sending_started_at=ams(2026, 5, 4, 8)
            ),
            ams(2026, 5, 4, 8, 5),
            Action.WAIT,
            ams(2026, 5, 4, 8, 10),
            None,
        ),
        # a stale claim (worker died mid-send): send again
        (
            snap(
                status="sending", sending_kind="invitation", sending_started_at=ams(2026, 5, 4, 8)
            ),
            ams(2026, 5, 4, 8, 11),
            Action.SEND_INVITATION,
            None,
            None,
        ),
        # a stale claim discovered at night: back to open until 08:00
        (
            snap(
                status="sending",
                sending_kind="invitation",
                sending_started_at=ams(2026, 5, 4, 20, 55),
            ),
            ams(2026, 5, 4, 21, 6),
            Action.WAIT,
            ams(2026, 5, 5, 8),
            "open",
        ),
        # a stale reminder claim goes back to "sent" and is resent
        (
            snap(
                status="sending",
                sending_kind="reminder",
                sent_at=ams(2026, 5, 4, 8),
                sending_started_at=ams(2026, 5, 7, 8),
            ),
            ams(2026, 5, 7, 8, 11),
            Action.SEND_REMINDER,
            None,
            None,
        ),
    ],
)
def test_decide_table(snapshot, now, action, at, status):
    step = decide(snapshot, now=now, **KW)
    assert step.action is action
    assert step.at == at
    assert step.status_if_waiting == status


def test_final_statuses_have_nothing_to_decide():
    for status in ("completed", "missed", "cancelled", "failed"):
        with pytest.raises(ValueError):
            decide(snap(status=status), now=OPENS, **KW)


statuses = st.sampled_from(["scheduled", "open", "sent", "reminded", "sending"])
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=500, deadline=None)
@given(
    status=statuses,
    opens=instants,
    length=st.integers(1, 60),
    sent_delay=st.integers(0, 60 * 24 * 10),
    reminders=st.integers(0, 3),
    kind=st.sampled_from(["invitation", "reminder"]),
    now_offset=st.integers(-60 * 24 * 5, 60 * 24 * 70),
)
def test_decide_properties(status, opens, length, sent_delay, reminders, kind, now_offset):
    """Never sends outside contact hours or after the close; a wait is always in the future
    (the sweep cannot spin on a row)."""
    closes = opens + timedelta(days=length)
    sent_at = opens + timedelta(minutes=sent_delay)
    if sent_at >= closes:
        sent_at = opens
    now = opens + timedelta(minutes=now_offset)
    s = Snapshot(
        status=status,
        opens_at=opens,
        closes_at=closes,
        sent_at=sent_at if status in ("sent", "reminded", "sending") else None,
        reminders_done=reminders if status != "scheduled" else 0,
        sending_kind=kind if status == "sending" else "",
        sending_started_at=now - timedelta(minutes=sent_delay % 30)
        if status == "sending"
        else None,
    )
    step = decide(s, now=now, **KW)
    if step.action in (Action.SEND_INVITATION, Action.SEND_REMINDER):
        assert in_contact_hours(now, HOURS)
        assert opens <= now < closes
    if step.action is Action.WAIT:
        assert step.at > now
    if step.action is Action.MISSED:
        assert now >= closes
