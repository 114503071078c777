"""Randomization fixtures. Participants, consent form versions and consent records are
made directly with the cohort models (the cohort services are built in parallel); the
consent rule itself is the cohort's own ``randomisation_consent``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.utils import timezone

CONSENT_ELEMENTS = ("cohort", "proms", "randomisation_offer", "control_uninformed")


@pytest.fixture(autouse=True)
def _test_environment(settings):
    """These tests allocate from *test* sequences (production systems use production ones)."""
    settings.RANDOMISATION_ENVIRONMENT = "test"


def _migration(name: str):
    return importlib.import_module(f"randomization.migrations.{name}")


@pytest.fixture
def blend(db):
    """BLEND with its arms and protocol 1.0 criteria, as the data migrations create them
    (re-created here because transactional tests flush the database)."""
    from randomization.models import Trial

    _migration("0002_blend_trial").create_blend(django_apps, None)
    _migration("0004_blend_criteria").create_criteria(django_apps, None)
    _migration("0007_blend_derived_criteria").set_derivations(django_apps, None)
    return Trial.objects.get(code="BLEND")


@pytest.fixture
def criteria_codes(blend) -> dict[str, str]:
    """criterion code -> kind, for the current protocol version."""
    return dict(
        blend.criteria.filter(protocol_version=blend.protocol_version).values_list("code", "kind")
    )


@pytest.fixture
def eligible_answers(criteria_codes) -> dict[str, str]:
    return {code: ("yes" if kind == "inclusion" else "no") for code, kind in criteria_codes.items()}


@pytest.fixture
def cohort_form(db):
    from cohort.models import ConsentFormVersion

    form, _ = ConsentFormVersion.objects.get_or_create(
        code="present-icf",
        version="3",
        language="nl",
        defaults={"effective_from": date(2020, 1, 1)},
    )
    return form


@pytest.fixture
def trial_form(db):
    from cohort.models import ConsentFormVersion

    form, _ = ConsentFormVersion.objects.get_or_create(
        code="blend-trial-icf",
        version="1.0",
        language="nl",
        defaults={"effective_from": date(2022, 1, 1)},
    )
    return form


def _next_study_number() -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('cohort_study_number_seq')")
        (n,) = cur.fetchone()
    return f"PRE-{int(n):05d}"


@pytest.fixture
def make_participant(db, cohort_form, make_user) -> Callable:
    """make_participant(site, consents=True|dict, **fields) -> Participant with consent records.

    ``consents=True`` gives all four elements yes; a dict maps element -> bool;
    ``False`` records none.
    """
    from cohort.models import ConsentRecord, Participant

    staff = {}

    def _make(site, consents=True, **fields):
        if site.pk not in staff:
            staff[site.pk] = make_user("nurse", site, username=f"registrar-{site.code}")
        values = {
            "sex": "female",
            "year_of_birth": 1960,
            "primary_tumour": "breast",
            "referring_department": "radiation_oncology",
        }
        values.update(fields)
        participant = Participant.objects.create(
            study_number=_next_study_number(), site=site, registered_by=staff[site.pk], **values
        )
        if consents:
            answers = dict.fromkeys(CONSENT_ELEMENTS, True) if consents is True else dict(consents)
            ConsentRecord.objects.bulk_create(
                [
                    ConsentRecord(
                        participant=participant,
                        element=element,
                        answer=answer,
                        given_on=timezone.localdate() - timedelta(days=10),
                        form_version=cohort_form,
                        mode="paper",
                        taken_by=staff[site.pk],
                    )
                    for element, answer in answers.items()
                ]
            )
        return participant

    return _make


# What a participant's stored data must hold for a derived criterion to be answered "yes".
DERIVED_YES_DATA = {"multiple_myeloma": {"primary_tumour": "myeloma"}}


@pytest.fixture
def screen(blend, eligible_answers) -> Callable:
    """screen(by, participant, **answer_overrides) -> Screening through the service.

    Criteria the system derives from stored data are not typed (the service answers them);
    an override of such a criterion (``multiple_myeloma="yes"``) records the stored data that
    give that answer (the primary tumour) instead of typing a contradicting answer.
    """
    from cohort.models import Participant
    from randomization.services import screening_evaluate, screening_record

    def _screen(by, participant, trial=None, **overrides):
        for code, answer in list(overrides.items()):
            if answer == "yes" and code in DERIVED_YES_DATA:
                Participant.objects.filter(pk=participant.pk).update(**DERIVED_YES_DATA[code])
                participant.refresh_from_db()
                overrides.pop(code)
        derived = screening_evaluate(
            trial=trial or blend, participant=participant, answers={}, on=timezone.localdate()
        ).derived
        answers = {k: v for k, v in eligible_answers.items() if k not in derived}
        answers.update(overrides)
        return screening_record(
            by=by,
            trial=trial or blend,
            participant=participant,
            screened_on=timezone.localdate(),
            answers=answers,
        )

    return _screen


@pytest.fixture
def eligible_participant(make_participant, screen) -> Callable:
    """eligible_participant(site, by, **fields) -> a consenting participant with an eligible screening."""

    def _make(site, by, **fields):
        participant = make_participant(site, **fields)
        screening = screen(by, participant)
        assert screening.is_eligible, screening.reasons
        return participant

    return _make


@pytest.fixture
def sequence_statistician(make_user):
    """A statistician holding the sequence permission."""
    from django.contrib.auth.models import Permission

    user = make_user("statistician", None, username="seq_statistician")
    user.user_permissions.add(Permission.objects.get(codename="manage_sequences"))
    return user


@pytest.fixture
def active_sequence(blend, sequence_statistician, site_a, site_b) -> Callable:
    """active_sequence(**overrides) -> an activated test-environment sequence (blocks 4/6 by site)."""
    from randomization.services import sequence_activate, sequence_generate

    def _make(**overrides):
        kwargs = {
            "method": "permuted_blocks",
            "environment": "test",
            "factors": ["site"],
            "block_sizes": [4, 6],
            "slots_per_stratum": 60,
        }
        kwargs.update(overrides)
        sequence = sequence_generate(by=sequence_statistician, trial=blend, **kwargs)
        return sequence_activate(by=sequence_statistician, sequence=sequence)

    return _make


@pytest.fixture
def randomised(blend, eligible_participant) -> Callable:
    """randomised(site, by, arm="intervention"|"control"|None) -> Allocation.

    Randomises fresh eligible participants until one lands in ``arm`` (others stay
    randomised: that is how a real list is consumed). Needs an active sequence.
    """
    from randomization.services import allocation_randomise

    def _randomised(site, by, arm=None, **fields):
        for _ in range(20):
            participant = eligible_participant(site, by, **fields)
            allocation = allocation_randomise(
                by=by, trial=blend, participant=participant
            ).allocation
            if arm is None or allocation.arm.code == arm:
                return allocation
        raise AssertionError(f"no {arm} allocation in 20 tries")

    return _randomised


def events(model, **filters):
    """The audit events of ``model`` (pghistory event model), filtered."""
    from core.selectors import event_model_for

    return event_model_for(model).objects.filter(**filters)
