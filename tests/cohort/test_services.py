"""Cohort services: registration, consent, correction, withdrawal and death — on the
database and in the audit trail."""

from __future__ import annotations

from datetime import date, timedelta

import pghistory
import pytest
from django.core.exceptions import PermissionDenied
from django.db import InternalError, connection, transaction
from django.utils import timezone

from cohort import services
from cohort.models import (
    ConsentElement,
    ConsentRecord,
    Death,
    Identity,
    Participant,
    Withdrawal,
)
from cohort.selectors import (
    may_contact_for_questionnaires,
    questionnaire_contact,
    twics_randomisation_consent,
)
from core.refusals import Refusal
from core.selectors import audit_trail
from tests.cohort.conftest import registered_days_ago, registration_data

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


# --- registration ----------------------------------------------------------------------------
def test_registration_assigns_study_number_and_keeps_identity_apart(nurse_a, site_a):
    with pghistory.context(user=nurse_a.pk):
        p = services.participant_register(by=nurse_a, **registration_data(site_a))
    assert p.study_number.startswith("PRE-") and len(p.study_number) == 9
    assert p.year_of_birth == 1960  # derived from the date of birth
    identity = Identity.objects.get(participant=p)
    assert identity.site_id == site_a.pk and identity.family_name == "Jansen"
    assert not hasattr(Participant, "hospital_number")
    trail = audit_trail(model=Participant, pk=p.pk)
    assert trail[0].label == "insert" and trail[0].user_id == nurse_a.pk
    assert trail[0].changes["study_number"] == (None, p.study_number)


def test_study_numbers_are_consecutive_and_a_refusal_does_not_use_one(nurse_a, site_a, register):
    first = register(nurse_a, site_a, hospital_number="HNDUP1")
    with pytest.raises(services.DuplicateHospitalNumber):
        register(nurse_a, site_a, hospital_number="HNDUP1")
    second = register(nurse_a, site_a)
    assert int(second.study_number[4:]) == int(first.study_number[4:]) + 1


def test_duplicate_hospital_number_at_same_site_is_refused_naming_the_study_number(
    nurse_a, site_a, register
):
    first = register(nurse_a, site_a, hospital_number="UMC123456")
    before = Participant.objects.count()
    with pytest.raises(services.DuplicateHospitalNumber) as exc:
        register(nurse_a, site_a, hospital_number="umc123456")  # same number, other case
    assert first.study_number in str(exc.value)
    assert exc.value.field_errors["hospital_number"]
    assert exc.value.existing_study_number == first.study_number
    assert Participant.objects.count() == before


def test_same_hospital_number_at_another_site_is_allowed(
    nurse_a, nurse_b, site_a, site_b, register
):
    register(nurse_a, site_a, hospital_number="SHARED01")
    other = register(nurse_b, site_b, hospital_number="SHARED01")
    assert other.site == site_b


@pytest.mark.parametrize("role", ["data_manager", "statistician", "administrator"])
def test_only_nurses_and_investigators_of_the_site_may_register(make_user, site_a, role):
    user = make_user(role, site_a if role == "data_manager" else None)
    with pytest.raises(services.SiteNotWritable):
        services.participant_register(by=user, **registration_data(site_a))
    assert Participant.objects.count() == 0


def test_nurse_cannot_register_at_another_site(nurse_a, site_b):
    with pytest.raises(services.SiteNotWritable) as exc:
        services.participant_register(by=nurse_a, **registration_data(site_b))
    assert "site" in exc.value.field_errors
    assert Participant.objects.count() == Identity.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("date_of_birth", "future"),
        ("bone_metastases_diagnosed_on", "future"),
        ("given_name", "x" * 10_000),
        ("family_name", "<script>alert(1)</script>"),
        ("hospital_number", "<b>12</b>"),
        ("hospital_number", "1" * 10_000),
        ("email", "not-an-email"),
        ("phone", "call me"),
        ("sex", "dragon"),
        ("primary_tumour", ""),
        ("given_name", ""),
    ],
)
def test_bad_registration_input_is_refused_per_field_and_writes_nothing(
    nurse_a, site_a, field, value
):
    if value == "future":
        value = TODAY() + timedelta(days=1)
    with pytest.raises(Refusal) as exc:
        services.participant_register(by=nurse_a, **registration_data(site_a, **{field: value}))
    assert field in exc.value.field_errors
    assert Participant.objects.count() == 0
    assert Identity.objects.count() == 0


