"""Scheduling: day 0 → one questionnaire per timepoint with the right windows (both arms,
the schedule does not depend on the arm); re-anchoring moves only unsent rows; withdrawal
and death cancel pending rows at once."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from core.selectors import audit_trail
from crf import services
from crf.models import Questionnaire, Timepoint
from crf.windows import window_for

pytestmark = pytest.mark.django_db

SPEC_TABLE = {
    # code: (day, before, after, instruments)
    "baseline": (0, 14, 0, {"c15pal", "bm22", "pain", "eq5d5l"}),
    "week1": (7, 2, 3, {"pain"}),
    "week2": (14, 3, 3, {"pain", "c15pal"}),
    "week4": (28, 7, 7, {"pain", "c15pal", "bm22", "eq5d5l", "imcq", "ipcq"}),
    "week6": (42, 7, 7, {"pain"}),
    "week8": (56, 7, 7, {"pain", "c15pal", "eq5d5l"}),
    "week12": (84, 7, 14, {"pain", "c15pal", "bm22", "eq5d5l", "imcq", "ipcq"}),
    "month6": (182, 14, 28, {"c15pal", "bm22", "eq5d5l", "pain"}),
    "month12": (365, 28, 28, {"c15pal", "bm22", "eq5d5l", "pain"}),
}


def test_default_blend_schedule_is_data_from_the_spec(blend):
    tps = {tp.code: tp for tp in Timepoint.objects.filter(trial=blend)}
    assert set(tps) == set(SPEC_TABLE)
    for code, (day, before, after, instruments) in SPEC_TABLE.items():
        tp = tps[code]
        assert (tp.day_offset, tp.window_before, tp.window_after) == (day, before, after)
        assert set(tp.instruments) == instruments
    assert [tp.code for tp in tps.values() if tp.is_primary] == ["week4"]


@pytest.mark.parametrize("arm", ["intervention", "control"])
def test_day0_creates_one_row_per_timepoint_with_windows(blend, make_prom_participant, site_a, arm):
    """The arm plays no part: both arms get the same rows (the arm is not even an input)."""
    p = make_prom_participant(site_a)
    day0 = timezone.localdate() + timedelta(days=10)
    services.schedule_anchor(participant=p, trial=blend, day0=day0, is_actual=False)
    rows = {q.timepoint.code: q for q in Questionnaire.objects.filter(participant=p)}
    assert set(rows) == set(SPEC_TABLE)
    for code, (day, before, after, _instruments) in SPEC_TABLE.items():
        q = rows[code]
        w = window_for(day0=day0, day_offset=day, before=before, after=after)
        assert (q.opens_at, q.due_at, q.closes_at) == (w.opens_at, w.due_at, w.closes_at)
        assert q.status == "scheduled"
        assert q.day0 == day0 and q.day0_is_actual is False
        assert q.next_action_at >= q.opens_at
    # the baseline is due before day 0: its window closes at the end of day 0
    baseline = rows["baseline"]
    assert timezone.localtime(baseline.closes_at).date() == day0 + timedelta(days=1)
    assert timezone.localtime(baseline.opens_at).date() == day0 - timedelta(days=14)
    # audited, with a reason
    entry = audit_trail(model=Questionnaire, pk=baseline.pk)[0]
    assert entry.label == "insert" and "day 0" in entry.reason


def test_anchoring_twice_is_idempotent_and_unique(blend, participant):
    day0 = timezone.localdate() + timedelta(days=5)
    services.schedule_anchor(participant=participant, trial=blend, day0=day0, is_actual=False)
    services.schedule_anchor(participant=participant, trial=blend, day0=day0, is_actual=False)
    assert Questionnaire.objects.filter(participant=participant).count() == len(SPEC_TABLE)
    q = Questionnaire.objects.filter(participant=participant).first()
    with pytest.raises(IntegrityError):
        Questionnaire.objects.create(
            participant=participant,
            trial=blend,
            timepoint=q.timepoint,
            day0=day0,
            opens_at=q.opens_at,
            due_at=q.due_at,
            closes_at=q.closes_at,
        )


def test_reanchoring_moves_only_unsent_rows(blend, participant):
    planned = timezone.localdate() + timedelta(days=3)
    services.schedule_anchor(participant=participant, trial=blend, day0=planned, is_actual=False)
    baseline = Questionnaire.objects.get(participant=participant, timepoint__code="baseline")
    services.questionnaires_sweep()  # the baseline window is open: it goes out (if daytime)
    baseline.refresh_from_db()
    if baseline.status != "sent":  # outside contact hours: mark it sent by hand for the test
        Questionnaire.objects.filter(pk=baseline.pk).update(
            status="sent", sent_at=timezone.now(), next_action_at=baseline.closes_at
        )
    baseline.refresh_from_db()
    sent_window = (baseline.opens_at, baseline.closes_at)

    actual = planned + timedelta(days=4)
    services.schedule_anchor(participant=participant, trial=blend, day0=actual, is_actual=True)
    baseline.refresh_from_db()
    assert (baseline.opens_at, baseline.closes_at) == sent_window
    assert baseline.day0 == planned
    week4 = Questionnaire.objects.get(participant=participant, timepoint__code="week4")
    w = window_for(day0=actual, day_offset=28, before=7, after=7)
    assert (week4.opens_at, week4.closes_at, week4.day0, week4.day0_is_actual) == (
        w.opens_at,
        w.closes_at,
        actual,
        True,
    )
    changes = audit_trail(model=Questionnaire, pk=week4.pk)[-1].changes
    assert changes["day0"] == (planned.isoformat(), actual.isoformat())


def _withdraw(participant, scope, user):
    from cohort.models import Withdrawal

    return Withdrawal.objects.create(
        participant=participant, scope=scope, effective_on=timezone.localdate(), recorded_by=user
    )


def test_withdrawal_cancels_pending_rows_at_once(blend, participant, nurse_a):
    services.schedule_anchor(
        participant=participant, trial=blend, day0=timezone.localdate(), is_actual=True
    )
    done = Questionnaire.objects.get(participant=participant, timepoint__code="baseline")
    Questionnaire.objects.filter(pk=done.pk).update(
        status="completed",
        completed_on=timezone.localdate(),
        completion_recorded_at=timezone.now(),
        mode="paper",
    )
    _withdraw(participant, "questionnaires", nurse_a)
    n = services.questionnaires_cancel_pending(
        participant=participant, reason="withdrawal: questionnaires"
    )
    assert n == len(SPEC_TABLE) - 1
    statuses = dict(
        Questionnaire.objects.filter(participant=participant).values_list(
            "timepoint__code", "status"
        )
    )
    assert statuses.pop("baseline") == "completed"
    assert set(statuses.values()) == {"cancelled"}
    q = Questionnaire.objects.get(participant=participant, timepoint__code="week4")
    assert q.next_action_at is None and q.cancel_reason == "withdrawal: questionnaires"
    last = audit_trail(model=Questionnaire, pk=q.pk)[-1]
    assert last.changes["status"] == ("scheduled", "cancelled")
    assert last.reason == "withdrawal: questionnaires"
    # nothing more to cancel the second time
    assert services.questionnaires_cancel_pending(participant=participant, reason="again") == 0


def test_death_cancels_pending_rows_and_nothing_is_sent(blend, participant, nurse_a):
    from cohort.models import Death

    services.schedule_anchor(
        participant=participant, trial=blend, day0=timezone.localdate(), is_actual=True
    )
    Death.objects.create(
        participant=participant, died_on=timezone.localdate(), source="family", recorded_by=nurse_a
    )
    assert services.questionnaires_cancel_pending(participant=participant, reason="death") == len(
        SPEC_TABLE
    )
    result = services.questionnaires_sweep()
    assert result.invitations == 0
    assert not Questionnaire.objects.filter(participant=participant).exclude(status="cancelled")


def test_anchoring_after_a_withdrawal_creates_cancelled_rows(blend, participant, nurse_a):
    _withdraw(participant, "data_use", nurse_a)
    services.schedule_anchor(
        participant=participant, trial=blend, day0=date.today(), is_actual=True
    )
    assert set(
        Questionnaire.objects.filter(participant=participant).values_list("status", flat=True)
    ) == {"cancelled"}


def test_cohort_withdrawal_and_death_services_cancel_at_once(
    blend, make_prom_participant, site_a, nurse_a
):
    """End to end through cohort's own services (they call questionnaires_cancel_pending)."""
    from cohort import services as cohort_services

    p1, p2 = make_prom_participant(site_a), make_prom_participant(site_a)
    for p in (p1, p2):
        services.schedule_anchor(
            participant=p, trial=blend, day0=timezone.localdate(), is_actual=True
        )
    cohort_services.withdrawal_record(
        by=nurse_a,
        participant=p1,
        scope="questionnaires",
        effective_on=timezone.localdate(),
    )
    cohort_services.death_record(
        by=nurse_a, participant=p2, died_on=timezone.localdate(), source="family"
    )
    for p, why in ((p1, "withdrawal:questionnaires"), (p2, "death")):
        rows = Questionnaire.objects.filter(participant=p)
        assert set(rows.values_list("status", flat=True)) == {"cancelled"}
        assert set(rows.values_list("cancel_reason", flat=True)) == {why}


def test_a_callers_reason_is_not_overwritten(blend, make_prom_participant, site_a, nurse_a):
    """pghistory shares one context per request: the crf services must not relabel the
    reason the nurse typed for the withdrawal that triggered the cancellation."""
    from cohort import services as cohort_services
    from cohort.models import Withdrawal

    p = make_prom_participant(site_a)
    services.schedule_anchor(participant=p, trial=blend, day0=timezone.localdate(), is_actual=True)
    w = cohort_services.withdrawal_record(
        by=nurse_a,
        participant=p,
        scope="questionnaires",
        effective_on=timezone.localdate(),
        reason="patient finds the questionnaires too tiring",
    )
    assert audit_trail(model=Withdrawal, pk=w.pk)[-1].reason == (
        "patient finds the questionnaires too tiring"
    )
    q = Questionnaire.objects.get(participant=p, timepoint__code="week4")
    assert q.status == "cancelled" and q.cancel_reason == "withdrawal:questionnaires"
