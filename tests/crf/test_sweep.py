"""The sweep (crf.services.questionnaires_sweep) in-process: invitations at window opening
inside contact hours, reminders at +3/+7 days, missed at close, the contact re-check at send
time, SMTP failure → backoff → failed, stale claims, and two sweeps at once."""

from __future__ import annotations

import socket
import threading
from datetime import datetime, time, timedelta

import pytest
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from core.selectors import audit_trail
from crf import services
from crf.mail import read_sent
from crf.models import Questionnaire, QuestionnaireLink, Timepoint
from crf.windows import AMSTERDAM

pytestmark = pytest.mark.django_db


def at(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=AMSTERDAM)


@pytest.fixture
def week4(blend, participant):
    """The week-4 questionnaire of a participant whose week-4 window opens in 10 days."""
    tp = Timepoint.objects.get(trial=blend, code="week4")
    opens = timezone.localdate() + timedelta(days=10)
    day0 = opens + timedelta(days=tp.window_before - tp.day_offset)
    services.schedule_anchor(participant=participant, trial=blend, day0=day0, is_actual=True)
    q = Questionnaire.objects.get(participant=participant, timepoint=tp)
    assert timezone.localtime(q.opens_at).date() == opens
    # only week 4 matters here: the others are closed off for the test
    Questionnaire.objects.filter(participant=participant).exclude(pk=q.pk).update(
        status="cancelled", next_action_at=None
    )
    return q


def mails_to(outbox, email="patient@example.invalid"):
    return [m for m in outbox if email in m.to]


def test_invitation_only_from_opening_and_inside_contact_hours(week4, mailoutbox):
    opens = timezone.localtime(week4.opens_at).date()
    services.questionnaires_sweep(now=at(opens - timedelta(days=1), 12))
    services.questionnaires_sweep(now=at(opens, 7, 59))
    assert mailoutbox == []
    week4.refresh_from_db()
    assert week4.status == "scheduled"
    result = services.questionnaires_sweep(now=at(opens, 8, 0))
    assert result.invitations == 1 and len(mailoutbox) == 1
    week4.refresh_from_db()
    assert week4.status == "sent" and week4.sent_at == at(opens, 8, 0)
    assert week4.next_action_at == at(opens + timedelta(days=3), 8, 0)  # first reminder
    link = QuestionnaireLink.objects.get(questionnaire=week4)
    assert link.expires_at == week4.closes_at and link.kind == "invitation"
    # audited as a system action, status by status
    trail = audit_trail(model=Questionnaire, pk=week4.pk)
    assert [e.changes.get("status", (None, None))[1] for e in trail[-2:]] == ["sending", "sent"]


def test_a_window_opening_at_night_waits_for_eight(week4, mailoutbox):
    opens = timezone.localtime(week4.opens_at).date()
    Questionnaire.objects.filter(pk=week4.pk).update(next_action_at=week4.opens_at)
    services.questionnaires_sweep(now=at(opens, 0, 30))
    week4.refresh_from_db()
    assert mailoutbox == [] and week4.status == "open"
    assert week4.next_action_at == at(opens, 8)
    services.questionnaires_sweep(now=at(opens, 8, 1))
    assert len(mailoutbox) == 1


def test_reminders_after_3_and_7_days_then_missed(week4, mailoutbox):
    opens = timezone.localtime(week4.opens_at).date()
    services.questionnaires_sweep(now=at(opens, 10))
    services.questionnaires_sweep(now=at(opens + timedelta(days=3), 9, 59))
    assert len(mailoutbox) == 1
    services.questionnaires_sweep(now=at(opens + timedelta(days=3), 10))
    week4.refresh_from_db()
    assert len(mailoutbox) == 2 and week4.status == "reminded" and week4.reminders_sent == 1
    assert "Reminder" in mailoutbox[1].subject or "Herinnering" in mailoutbox[1].subject
    # a reminder due at 10:00 found at 21:30 waits for the next morning
    services.questionnaires_sweep(now=at(opens + timedelta(days=7), 21, 30))
    assert len(mailoutbox) == 2
    week4.refresh_from_db()
    assert week4.next_action_at == at(opens + timedelta(days=8), 8)
    services.questionnaires_sweep(now=at(opens + timedelta(days=8), 8))
    week4.refresh_from_db()
    assert len(mailoutbox) == 3 and week4.reminders_sent == 2
    # no third reminder; at the close it is missed, and nothing is sent after that
    for days in (9, 12, 14):
        services.questionnaires_sweep(now=at(opens + timedelta(days=days), 12))
    week4.refresh_from_db()
    assert week4.status == "reminded"
    services.questionnaires_sweep(now=week4.closes_at)
    week4.refresh_from_db()
    assert week4.status == "missed" and week4.next_action_at is None
    services.questionnaires_sweep(now=week4.closes_at + timedelta(days=5))
    assert len(mailoutbox) == 3
    # every mail carries a working, distinct link
    assert QuestionnaireLink.objects.filter(questionnaire=week4).count() == 3