def test_identity_update_needs_a_reason_and_is_audited(nurse_a, site_a, participant_a):
    identity = participant_a.identity
    with pytest.raises(services.ReasonRequired):
        services.identity_update(
            by=nurse_a, identity=identity, reason=" ", changes={"family_name": "Pietersen"}
        )
    services.identity_update(
        by=nurse_a,
        identity=identity,
        reason="name misspelt at registration",
        changes={"family_name": "Pietersen", "date_of_birth": date(1961, 1, 2)},
    )
    identity.refresh_from_db()
    participant_a.refresh_from_db()
    assert identity.family_name == "Pietersen"
    assert participant_a.year_of_birth == 1961  # clinical year follows the date of birth
    last = audit_trail(model=Identity, pk=identity.pk)[-1]
    assert last.reason == "name misspelt at registration"
    assert last.changes["family_name"] == ("Jansen", "Pietersen")


def test_identity_update_refused_for_other_sites_and_sponsor_roles(nurse_b, monitor, participant_a):
    for user in (nurse_b, monitor):
        with pytest.raises(PermissionDenied):
            services.identity_update(
                by=user,
                identity=participant_a.identity,
                reason="x",
                changes={"phone": "0612345678"},
            )


def test_participants_and_identities_cannot_be_deleted(participant_a):
    with pytest.raises(InternalError), transaction.atomic():
        Identity.objects.filter(participant=participant_a).delete()
    with pytest.raises(InternalError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM cohort_participant WHERE id = %s", [participant_a.pk])
    assert Participant.objects.filter(pk=participant_a.pk).exists()


# --- consent ---------------------------------------------------------------------------------
def test_four_consent_elements_recorded_in_one_conversation(nurse_a, participant_a, form_version):
    day = TODAY() - timedelta(days=3)
    records = services.consents_record(
        by=nurse_a,
        participant=participant_a,
        answers={
            "cohort": True,
            "proms": True,
            "randomisation_offer": True,
            "control_uninformed": False,
        },
        given_on=day,
        form_version=form_version,
        mode="paper",
    )
    assert [r.element for r in records] == list(ConsentElement.values)
    assert ConsentRecord.objects.filter(participant=participant_a).count() == 4
    assert all(r.taken_by == nurse_a and r.given_on == day for r in records)
    assert may_contact_for_questionnaires(participant_a, TODAY())
    assert not twics_randomisation_consent(participant_a, TODAY())  # (d) refused


def test_consent_with_form_version_not_effective_on_its_date_is_refused(
    nurse_a, participant_a, form_version, old_form_version
):
    with pytest.raises(services.ConsentFormNotEffective) as exc:
        services.consent_record(
            by=nurse_a,
            participant=participant_a,
            element="cohort",
            answer=True,
            given_on=date(2021, 12, 31),
            form_version=form_version,  # effective from 2022-01-01
            mode="paper",
        )
    assert "form_version" in exc.value.field_errors
    with pytest.raises(services.ConsentFormNotEffective):
        services.consent_record(
            by=nurse_a,
            participant=participant_a,
            element="cohort",
            answer=True,
            given_on=date(2022, 1, 1),
            form_version=old_form_version,  # ended 2021-12-31
            mode="paper",
        )
    assert not ConsentRecord.objects.exists()
    # on its first effective day it is fine
    services.consent_record(
        by=nurse_a,
        participant=participant_a,
        element="cohort",
        answer=True,
        given_on=date(2022, 1, 1),
        form_version=form_version,
        mode="paper",
    )
    assert ConsentRecord.objects.count() == 1


def test_consent_in_the_future_or_without_answer_is_refused(nurse_a, participant_a, form_version):
    with pytest.raises(services.DateInFuture):
        services.consent_record(
            by=nurse_a,
            participant=participant_a,
            element="cohort",
            answer=True,
            given_on=TODAY() + timedelta(days=1),
            form_version=form_version,
            mode="paper",
        )
    with pytest.raises(services.NoConsentAnswer):
        services.consents_record(
            by=nurse_a,
            participant=participant_a,
            answers={"cohort": None},
            given_on=TODAY(),
            form_version=form_version,
            mode="paper",
        )
    assert not ConsentRecord.objects.exists()


def test_the_same_consent_twice_is_refused(nurse_a, participant_a, consented):
    day = TODAY() - timedelta(days=1)
    consented(participant_a, nurse_a, on=day)
    with pytest.raises(services.DuplicateConsent):
        consented(participant_a, nurse_a, on=day)
    assert ConsentRecord.objects.count() == 4


def test_other_site_nurse_and_monitor_cannot_record_consent(
    nurse_b, monitor, participant_a, form_version
):
    for user in (nurse_b, monitor):
        with pytest.raises(PermissionDenied):
            services.consent_record(
                by=user,
                participant=participant_a,
                element="cohort",
                answer=True,
                given_on=TODAY(),
                form_version=form_version,
                mode="paper",
            )
    assert not ConsentRecord.objects.exists()


def test_correction_without_reason_is_refused(nurse_a, participant_a, consented):
    record = consented(participant_a, nurse_a)[3]
    for reason in ("", "   "):
        with pytest.raises(services.ReasonRequired) as exc:
            services.consent_correct(record=record, by=nurse_a, reason=reason, answer=False)
        assert "reason" in exc.value.field_errors
    record.refresh_from_db()
    assert record.superseded_by_id is None and record.answer is True
    assert ConsentRecord.objects.count() == 4


def test_correction_with_reason_keeps_the_original_and_is_audited_with_old_and_new_value(
    nurse_a, participant_a, consented
):
    record = consented(participant_a, nurse_a)[3]  # (d) control without being informed: yes
    assert twics_randomisation_consent(participant_a, TODAY())
    with pghistory.context(user=nurse_a.pk):
        corrected = services.consent_correct(
            record=record, by=nurse_a, reason="box (d) was ticked 'no' on paper", answer=False
        )
    record.refresh_from_db()
    assert record.answer is True and record.superseded_by == corrected  # original kept
    assert corrected.answer is False and corrected.correction_reason.startswith("box (d)")
    assert not twics_randomisation_consent(participant_a, TODAY())
    # audit: the original points at its replacement, with the reason and the user
    old_trail = audit_trail(model=ConsentRecord, pk=record.pk)
    assert old_trail[-1].changes == {"superseded_by_id": (None, corrected.pk)}
    assert old_trail[-1].reason == "box (d) was ticked 'no' on paper"
    assert old_trail[-1].user_id == nurse_a.pk
    new_trail = audit_trail(model=ConsentRecord, pk=corrected.pk)
    assert new_trail[0].changes["answer"] == (None, False)
    assert new_trail[0].reason == "box (d) was ticked 'no' on paper"
    # old value (yes) and new value (no) both remain readable
    assert old_trail[0].changes["answer"] == (None, True)
    with pytest.raises(services.AlreadySuperseded):
        services.consent_correct(record=record, by=nurse_a, reason="again", answer=False)


def test_correction_that_changes_nothing_or_names_the_patient_is_refused(
    nurse_a, participant_a, consented
):
    record = consented(participant_a, nurse_a)[0]
    with pytest.raises(services.NothingToCorrect):
        services.consent_correct(record=record, by=nurse_a, reason="typo", answer=True)
    with pytest.raises(services.IdentifyingDataInFreeText):
        services.consent_correct(
            record=record, by=nurse_a, reason="Mrs Jansen said no", answer=False
        )
    assert ConsentRecord.objects.count() == 4


# --- withdrawal and death --------------------------------------------------------------------
@pytest.fixture
def cancel_calls(monkeypatch):
    """Record what cohort fires on the contact_stopped hook (crf's subscriber still runs)."""
    from core import hooks

    calls = []

    def spy(*, participant, reason):
        calls.append((participant.pk, reason))

    monkeypatch.setattr(
        hooks.contact_stopped, "_subscribers", [spy, *hooks.contact_stopped._subscribers]
    )
    return calls


def test_questionnaire_withdrawal_stops_contact_from_that_date(
    nurse_a, participant_a, consented, cancel_calls
):
    registered_days_ago(participant_a, 30)
    consented(participant_a, nurse_a, on=TODAY() - timedelta(days=20))
    effective = TODAY() - timedelta(days=5)
    assert may_contact_for_questionnaires(participant_a, effective)
    services.withdrawal_record(
        by=nurse_a, participant=participant_a, scope="questionnaires", effective_on=effective
    )
    assert may_contact_for_questionnaires(participant_a, effective - timedelta(days=1))
    assert not may_contact_for_questionnaires(participant_a, effective)
    assert not may_contact_for_questionnaires(participant_a, TODAY())
    assert questionnaire_contact(participant_a, TODAY()).reasons == ["withdrawn_questionnaires"]
    # trial participation is untouched by a questionnaire-only withdrawal
    assert twics_randomisation_consent(participant_a, TODAY())
    assert cancel_calls == [(participant_a.pk, "withdrawal:questionnaires")]


def test_trial_withdrawal_does_not_cancel_questionnaires(
    nurse_a, participant_a, consented, cancel_calls
):
    consented(participant_a, nurse_a)
    services.withdrawal_record(
        by=nurse_a, participant=participant_a, scope="trial", effective_on=TODAY(), reason="x"
    )
    assert may_contact_for_questionnaires(participant_a, TODAY())
    assert not twics_randomisation_consent(participant_a, TODAY())
    assert cancel_calls == []


def test_withdrawal_twice_in_the_same_scope_is_refused(nurse_a, participant_a, consented):
    consented(participant_a, nurse_a)
    services.withdrawal_record(
        by=nurse_a, participant=participant_a, scope="trial", effective_on=TODAY()
    )
    with pytest.raises(services.AlreadyWithdrawn):
        services.withdrawal_record(
            by=nurse_a, participant=participant_a, scope="trial", effective_on=TODAY()
        )
    assert Withdrawal.objects.count() == 1


def test_withdrawal_reason_is_audited_and_must_not_identify(nurse_a, participant_a, consented):
    consented(participant_a, nurse_a)
    with pytest.raises(services.IdentifyingDataInFreeText):
        services.withdrawal_record(
            by=nurse_a,
            participant=participant_a,
            scope="data_use",
            effective_on=TODAY(),
            reason=f"call {participant_a.identity.hospital_number} first",
        )
    w = services.withdrawal_record(
        by=nurse_a,
        participant=participant_a,
        scope="data_use",
        effective_on=TODAY(),
        reason="no longer wishes to take part",
    )
    assert audit_trail(model=Withdrawal, pk=w.pk)[0].reason == "no longer wishes to take part"
    assert not may_contact_for_questionnaires(participant_a, TODAY())
    assert not twics_randomisation_consent(participant_a, TODAY())


def test_death_stops_every_contact_and_cancels_questionnaires(
    nurse_a, participant_a, consented, cancel_calls
):
    registered_days_ago(participant_a, 30)
    consented(participant_a, nurse_a, on=TODAY() - timedelta(days=20))
    died = TODAY() - timedelta(days=2)
    services.death_record(by=nurse_a, participant=participant_a, died_on=died, source="family")
    participant_a = Participant.objects.get(pk=participant_a.pk)
    assert may_contact_for_questionnaires(participant_a, died - timedelta(days=1))
    assert not may_contact_for_questionnaires(participant_a, died)
    assert not twics_randomisation_consent(participant_a, died)
    assert "deceased" in questionnaire_contact(participant_a, TODAY()).reasons
    assert cancel_calls == [(participant_a.pk, "death")]
    with pytest.raises(services.AlreadyDeceased):
        services.death_record(by=nurse_a, participant=participant_a, died_on=died, source="family")
    assert Death.objects.count() == 1


def test_death_is_rolled_back_when_cancelling_questionnaires_fails(
    nurse_a, participant_a, monkeypatch
):
    from core import hooks

    def broken(*, participant, reason):
        raise RuntimeError("crf down")

    monkeypatch.setattr(hooks.contact_stopped, "_subscribers", [broken])
    with pytest.raises(RuntimeError):
        services.death_record(
            by=nurse_a, participant=participant_a, died_on=TODAY(), source="family"
        )
    assert not Death.objects.exists()  # same transaction: nothing half-written


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"died_on": "future", "source": "family"}, "died_on"),
        ({"died_on": date(1950, 1, 1), "source": "family"}, "died_on"),  # before birth
        ({"died_on": "today", "source": "rumour"}, "source"),
    ],
)
def test_bad_death_input_is_refused(nurse_a, participant_a, kwargs, field):
    kwargs = dict(kwargs)
    if kwargs["died_on"] == "future":
        kwargs["died_on"] = TODAY() + timedelta(days=1)
    elif kwargs["died_on"] == "today":
        kwargs["died_on"] = TODAY()
    with pytest.raises(Refusal) as exc:
        services.death_record(by=nurse_a, participant=participant_a, **kwargs)
    assert field in exc.value.field_errors
    assert not Death.objects.exists()


