"""Clinical records through the services: drafts, completion, reason for change per item,
optimistic concurrency, not done, voiding, expected forms kept in step (crf.services)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.selectors import audit_trail
from crf import services
from crf.models import ClinicalRecord, FormExpectation
from tests.conftest import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a, arm="control")


def _yesterday() -> str:
    return (timezone.localdate() - timedelta(days=1)).isoformat()


ADMISSION = {"icu": False, "discharge_destination": "home"}


def test_draft_then_complete_computes_length_of_stay(allocation, nurse_a):
    """A draft takes anything well-typed; completing needs the required items; the length
    of stay is computed on save, never typed."""
    record = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="admission", data={"icu": False}
    )
    assert record.status == "draft" and record.occurrence == "1" and record.revision == 1
    day = timezone.localdate() - timedelta(days=3)
    record = services.clinical_record_update(
        user=nurse_a,
        record=record,
        revision=1,
        data={
            "admitted_on": day.isoformat(),
            "discharged_on": (day + timedelta(days=2)).isoformat(),
            "discharge_destination": "home",
        },
        complete=True,
    )
    record.refresh_from_db()
    assert record.status == "complete" and record.revision == 2
    assert record.data["length_of_stay"] == 2
    assert record.definition.code == "admission"
