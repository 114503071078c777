"""Deaths and withdrawals must not contradict the record: never before registration, and a
death (or a withdrawal of the activity concerned) never before an allocation, a consent or a
completed questionnaire that is already stored. Refusals name the conflicting record and
leave the database as it was.

randomization and crf take part through the ``participant_records_after`` hook (cohort does
not import them)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone, translation

from cohort import services
from cohort.models import Death, Participant, Withdrawal
from core.refusals import Refusal
from core.selectors import audit_trail, event_model_for
from tests.cohort.conftest import registered_days_ago

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


@pytest.fixture(autouse=True)
def _messages_in_english():
    """The refusals are read in English here (the default language is Dutch)."""
    with translation.override("en"):
        yield


def _days_ago(n: int):
    return TODAY() - timedelta(days=n)


def _unchanged(participant: Participant) -> None:
    assert not Death.objects.filter(participant=participant).exists()
    assert not Withdrawal.objects.filter(participant=participant).exists()


def _completed_questionnaire(participant: Participant, trial, completed_days_ago: int):
    """Test setup: a questionnaire of ``participant`` completed ``completed_days_ago`` days ago."""
    import importlib

    from django.apps import apps

    from crf.models import Questionnaire, Timepoint

    if not Timepoint.objects.filter(trial=trial).exists():
        importlib.import_module("crf.migrations.0002_blend_schedule").create_schedule(apps, None)
    tp = Timepoint.objects.filter(trial=trial).order_by("day_offset").first()
    done = timezone.make_aware(datetime.combine(_days_ago(completed_days_ago), time(10)))
    return Questionnaire.objects.create(
        participant=participant,
        trial=trial,
        timepoint=tp,
        status="completed",
        day0=_days_ago(completed_days_ago),
        opens_at=done - timedelta(days=3),
        due_at=done,
        closes_at=done + timedelta(days=3),
        completed_on=_days_ago(completed_days_ago),
        completion_recorded_at=timezone.now(),
        mode="paper",
    )


# --- before registration -----------------------------------------------------------------------
def test_death_before_registration_is_refused(nurse_a, participant_a, consented):
    consented(participant_a, nurse_a, on=_days_ago(20))  # paper consent before data entry
    with pytest.raises(services.DateBeforeRegistration) as exc:
        services.death_record(
            by=nurse_a, participant=participant_a, died_on=_days_ago(5), source="family"
        )
    assert "died_on" in exc.value.field_errors
    assert TODAY().isoformat() in str(exc.value)  # names the registration date
    _unchanged(participant_a)
    assert not event_model_for(Death).objects.exists()  # nothing in the audit trail either


def test_withdrawal_before_registration_is_refused_even_after_consent(
    nurse_a, participant_a, consented
):
    consented(participant_a, nurse_a, on=_days_ago(30))
    for scope in ("questionnaires", "trial", "data_collection", "data_use"):
        with pytest.raises(services.DateBeforeRegistration) as exc:
            services.withdrawal_record(
                by=nurse_a, participant=participant_a, scope=scope, effective_on=_days_ago(20)
            )
        assert "effective_on" in exc.value.field_errors
    _unchanged(participant_a)
    # on the registration day itself: fine
    services.withdrawal_record(
        by=nurse_a, participant=participant_a, scope="trial", effective_on=TODAY()
    )
    assert Withdrawal.objects.filter(participant=participant_a).count() == 1


def test_corrections_cannot_move_a_date_before_registration(nurse_a, participant_a, consented):
    registered_days_ago(participant_a, 10)
    consented(participant_a, nurse_a, on=_days_ago(10))
    w = services.withdrawal_record(
        by=nurse_a, participant=participant_a, scope="questionnaires", effective_on=_days_ago(5)
    )
    death = services.death_record(
        by=nurse_a, participant=participant_a, died_on=_days_ago(4), source="family"
    )
    with pytest.raises(services.DateBeforeRegistration):
        services.withdrawal_correct(
            withdrawal=w, by=nurse_a, reason="letter", effective_on=_days_ago(11)
        )
    with pytest.raises(services.DateBeforeRegistration):
        services.death_correct(death=death, by=nurse_a, reason="letter", died_on=_days_ago(11))
    w.refresh_from_db()
    death.refresh_from_db()
    assert (w.effective_on, death.died_on) == (_days_ago(5), _days_ago(4))


# --- before other records ----------------------------------------------------------------------
def test_death_before_a_consent_is_refused_naming_it(nurse_a, participant_a, consented):
    registered_days_ago(participant_a, 30)
    consented(participant_a, nurse_a, on=_days_ago(10))
    with pytest.raises(services.DateContradictsRecords) as exc:
        services.death_record(
            by=nurse_a, participant=participant_a, died_on=_days_ago(15), source="family"
        )
    assert "died_on" in exc.value.field_errors
    assert f"(a), (b), (c), (d) given on {_days_ago(10).isoformat()}" in str(exc.value)
    assert exc.value.reasons == ["consent"]
    _unchanged(participant_a)


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    """An allocation randomised 5 days ago, of a participant registered 30 days ago whose
    consents date from 10 days ago."""
    from randomization.models import Allocation

    active_sequence()
    allocation = randomised(site_a, nurse_a)
    registered_days_ago(allocation.participant, 30)
    at = timezone.make_aware(datetime.combine(_days_ago(5), time(11)))
    Allocation.objects.filter(pk=allocation.pk).update(randomised_at=at)
    allocation.refresh_from_db()
    return allocation


def test_death_before_an_allocation_is_refused_naming_it(nurse_a, allocation):
    participant = allocation.participant
    with pytest.raises(services.DateContradictsRecords) as exc:
        services.death_record(
            by=nurse_a, participant=participant, died_on=_days_ago(8), source="family"
        )
    assert allocation.trial_number in str(exc.value)
    assert exc.value.reasons == ["allocation"]
    _unchanged(participant)
    # on the day of randomisation (or later) the death is accepted
    services.death_record(
        by=nurse_a, participant=participant, died_on=_days_ago(5), source="family"
    )
    assert Death.objects.filter(participant=participant).exists()


def test_withdrawal_conflicts_depend_on_what_the_scope_stops(nurse_a, allocation):
    participant = allocation.participant
    for scope in ("trial", "data_collection", "data_use"):
        with pytest.raises(services.DateContradictsRecords) as exc:
            services.withdrawal_record(
                by=nurse_a, participant=participant, scope=scope, effective_on=_days_ago(8)
            )
        assert allocation.trial_number in str(exc.value)
        assert "effective_on" in exc.value.field_errors
    _unchanged(participant)
    # stopping questionnaires before the randomisation contradicts nothing
    services.withdrawal_record(
        by=nurse_a, participant=participant, scope="questionnaires", effective_on=_days_ago(8)
    )
    assert Withdrawal.objects.filter(participant=participant).count() == 1


def test_death_or_questionnaire_withdrawal_before_a_completed_questionnaire_is_refused(
    nurse_a, allocation
):
    participant = allocation.participant
    q = _completed_questionnaire(participant, allocation.trial, completed_days_ago=2)
    with pytest.raises(services.DateContradictsRecords) as exc:
        services.death_record(
            by=nurse_a, participant=participant, died_on=_days_ago(4), source="family"
        )
    assert q.timepoint.label in str(exc.value) and exc.value.reasons == ["questionnaire_completed"]
    with pytest.raises(services.DateContradictsRecords):
        services.withdrawal_record(
            by=nurse_a, participant=participant, scope="questionnaires", effective_on=_days_ago(4)
        )
    _unchanged(participant)
    # a trial-only withdrawal does not stop questionnaires
    services.withdrawal_record(
        by=nurse_a, participant=participant, scope="trial", effective_on=_days_ago(4)
    )


def test_death_correction_to_before_an_allocation_is_refused(nurse_a, allocation):
    participant = allocation.participant
    death = services.death_record(
        by=nurse_a, participant=participant, died_on=_days_ago(3), source="family"
    )
    with pytest.raises(services.DateContradictsRecords):
        services.death_correct(death=death, by=nurse_a, reason="letter", died_on=_days_ago(6))
    death.refresh_from_db()
    assert death.died_on == _days_ago(3)
    assert len(audit_trail(model=Death, pk=death.pk)) == 1  # no correction event


def test_withdrawal_correction_to_before_an_allocation_is_refused(nurse_a, allocation):
    participant = allocation.participant
    w = services.withdrawal_record(
        by=nurse_a, participant=participant, scope="trial", effective_on=_days_ago(2)
    )
    with pytest.raises(services.DateContradictsRecords):
        services.withdrawal_correct(
            withdrawal=w, by=nurse_a, reason="letter", effective_on=_days_ago(6)
        )
    w.refresh_from_db()
    assert w.effective_on == _days_ago(2)


# --- the same class elsewhere in cohort ----------------------------------------------------------
def test_consent_before_the_date_of_birth_is_refused(nurse_a, participant_a, form_version):
    from datetime import date

    from cohort.models import ConsentRecord, Identity

    Identity.objects.filter(participant=participant_a).update(date_of_birth=date(2023, 3, 1))
    with pytest.raises(Refusal) as exc:
        services.consent_record(
            by=nurse_a,
            participant=participant_a,
            element="cohort",
            answer=True,
            given_on=date(2022, 6, 1),
            form_version=form_version,
            mode="paper",
        )
    assert "given_on" in exc.value.field_errors
    assert not ConsentRecord.objects.filter(participant=participant_a).exists()


def test_date_of_birth_cannot_move_after_death_or_diagnosis(nurse_a, participant_a):
    from cohort.models import Identity

    services.death_record(by=nurse_a, participant=participant_a, died_on=TODAY(), source="family")
    identity = Identity.objects.get(participant=participant_a)
    before = identity.date_of_birth
    diagnosed = participant_a.bone_metastases_diagnosed_on
    for dob in (diagnosed + timedelta(days=1), TODAY()):
        with pytest.raises(Refusal) as exc:
            services.identity_update(
                by=nurse_a, identity=identity, reason="typo", changes={"date_of_birth": dob}
            )
        assert "date_of_birth" in exc.value.field_errors
    identity.refresh_from_db()
    assert identity.date_of_birth == before


def test_diagnosis_date_cannot_move_before_birth(nurse_a, participant_a):
    from datetime import date

    with pytest.raises(Refusal) as exc:
        services.participant_update(
            by=nurse_a,
            participant=participant_a,
            reason="typo",
            changes={"bone_metastases_diagnosed_on": date(1950, 1, 1)},
        )
    assert "bone_metastases_diagnosed_on" in exc.value.field_errors
    participant_a.refresh_from_db()
    assert participant_a.bone_metastases_diagnosed_on != date(1950, 1, 1)
