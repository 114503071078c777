"""What the sweep does with one due questionnaire: a pure decision over plain values.

The sweep locks a due row, builds a :class:`Snapshot`, asks :func:`decide`, and
applies the returned :class:`Step`. Keeping the rule here (no ORM, no clock)
lets it be table- and property-tested: it never sends outside contact hours,
never after the window closes, and always moves a row forward (a ``WAIT``
is strictly in the future), so a sweep can never spin on one row.

Exactly-once sending: a send is claimed by setting ``sending`` with an attempt
id (committed before the mail goes out) and completed by setting ``sent`` for
that attempt id. A claim older than ``stale_seconds`` belongs to a worker that
died mid-send (the Celery hard time limit ends any live send long before); the
rule is to **send again**: the SMTP hand-over either completed or it did not,
and the window in which a mail was accepted but the ``sent`` mark not yet
committed is milliseconds wide, while losing an invitation silently would
cost a primary-endpoint measurement.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from crf.windows import next_contact_time, next_reminder_time


class Action(enum.Enum):
    WAIT = "wait"  # nothing to do until ``at``
    MISSED = "missed"  # the window closed unanswered
    SEND_INVITATION = "send_invitation"
    SEND_REMINDER = "send_reminder"


@dataclass(frozen=True)
class Snapshot:
    status: str
    opens_at: datetime
    closes_at: datetime
    sent_at: datetime | None = None
    reminders_done: int = 0  # reminders sent or given up
    sending_kind: str = ""
    sending_started_at: datetime | None = None


@dataclass(frozen=True)
class Step:
    action: Action
    at: datetime | None = None  # for WAIT: when to look again
    status_if_waiting: str | None = None  # for WAIT out of a stale claim: the status to restore


def decide(
    snap: Snapshot,
    *,
    now: datetime,
    hours: tuple[int, int],
    reminder_days: list[int] | tuple[int, ...],
    stale_seconds: int,
) -> Step:
    status = snap.status
    if status in ("completed", "missed", "cancelled", "failed"):
        raise ValueError(f"a {status} questionnaire has nothing to decide")

    if status == "sending":
        started = snap.sending_started_at or now
        stale_at = started + timedelta(seconds=stale_seconds)
        if now < stale_at:
            return Step(Action.WAIT, at=stale_at)
        # A dead claim: the send did not (visibly) complete; continue as before the claim.
        if snap.sending_kind == "reminder":
            status = "reminded" if snap.reminders_done > 0 else "sent"
        else:
            status = "open"
        restored = status
    else:
        restored = None

    if now >= snap.closes_at:
        return Step(Action.MISSED)

    if status in ("scheduled", "open"):
        if now < snap.opens_at:
            return Step(Action.WAIT, at=snap.opens_at, status_if_waiting=restored)
        send_at = next_contact_time(now, hours)
        if send_at > now:
            return Step(
                Action.WAIT, at=min(send_at, snap.closes_at), status_if_waiting=restored or "open"
            )
        return Step(Action.SEND_INVITATION)

    if status in ("sent", "reminded"):
        if snap.sent_at is None:
            raise ValueError("a sent questionnaire needs sent_at")
        due = next_reminder_time(
            sent_at=snap.sent_at,
            reminders_sent=snap.reminders_done,
            closes_at=snap.closes_at,
            reminder_days=reminder_days,
            hours=hours,
        )
        if due is None:
            return Step(Action.WAIT, at=snap.closes_at, status_if_waiting=restored)
        if now < due:
            return Step(Action.WAIT, at=due, status_if_waiting=restored)
        send_at = next_contact_time(now, hours)
        if send_at > now:
            return Step(Action.WAIT, at=min(send_at, snap.closes_at), status_if_waiting=restored)
        return Step(Action.SEND_REMINDER)

    raise ValueError(f"unknown status {status!r}")
