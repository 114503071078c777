"""The crf services a nurse calls check write access themselves (core.access.require_write),
whoever calls them: another site's nurse and read-only roles are refused with nothing
written, neither the questionnaire, its answers nor the audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from core.refusals import NotAllowed
from core.selectors import event_model_for
from crf import services
from crf.models import InstrumentResponse, Questionnaire
from tests.crf.conftest import full_answers

pytestmark = pytest.mark.django_db

REFUSED = ["nurse_b", "investigator_b", "monitor", "statistician", "administrator"]


@pytest.fixture
def week2(blend, participant):
    """Week 2 of a site A participant, window open now, not answered."""
    services.schedule_anchor(
        participant=participant,
        trial=blend,
        day0=timezone.localdate() - timedelta(days=14),
        is_actual=True,
    )
    return Questionnaire.objects.get(participant=participant, timepoint__code="week2")


def _answers(q) -> dict:
    return {code: full_answers(code) for code in q.timepoint.instruments}


def _state(q) -> tuple:
    """The questionnaire row, its answers, and the number of audit events of both."""
    q.refresh_from_db()
    responses = sorted(
        (r.instrument, r.answers, r.scores)
        for r in InstrumentResponse.objects.filter(questionnaire=q)
    )
    events = tuple(
        event_model_for(model).objects.count() for model in (Questionnaire, InstrumentResponse)
    )
    return model_to_dict(q), responses, events


def _enter(q, user):
    return services.questionnaire_enter(
        questionnaire=q,
        user=user,
        mode="paper",
        completed_on=timezone.localdate(),
        answers=_answers(q),
    )


@pytest.mark.parametrize("who", REFUSED)
def test_entry_by_another_site_or_a_read_only_role_is_refused_and_writes_nothing(
    request, week2, who
):
    before = _state(week2)
    with pytest.raises(NotAllowed):
        _enter(week2, request.getfixturevalue(who))
    assert _state(week2) == before
    assert week2.status == "scheduled"


@pytest.mark.parametrize("who", REFUSED)
def test_correction_by_another_site_or_a_read_only_role_is_refused_and_writes_nothing(
    request, nurse_a, week2, who
):
    _enter(week2, nurse_a)
    before = _state(week2)
    with pytest.raises(NotAllowed):
        services.questionnaire_answers_correct(
            questionnaire=week2,
            instrument="c15pal",
            answers=full_answers("c15pal") | {"q1": 4, "q2": 4, "q3": 4},
            user=request.getfixturevalue(who),
            reason="typing error against the paper form",
        )
    assert _state(week2) == before


@pytest.mark.parametrize("who", REFUSED)
def test_send_again_by_another_site_or_a_read_only_role_is_refused_and_writes_nothing(
    request, week2, who
):
    Questionnaire.objects.filter(pk=week2.pk).update(
        status="failed", attempts=5, last_error="SMTPException", next_action_at=None
    )
    before = _state(week2)
    with pytest.raises(NotAllowed):
        services.questionnaire_send_retry(questionnaire=week2, user=request.getfixturevalue(who))
    assert _state(week2) == before
    assert week2.status == "failed" and week2.attempts == 5


def test_the_sites_own_staff_may_enter_correct_and_send_again(nurse_a, investigator_a, week2):
    """The same calls by the participant's own site staff go through (the check is not a
    blanket refusal)."""
    _enter(week2, investigator_a)
    assert _state(week2)[0]["status"] == "completed"
    services.questionnaire_answers_correct(
        questionnaire=week2,
        instrument="c15pal",
        answers=full_answers("c15pal") | {"q1": 4},
        user=nurse_a,
        reason="typing error against the paper form",
    )
    assert (
        InstrumentResponse.objects.get(questionnaire=week2, instrument="c15pal").answers["q1"] == 4
    )
