"""The factories make what the services make: a factory-made participant, screening and
allocation carry the same audit events, study number, identity and derived answers as the
ones a direct service call produces, and the services' rules refuse bad factory input. If a
factory ever writes a trial row itself, these tests fail."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from cohort.models import ConsentRecord, Identity, Participant
from cohort.services import DuplicateHospitalNumber
from core.models import SiteMembership
from core.refusals import DateInFuture
from core.selectors import event_model_for, tracked_models
from tests import factories

pytestmark = pytest.mark.django_db


def _events() -> Counter:
    """(model label, event label) -> number of audit events, over every tracked model."""
    counts: Counter = Counter()
    for model in tracked_models():
        for label in event_model_for(model).objects.values_list("pgh_label", flat=True):
            counts[(model._meta.label_lower, label)] += 1
    return counts


def _written_by(action) -> Counter:
    before = _events()
    action()
    return _events() - before


def test_a_factory_participant_has_the_audit_events_of_a_registration_through_the_service():
    """Registration without consent: the factory writes exactly what participant_register
    writes (a participant and its identity, one insert event each), nothing more or less."""
    from cohort.services import participant_register

    site = factories.SiteFactory()
    nurse = factories.registrar(site)
    by_service = _written_by(
        lambda: participant_register(by=nurse, **factories.RegistrationDataFactory(site=site))
    )
    by_factory = _written_by(
        lambda: factories.ParticipantFactory(site=site, by=nurse, consents=False)
    )
    assert by_factory == by_service
    assert by_factory == Counter(
        {("cohort.participant", "insert"): 1, ("cohort.identity", "insert"): 1}
    )


def test_a_factory_participant_is_registered_and_consented_as_by_the_services():
    """Study number from the sequence (next after the last one, PRE-nnnnn), identity with the
    normalised hospital number, registrar with a nurse's role at the site, and the four
    consent records of one conversation, each with its insert event."""
    site = factories.SiteFactory()
    first = factories.ParticipantFactory(site=site)
    second = factories.ParticipantFactory(site=site, hospital_number=" hn-770012 ")
    assert re.fullmatch(r"PRE-\d{5,}", second.study_number)
    assert int(second.study_number[4:]) == int(first.study_number[4:]) + 1
    identity = Identity.objects.get(participant=second)
    assert identity.site_id == site.pk and identity.hospital_number == "HN-770012"
    assert second.year_of_birth == identity.date_of_birth.year
    registrar = second.registered_by
    assert SiteMembership.objects.filter(user=registrar, site=site, role="nurse").exists()
    consents = ConsentRecord.objects.filter(participant=second)
    assert sorted(consents.values_list("element", flat=True)) == sorted(factories.ALL_CONSENTS)
    assert {(c.answer, c.taken_by_id, c.mode) for c in consents} == {(True, registrar.pk, "paper")}
    assert event_model_for(ConsentRecord).objects.filter(pgh_obj_id__in=consents).count() == 4
    assert event_model_for(Participant).objects.filter(pgh_obj_id=second.pk).count() == 1


def test_the_services_rules_refuse_bad_factory_input_and_nothing_is_written():
    site = factories.SiteFactory()
    factories.ParticipantFactory(site=site, hospital_number="HN-1")
    before = (Participant.objects.count(), Identity.objects.count())
    tomorrow = timezone.localdate() + timedelta(days=1)
    with pytest.raises(DateInFuture):
        factories.ParticipantFactory(site=site, date_of_birth=tomorrow)
    with pytest.raises(DuplicateHospitalNumber):
        factories.ParticipantFactory(site=site, hospital_number="hn-1")  # same, normalised
    assert (Participant.objects.count(), Identity.objects.count()) == before
    with pytest.raises(TypeError):
        factories.ParticipantFactory.build(site=site)  # no unsaved trial rows


def test_factory_screening_and_allocation_go_through_randomization_services(settings):
    """The stored date of birth answers the age criterion (derived, not typed), and the
    allocation has its trial number and its audit event."""
    from randomization.models import Allocation, ScreeningAnswer

    settings.RANDOMISATION_ENVIRONMENT = "test"
    trial = factories.blend_trial()
    site = factories.SiteFactory()
    factories.SequenceFactory(trial=trial)
    screening = factories.ScreeningFactory(
        trial=trial, participant=factories.ParticipantFactory(site=site)
    )
    assert screening.is_eligible
    age = ScreeningAnswer.objects.get(screening=screening, criterion__code="age_over_18")
    assert (age.answer, age.source) == ("yes", "derived")
    allocation = factories.AllocationFactory(trial=trial, participant=screening.participant)
    assert allocation.trial_number and allocation.randomised_by == factories.registrar(site)
    assert event_model_for(Allocation).objects.filter(pgh_obj_id=allocation.pk).count() == 1