def test_send_time_recheck_cancels_after_withdrawal_or_death(
    week4, mailoutbox, participant, nurse_a
):
    """Cohort should cancel at once; even if it did not, the sweep re-checks at send time."""
    from cohort.models import Withdrawal

    opens = timezone.localtime(week4.opens_at).date()
    Withdrawal.objects.create(
        participant=participant, scope="questionnaires", effective_on=opens, recorded_by=nurse_a
    )
    result = services.questionnaires_sweep(now=at(opens, 9))
    week4.refresh_from_db()
    assert result.cancelled == 1 and mailoutbox == []
    assert week4.status == "cancelled" and "withdrawn_questionnaires" in week4.cancel_reason


def test_no_reminder_after_death(week4, mailoutbox, participant, nurse_a):
    from cohort.models import Death

    opens = timezone.localtime(week4.opens_at).date()
    services.questionnaires_sweep(now=at(opens, 9))
    assert len(mailoutbox) == 1
    Death.objects.create(
        participant=participant,
        died_on=opens + timedelta(days=1),
        source="family",
        recorded_by=nurse_a,
    )
    services.questionnaires_sweep(now=at(opens + timedelta(days=3), 9))
    week4.refresh_from_db()
    assert (
        len(mailoutbox) == 1 and week4.status == "cancelled" and "deceased" in week4.cancel_reason
    )


def test_no_email_address_keeps_it_open_for_the_nurses(
    blend, make_prom_participant, site_a, mailoutbox
):
    p = make_prom_participant(site_a, email="")
    services.schedule_anchor(
        participant=p, trial=blend, day0=timezone.localdate() + timedelta(days=2), is_actual=False
    )
    services.questionnaires_sweep(now=at(timezone.localdate() + timedelta(days=1), 12))
    q = Questionnaire.objects.get(participant=p, timepoint__code="baseline")
    assert mailoutbox == [] and q.status == "open" and q.last_error == "no email address"


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_smtp_failure_retries_with_backoff_then_failed(week4, nurse_a):
    from crf.selectors import worklist

    opens = timezone.localtime(week4.opens_at).date()
    t0 = at(opens, 9)
    with override_settings(
        QUESTIONNAIRE_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=closed_port(),
        EMAIL_TIMEOUT=2,
        QUESTIONNAIRE_MAX_SEND_ATTEMPTS=3,
        QUESTIONNAIRE_RETRY_BASE_SECONDS=300,
    ):
        r = services.questionnaires_sweep(now=t0)
        week4.refresh_from_db()
        assert r.retried == 1 and week4.status == "open" and week4.attempts == 1
        assert "ConnectionRefused" in week4.last_error
        assert week4.next_action_at == t0 + timedelta(minutes=5)
        # not before the backoff
        assert services.questionnaires_sweep(now=t0 + timedelta(minutes=4)).examined == 0
        services.questionnaires_sweep(now=t0 + timedelta(minutes=5))
        week4.refresh_from_db()
        assert week4.attempts == 2 and week4.next_action_at == t0 + timedelta(minutes=15)
        r = services.questionnaires_sweep(now=t0 + timedelta(minutes=15))
        week4.refresh_from_db()
    assert r.failed == 1
    assert week4.status == "failed" and week4.attempts == 3 and week4.next_action_at is None
    assert services.questionnaires_sweep(now=t0 + timedelta(days=1)).examined == 0
    # visible to the nurses of that site
    assert list(worklist(user=nurse_a, bucket="failed")) == [week4]
    # each failed attempt wrote a link nobody received; none of them is usable by anyone
    assert QuestionnaireLink.objects.filter(questionnaire=week4).count() == 3