def test_consent_after_death_is_refused(nurse_a, participant_a, form_version):
    registered_days_ago(participant_a, 30)
    services.death_record(
        by=nurse_a, participant=participant_a, died_on=TODAY() - timedelta(days=3), source="family"
    )
    with pytest.raises(services.ParticipantDeceased):
        services.consent_record(
            by=nurse_a,
            participant=participant_a,
            element="cohort",
            answer=True,
            given_on=TODAY(),
            form_version=form_version,
            mode="paper",
        )


def test_withdrawal_before_the_participant_entered_the_cohort_is_refused(
    nurse_a, participant_a, consented
):
    """Before the registration day a withdrawal is refused, even after a (paper) consent
    dated earlier; from the registration day on it is accepted."""
    registered_days_ago(participant_a, 20)
    consented(participant_a, nurse_a, on=TODAY() - timedelta(days=30))
    for days in (400, 21):
        with pytest.raises(services.DateBeforeRegistration) as exc:
            services.withdrawal_record(
                by=nurse_a,
                participant=participant_a,
                scope="trial",
                effective_on=TODAY() - timedelta(days=days),
            )
        assert "effective_on" in exc.value.field_errors
    assert not Withdrawal.objects.exists()
    services.withdrawal_record(
        by=nurse_a,
        participant=participant_a,
        scope="trial",
        effective_on=TODAY() - timedelta(days=20),
    )
    assert Withdrawal.objects.count() == 1


