"""The nurses' clinical form screens (crf.views.form_*): generated from the definitions,
bad input per kind shown next to its field with nothing written (records and audit
events counted), reason for change on completed forms, stale revisions refused with the
first save intact, htmx validation / computed items / autosave, the participant page's
forms panel and the worklist buckets, every role on every route, and query counts that do
not grow with the number of records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.selectors import audit_trail
from crf import services
from crf.models import ClinicalRecord, FormExpectation
from tests.conftest import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a, arm="intervention")


@pytest.fixture
def sn(allocation):
    return allocation.participant.study_number


def url(sn, form_code, occurrence="1", what=None, name=None):
    if what is None:
        return reverse("crf:form_screen", args=[sn, form_code, occurrence])
    if what == "validate":
        return reverse("crf:form_validate", args=[sn, form_code, occurrence, name])
    return reverse(f"crf:form_{what}", args=[sn, form_code, occurrence])


def counts():
    return ClinicalRecord.objects.count(), events(ClinicalRecord).count()


def _days_ago(n):
    return (timezone.localdate() - timedelta(days=n)).strftime("%d-%m-%Y")


ADMISSION = {
    "admitted_on": _days_ago(3),
    "discharged_on": _days_ago(1),
    "icu": "no",
    "discharge_destination": "home",
}


def test_every_form_renders_from_its_definition(client, nurse_a, sn, allocation):
    client.force_login(nurse_a)
    for code in ("baseline_clinical", "sbrt_delivery", "surgery", "admission", "end_of_study"):
        response = client.get(url(sn, code))
        assert response.status_code == 200, code
    for code in ("followup_clinical",):
        assert client.get(url(sn, code, "week4")).status_code == 200
    for code in ("adverse_event", "systemic_therapy", "deviation", "surgery"):
        assert client.get(url(sn, code, "new")).status_code == 200, code
