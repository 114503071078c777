"""Day 0 (planned / actual) on the participant page, from randomization's panel (cohort does
not import randomization); a planned day 0 more than 90 days ahead is flagged."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from cohort.rules import DAY0_PLANNED_WARN_DAYS, day0_planned_too_far

pytestmark = pytest.mark.django_db

D = date(2026, 3, 1)


@pytest.mark.parametrize(
    ("planned", "actual", "warn"),
    [
        (D + timedelta(days=90), None, False),
        (D + timedelta(days=91), None, True),
        (D + timedelta(days=91), D, False),  # the actual date replaces the plan
        (None, None, False),
        (D - timedelta(days=5), None, False),
    ],
)
def test_day0_planned_too_far(planned, actual, warn):
    assert DAY0_PLANNED_WARN_DAYS == 90
    assert day0_planned_too_far(planned=planned, actual=actual, today=D) is warn


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a)


def _page(user, participant) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/cohort/{participant.study_number}/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return response.content.decode()


def test_participant_page_shows_planned_and_actual_day0_and_warns_far_ahead(nurse_a, allocation):
    from randomization.models import Allocation

    today = timezone.localdate()
    far = today + timedelta(days=120)
    Allocation.objects.filter(pk=allocation.pk).update(treatment_start_planned=far)
    html = _page(nurse_a, allocation.participant)
    card = html.split('data-testid="day0"', 1)[1].split("</section>", 1)[0]
    assert far.isoformat() in card and "BLEND" in card
    assert 'data-testid="day0-far-ahead"' in card

    soon = today + timedelta(days=10)
    Allocation.objects.filter(pk=allocation.pk).update(
        treatment_start_planned=soon, treatment_start_actual=today
    )
    card = _page(nurse_a, allocation.participant).split('data-testid="day0"', 1)[1]
    card = card.split("</section>", 1)[0]
    assert soon.isoformat() in card and today.isoformat() in card
    assert "day0-far-ahead" not in card


def test_no_day0_card_without_an_allocation(nurse_a, participant_a):
    assert 'data-testid="day0"' not in _page(nurse_a, participant_a)