def test_death_correction_needs_a_reason_and_keeps_old_value_in_audit(nurse_a, participant_a):
    registered_days_ago(participant_a, 30)
    death = services.death_record(
        by=nurse_a, participant=participant_a, died_on=TODAY() - timedelta(days=3), source="family"
    )
    with pytest.raises(services.ReasonRequired):
        services.death_correct(death=death, by=nurse_a, reason="", died_on=TODAY())
    with pytest.raises(services.DateInFuture):
        services.death_correct(
            death=death, by=nurse_a, reason="x", died_on=TODAY() + timedelta(days=1)
        )
    with pytest.raises(services.NothingToCorrect):
        services.death_correct(death=death, by=nurse_a, reason="x", source="family")
    services.death_correct(
        death=death,
        by=nurse_a,
        reason="date copied from the wrong letter",
        died_on=TODAY() - timedelta(days=4),
    )
    death.refresh_from_db()
    assert death.died_on == TODAY() - timedelta(days=4)
    last = audit_trail(model=Death, pk=death.pk)[-1]
    assert last.changes == {
        "died_on": (
            (TODAY() - timedelta(days=3)).isoformat(),
            (TODAY() - timedelta(days=4)).isoformat(),
        )
    }
    assert last.reason == "date copied from the wrong letter"


