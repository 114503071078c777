"""API error messages follow Accept-Language and default to English for API clients (the
staff screens stay Dutch by default)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from cohort.models import Death

pytestmark = pytest.mark.django_db


def _future_death(client, participant, **headers):
    return client.post(
        f"/api/v1/participants/{participant.study_number}/death/",
        {"died_on": (timezone.localdate() + timedelta(days=3)).isoformat(), "source": "family"},
        format="json",
        **headers,
    )


def test_api_errors_default_to_english(api_client_for, nurse_a, participant_a):
    response = _future_death(api_client_for(nurse_a), participant_a)
    assert response.status_code == 400
    assert response["Content-Language"] == "en"
    assert "This date is in the future." in str(response.json())
    assert not Death.objects.exists()


def test_api_errors_follow_accept_language(api_client_for, nurse_a, participant_a):
    response = _future_death(api_client_for(nurse_a), participant_a, HTTP_ACCEPT_LANGUAGE="nl")
    assert response.status_code == 400
    assert response["Content-Language"] == "nl"
    assert "Deze datum ligt in de toekomst." in str(response.json())
    response = _future_death(
        api_client_for(nurse_a), participant_a, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9"
    )
    assert "This date is in the future." in str(response.json())
    assert not Death.objects.exists()


def test_api_login_errors_default_to_english():
    response = Client().post(
        "/api/v1/auth/login/",
        {"username": "nobody", "password": "wrong"},
        content_type="application/json",
    )
    assert response.status_code in (400, 401, 403)
    assert response["Content-Language"] == "en"


def test_staff_screens_stay_dutch_by_default(nurse_a, participant_a):
    client = Client()
    client.force_login(nurse_a)
    response = client.get(f"/cohort/{participant_a.study_number}/")
    assert response["Content-Language"] == "nl"
