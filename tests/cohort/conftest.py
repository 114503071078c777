"""Cohort fixtures: a consent form version and a registration helper that goes through
the real service."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from django.utils import timezone

_counter = itertools.count(1)


@pytest.fixture
def form_version(db):
    from cohort.services import consent_form_version_create

    return consent_form_version_create(
        code="present-icf", version="3", language="nl", effective_from=date(2022, 1, 1)
    )


@pytest.fixture
def old_form_version(db):
    """A version that ended before 2022."""
    from cohort.services import consent_form_version_create

    return consent_form_version_create(
        code="present-icf",
        version="2",
        language="nl",
        effective_from=date(2019, 1, 1),
        effective_to=date(2021, 12, 31),
    )


def registration_data(site, **overrides) -> dict:
    n = next(_counter)
    data = {
        "site": site,
        "sex": "female",
        "primary_tumour": "breast",
        "referring_department": "radiation_oncology",
        "bone_metastases_diagnosed_on": timezone.localdate() - timedelta(days=30),
        "given_name": "Anna",
        "family_name": "Jansen",
        "date_of_birth": date(1960, 5, 17),
        "hospital_number": f"HN{n:06d}",
        "email": "anna@example.invalid",
        "phone": "+31 6 1234 5678",
        "preferred_language": "nl",
    }
    data.update(overrides)
    return data


def registered_days_ago(participant, days: int):
    """Test setup: the participant was registered ``days`` days ago (deaths and withdrawals
    are refused before the registration day)."""
    from datetime import datetime, time

    from cohort.models import Participant

    day = timezone.localdate() - timedelta(days=days)
    at = timezone.make_aware(datetime.combine(day, time(9, 30)))
    Participant.objects.filter(pk=participant.pk).update(registered_at=at)
    participant.refresh_from_db()
    return participant


@pytest.fixture
def register():
    """register(by, site, **overrides) -> Participant, through cohort.services."""
    from cohort.services import participant_register

    def _register(by, site, **overrides):
        return participant_register(by=by, **registration_data(site, **overrides))

    return _register


@pytest.fixture
def participant_a(register, nurse_a, site_a):
    return register(nurse_a, site_a)


@pytest.fixture
def participant_b(register, nurse_b, site_b):
    return register(nurse_b, site_b)


@pytest.fixture
def consented(form_version):
    """consented(participant, by, on=...) records all four elements as yes."""
    from cohort.models import ConsentElement
    from cohort.services import consents_record

    def _consent(participant, by, on=None):
        return consents_record(
            by=by,
            participant=participant,
            answers={e.value: True for e in ConsentElement},
            given_on=on or timezone.localdate() - timedelta(days=10),
            form_version=form_version,
            mode="paper",
        )

    return _consent
