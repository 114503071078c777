"""Cohort fixtures: the consent form that ended before 2022, participants at sites A and B
(registered through the service, no consent) and two set-up helpers. The shared ones
(``form_version``, ``register``, ``consented``, ``make_participant``) are in
tests/conftest.py, over tests/factories.py."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from tests import factories


@pytest.fixture
def old_form_version(db):
    """A version that ended before 2022."""
    return factories.ConsentFormVersionFactory(
        version="2", effective_from=date(2019, 1, 1), effective_to=date(2021, 12, 31)
    )


def registration_data(site, **overrides) -> dict:
    """participant_register's keyword arguments (without ``by``), unique hospital number."""
    return factories.RegistrationDataFactory(site=site, **overrides)


def registered_days_ago(participant, days: int):
    """Test setup: the participant was registered ``days`` days ago (deaths and withdrawals
    are refused before the registration day)."""
    return factories.backdate_registration(participant, timezone.localdate() - timedelta(days=days))


@pytest.fixture
def participant_a(register, nurse_a, site_a):
    return register(nurse_a, site_a)


@pytest.fixture
def participant_b(register, nurse_b, site_b):
    return register(nurse_b, site_b)