def test_withdrawal_correction(nurse_a, nurse_b, participant_a, consented):
    registered_days_ago(participant_a, 30)
    consented(participant_a, nurse_a, on=TODAY() - timedelta(days=30))
    w = services.withdrawal_record(
        by=nurse_a, participant=participant_a, scope="questionnaires", effective_on=TODAY()
    )
    with pytest.raises(PermissionDenied):
        services.withdrawal_correct(withdrawal=w, by=nurse_b, reason="x", effective_on=TODAY())
    with pytest.raises(services.ReasonRequired):
        services.withdrawal_correct(withdrawal=w, by=nurse_a, reason=" ", effective_on=TODAY())
    services.withdrawal_correct(
        withdrawal=w,
        by=nurse_a,
        reason="letter dated earlier",
        effective_on=TODAY() - timedelta(days=7),
    )
    assert not may_contact_for_questionnaires(participant_a, TODAY() - timedelta(days=7))
    assert audit_trail(model=Withdrawal, pk=w.pk)[-1].reason == "letter dated earlier"


def test_identity_access_log_is_append_only(nurse_a, participant_a):
    from cohort.models import IdentityAccess

    (row,) = services.identity_access_log(
        user=nurse_a, participants=[participant_a], context="page"
    )
    with pytest.raises(InternalError), transaction.atomic():
        IdentityAccess.objects.filter(pk=row.pk).update(context="api")
    with pytest.raises(InternalError), transaction.atomic():
        IdentityAccess.objects.filter(pk=row.pk).delete()
    assert IdentityAccess.objects.get(pk=row.pk).context == "page"
