"""crf fixtures: cohort participants with consent and identity, made directly with the
cohort models (the cohort services are built in parallel), and BLEND from its migration."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

_numbers = itertools.count(90001)

PF2_ANSWERS = {f"q{i}": 1 for i in range(1, 15)} | {"q15": 6}


@pytest.fixture
def blend(db):
    from randomization.models import Trial

    return Trial.objects.get(code="BLEND")


@pytest.fixture
def consent_form(db):
    from cohort.models import ConsentFormVersion

    form, _ = ConsentFormVersion.objects.get_or_create(
        code="present-icf",
        version="1.0",
        language="nl",
        defaults={"effective_from": date(2020, 1, 1)},
    )
    return form


@pytest.fixture
def make_participant(db, consent_form, make_user):
    """make_participant(site, email=..., language=..., proms=True) -> Participant with
    consent (a) and (b) given in 2024 and an identity holding the email address."""
    from cohort.models import ConsentRecord, Identity, Participant

    staff = {}

    def _make(site, *, email="patient@example.invalid", language="nl", proms=True):
        if site.pk not in staff:
            staff[site.pk] = make_user("nurse", site)
        n = next(_numbers)
        p = Participant.objects.create(
            study_number=f"PRE-{n:05d}",
            site=site,
            sex="female",
            year_of_birth=1960,
            primary_tumour="breast",
            referring_department="radiation_oncology",
            registered_by=staff[site.pk],
        )
        Identity.objects.create(
            participant=p,
            site=site,
            given_name="Anna",
            family_name="Jansen",
            date_of_birth=date(1960, 5, 1),
            hospital_number=f"H{n}",
            email=email,
            preferred_language=language,
        )
        for element, answer in (("cohort", True), ("proms", proms)):
            ConsentRecord.objects.create(
                participant=p,
                element=element,
                answer=answer,
                given_on=date(2024, 1, 10),
                form_version=consent_form,
                mode="paper",
                taken_by=staff[site.pk],
            )
        return p

    return _make


@pytest.fixture
def participant(make_participant, site_a):
    return make_participant(site_a)
