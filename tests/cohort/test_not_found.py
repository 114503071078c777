"""Access refusals (another site's participant, a record that is not the user's to see)
answer with the project's own 404 page in every mode, DEBUG included: never Django's
technical page listing the URL patterns."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

OWN_PAGE = "This page does not exist, or you do not have access to it."
DEBUG_PAGE_MARKERS = ("URLconf", "urlpatterns", "Django tried these URL patterns", "Raised by")


def _paths(participant, questionnaire_pk: int) -> list[str]:
    sn = participant.study_number
    return [
        f"/cohort/{sn}/",
        f"/cohort/{sn}/consent/",
        f"/cohort/{sn}/withdrawal/",
        f"/cohort/{sn}/death/",
        f"/cohort/{sn}/death/correct/",
        f"/cohort/{sn}/identity/",
        f"/cohort/{sn}/consent/999999/correct/",
        f"/trials/BLEND/screen/{sn}/",
        f"/trials/BLEND/randomise/{sn}/",
        "/trials/NOSUCHTRIAL/",
        "/trials/BLEND/screenings/999999/",
        f"/crf/questionnaires/{questionnaire_pk}/",
        f"/crf/questionnaires/{questionnaire_pk}/enter/",
    ]


@pytest.fixture
def other_sites_questionnaire(blend, participant_b):  # noqa: F811
    import importlib
    from datetime import timedelta

    from django.apps import apps
    from django.utils import timezone

    from crf.models import Questionnaire, Timepoint

    if not Timepoint.objects.filter(trial=blend).exists():
        importlib.import_module("crf.migrations.0002_blend_schedule").create_schedule(apps, None)
    now = timezone.now()
    return Questionnaire.objects.create(
        participant=participant_b,
        trial=blend,
        timepoint=Timepoint.objects.filter(trial=blend).first(),
        day0=timezone.localdate(),
        opens_at=now - timedelta(days=1),
        due_at=now,
        closes_at=now + timedelta(days=3),
    )


@pytest.mark.parametrize("debug", [True, False])
def test_another_sites_participant_gets_the_projects_own_404_page(
    settings, debug, nurse_a, participant_b, other_sites_questionnaire
):
    settings.DEBUG = debug
    client = Client()
    client.force_login(nurse_a)
    for path in _paths(participant_b, other_sites_questionnaire.pk):
        response = client.get(path, HTTP_ACCEPT_LANGUAGE="en")
        body = response.content.decode()
        assert response.status_code == 404, path
        assert OWN_PAGE in body, path
        assert not any(marker in body for marker in DEBUG_PAGE_MARKERS), path
