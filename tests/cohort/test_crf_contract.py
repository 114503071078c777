"""Cohort <-> crf contract with the real crf service: a questionnaire-stopping withdrawal or a
death cancels the participant's pending questionnaires in the same transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cohort import services

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


@pytest.fixture
def scheduled(nurse_a, participant_a, consented, blend):
    """BLEND and its schedule as the data migrations make them (the ``blend`` fixture
    re-creates them after a flush), and a planned day 0 in three days."""
    from crf.models import Questionnaire
    from crf.services import schedule_anchor

    consented(participant_a, nurse_a, on=TODAY() - timedelta(days=20))
    trial = blend
    schedule_anchor(
        participant=participant_a, trial=trial, day0=TODAY() + timedelta(days=3), is_actual=False
    )
    pending = Questionnaire.objects.filter(participant=participant_a).exclude(status="cancelled")
    assert pending.count() >= 5
    return pending


@pytest.mark.parametrize("scope", ["questionnaires", "data_collection", "data_use"])
def test_questionnaire_stopping_withdrawal_cancels_pending_questionnaires(
    nurse_a, participant_a, scheduled, scope
):
    from crf.models import Questionnaire

    services.withdrawal_record(
        by=nurse_a, participant=participant_a, scope=scope, effective_on=TODAY()
    )
    assert (
        not Questionnaire.objects.filter(participant=participant_a)
        .exclude(status="cancelled")
        .exists()
    )


def test_trial_withdrawal_keeps_questionnaires(nurse_a, participant_a, scheduled):
    count = scheduled.count()
    services.withdrawal_record(
        by=nurse_a, participant=participant_a, scope="trial", effective_on=TODAY()
    )
    assert scheduled.count() == count


def test_death_cancels_pending_questionnaires(nurse_a, participant_a, scheduled):
    from crf.models import Questionnaire

    services.death_record(by=nurse_a, participant=participant_a, died_on=TODAY(), source="family")
    assert (
        not Questionnaire.objects.filter(participant=participant_a)
        .exclude(status="cancelled")
        .exists()
    )