def test_a_stale_sending_claim_is_sent_again_once(week4, mailoutbox):
    """A claim whose worker died (status sending, older than the stale limit) is resent."""
    import uuid

    opens = timezone.localtime(week4.opens_at).date()
    claimed = at(opens, 9)
    Questionnaire.objects.filter(pk=week4.pk).update(
        status="sending",
        sending_kind="invitation",
        sending_attempt=uuid.uuid4(),
        sending_started_at=claimed,
        next_action_at=claimed + timedelta(seconds=600),
    )
    services.questionnaires_sweep(now=claimed + timedelta(seconds=300))
    assert mailoutbox == []
    services.questionnaires_sweep(now=claimed + timedelta(seconds=600))
    services.questionnaires_sweep(now=claimed + timedelta(seconds=900))
    week4.refresh_from_db()
    assert len(mailoutbox) == 1 and week4.status == "sent"


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_each_invitation_once(
    blend, make_prom_participant, site_a, tmp_path, monkeypatch
):
    count_file = tmp_path / "sent.jsonl"
    monkeypatch.setenv("CRF_MAIL_COUNT_FILE", str(count_file))
    monkeypatch.setenv("CRF_MAIL_SEND_DELAY", "0.05")
    people = [make_prom_participant(site_a, email=f"p{i}@example.invalid") for i in range(12)]
    day0 = timezone.localdate() + timedelta(days=3)
    for p in people:
        services.schedule_anchor(participant=p, trial=blend, day0=day0, is_actual=False)
    now = at(timezone.localdate() + timedelta(days=1), 12)  # baselines open, daytime
    barrier = threading.Barrier(3)
    results = []

    def sweep():
        try:
            barrier.wait()
            results.append(services.questionnaires_sweep(now=now))
        finally:
            connections.close_all()

    with override_settings(QUESTIONNAIRE_EMAIL_BACKEND="crf.mail.FileCountingBackend"):
        threads = [threading.Thread(target=sweep) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    sent = read_sent(str(count_file))
    recipients = sorted(r for line in sent for r in line["to"])
    assert recipients == sorted(f"p{i}@example.invalid" for i in range(12))
    assert sum(r.invitations for r in results) == 12
    assert sum(1 for r in results if r.invitations) >= 2  # the work really was shared
    assert Questionnaire.objects.filter(timepoint__code="baseline", status="sent").count() == 12


def test_one_broken_row_does_not_block_the_others(
    blend, make_prom_participant, site_a, mailoutbox, monkeypatch
):
    """A row whose step raises (here: its mail cannot be rendered) is set aside with the
    error recorded; the rows behind it are still sent."""
    import crf.services as svc

    people = [make_prom_participant(site_a, email=f"r{i}@example.invalid") for i in range(3)]
    for p in people:
        services.schedule_anchor(
            participant=p,
            trial=blend,
            day0=timezone.localdate() + timedelta(days=3),
            is_actual=False,
        )
    Questionnaire.objects.exclude(timepoint__code="baseline").update(
        status="cancelled", next_action_at=None
    )
    broken = Questionnaire.objects.get(participant=people[0], timepoint__code="baseline")
    Questionnaire.objects.filter(pk=broken.pk).update(
        next_action_at=timezone.now() - timedelta(days=9)
    )
    real = svc.render_message

    def render(**kwargs):
        if kwargs["closes_at"] == broken.closes_at and render.calls == 0:
            render.calls += 1
            raise RuntimeError("template exploded")
        return real(**kwargs)

    render.calls = 0
    monkeypatch.setattr(svc, "render_message", render)
    now = at(timezone.localdate() + timedelta(days=1), 12)
    result = services.questionnaires_sweep(now=now)
    broken.refresh_from_db()
    assert broken.status == "scheduled" and broken.last_error == "sweep error: RuntimeError"
    assert broken.next_action_at == now + timedelta(minutes=30)
    assert not QuestionnaireLink.objects.filter(questionnaire=broken).exists()  # rolled back
    assert result.invitations == 2 and len(mailoutbox) == 2


def test_completion_while_the_mail_is_on_its_way_wins(week4, nurse_a):
    """A claim being sent, then the questionnaire completed (e.g. by phone): marking the
    send done changes nothing; the row stays completed with no reminder planned."""
    from crf.services import SweepResult, _claim_one, _mark_sent
    from tests.crf.conftest import full_answers

    opens = timezone.localtime(week4.opens_at).date()
    found, claim = _claim_one(at(opens, 9), SweepResult())
    assert found and claim is not None
    week4.refresh_from_db()
    assert week4.status == "sending"
    services.questionnaire_enter(
        questionnaire=week4,
        user=nurse_a,
        mode="phone",
        completed_on=timezone.localdate(),
        answers={c: full_answers(c) for c in week4.timepoint.instruments},
        confirm_outside_window=timezone.localdate(),
    )
    assert _mark_sent(claim, at(opens, 9, 1)) is False
    week4.refresh_from_db()
    assert week4.status == "completed" and week4.sent_at is None and week4.next_action_at is None
