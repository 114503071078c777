"""Test factories (factory_boy): the one place tests build their objects. New tests use them.

Trial data are made THROUGH THE SERVICES, so every factory-made row has the audit events,
the hook effects and the rule checks that production gives it; a factory never writes a
trial model directly. Configuration rows (sites, users and their roles, consent form
versions) are plain model factories.

    from tests import factories as f

    site = f.SiteFactory()                                  # site-1, "Site 1"
    nurse = f.UserFactory(role="nurse", site=site)          # a nurse of that site
    monitor = f.UserFactory(role="data_manager")            # sponsor-wide (no site)
    form = f.ConsentFormVersionFactory()                    # present-icf 3 (nl), from 2022

    p = f.ParticipantFactory(site=site)                     # registered, four consents yes
    p = f.ParticipantFactory(site=site, by=nurse, consents=False)        # registered only
    p = f.ParticipantFactory(site=site, consents={"cohort": True}, primary_tumour="lung")
    p = f.ParticipantFactory(site=site, registered_on=date(2024, 1, 5))  # back-dated
    f.consents_give(participant=p, by=nurse, on=date(2024, 1, 10))       # a later visit
    data = f.RegistrationDataFactory(site=site)   # participant_register's keywords (no by)
    p = f.participant_without_identity(site=site) # no date of birth: the one direct write

    trial = f.blend_trial()                                 # BLEND as the migrations made it
    f.SequenceFactory(trial=trial)                          # an active test sequence
    screening = f.ScreeningFactory(participant=p)           # eligible; overrides per code
    allocation = f.AllocationFactory(site=site, arm="control")   # a fresh eligible participant
    q = f.QuestionnaireFactory(participant=p, timepoint="week2") # schedule anchored, window open

Every keyword argument of the service can be overridden; ``by`` defaults to the site's
registrar (a nurse of that site, made once per site). Sequences (hospital numbers, user
names, site codes) are unique within a run, so factories never collide with each other.
The pytest fixtures in ``tests/conftest.py`` (``make_participant``, ``register``,
``screen``, ``randomised``, ...) are thin wrappers over these factories.
"""

from __future__ import annotations

import importlib
import itertools
from datetime import date, datetime, time, timedelta
from typing import Any

import factory
from django.apps import apps
from django.utils import timezone
from factory.django import DjangoModelFactory

from cohort.models import Participant
from crf.models import Questionnaire
from randomization.models import Allocation, Screening, Sequence

PASSWORD = "correct-horse-battery-9"
ALL_CONSENTS = ("cohort", "proms", "randomisation_offer", "control_uninformed")

# What a participant's stored data must hold for a derived criterion to be answered "yes".
DERIVED_YES_DATA = {"multiple_myeloma": {"primary_tumour": "myeloma"}}


def _today() -> date:
    return timezone.localdate()


class _ServiceFactory(factory.Factory):
    """A factory whose ``create`` calls a service; building unsaved trial rows is refused
    (a trial row that skipped its service is exactly what these factories exist to avoid)."""

    class Meta:
        abstract = True

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise TypeError(f"{cls.__name__} only creates (through the service), never builds")


# --- configuration rows ---------------------------------------------------------------------
class SiteFactory(DjangoModelFactory):
    class Meta:
        model = "core.Site"
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"site-{n + 1}")
    name = factory.LazyAttribute(lambda o: o.code.replace("-", " ").title())


class UserFactory(DjangoModelFactory):
    """A user with ``password``; with ``role`` also a membership at ``site`` (``None``:
    sponsor-wide), granted through ``core.services.membership_grant``. Asking for an
    existing username returns that user (with the role added)."""

    class Meta:
        model = "core.User"

    username = factory.LazyAttributeSequence(lambda o, n: f"{o.role or 'user'}-{n + 1}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.invalid")
    password = PASSWORD
    role: str | None = None
    site = None

    @classmethod
    def _create(cls, model_class, *args, role=None, site=None, password=PASSWORD, **kwargs):
        from core.services import membership_grant

        username = kwargs.pop("username")
        user = model_class.objects.filter(username=username).first()
        if user is None:
            user = model_class.objects.create_user(username, password=password, **kwargs)
        if role:
            membership_grant(user=user, role=role, site=site)
        return user


def registrar(site) -> Any:
    """The nurse who registers and consents a site's participants unless ``by`` is given."""
    return UserFactory(username=f"registrar-{site.code}", role="nurse", site=site)


def sequence_keeper() -> Any:
    """A statistician holding the permission to generate and activate sequences."""
    from django.contrib.auth.models import Permission

    user = UserFactory(username="seq_statistician", role="statistician", site=None)
    user.user_permissions.add(Permission.objects.get(codename="manage_sequences"))
    return user


class ConsentFormVersionFactory(DjangoModelFactory):
    """A consent form version; one per (code, version, language): asking again returns it."""

    class Meta:
        model = "cohort.ConsentFormVersion"
        django_get_or_create = ("code", "version", "language")

    code = "present-icf"
    version = "3"
    language = "nl"
    effective_from = date(2022, 1, 1)
    effective_to = None


def blend_trial():
    """BLEND with its arms, protocol 1.0 criteria (with their derivations) and follow-up
    schedule, exactly as the data migrations create them; re-created when a transactional
    test before this one flushed the tables (idempotent)."""
    from randomization.models import Trial

    steps = (
        ("randomization.migrations.0002_blend_trial", "create_blend"),
        ("randomization.migrations.0004_blend_criteria", "create_criteria"),
        ("randomization.migrations.0007_blend_derived_criteria", "set_derivations"),
        ("crf.migrations.0002_blend_schedule", "create_schedule"),
    )
    for module, function in steps:
        getattr(importlib.import_module(module), function)(apps, None)
    return Trial.objects.get(code="BLEND")


# --- cohort: participants and consent -------------------------------------------------------
def consents_give(
    *,
    participant,
    by=None,
    answers: bool | dict[str, bool | None] = True,
    on: date | None = None,
    form_version=None,
    mode: str = "paper",
):
    """One consent conversation through ``cohort.services.consents_record``: ``answers``
    ``True`` gives all four elements yes, a dict maps element -> answer. Default: 10 days
    ago, on the default consent form, taken by the site's registrar."""
    from cohort.services import consents_record

    if answers is True:
        answers = dict.fromkeys(ALL_CONSENTS, True)
    return consents_record(
        by=by or registrar(participant.site),
        participant=participant,
        answers=dict(answers),
        given_on=on or _today() - timedelta(days=10),
        form_version=form_version or ConsentFormVersionFactory(),
        mode=mode,
    )


def backdate_registration(participant, day: date, at: time = time(9, 30)):
    """Test setup: ``participant`` was registered on ``day`` (no service moves a registration
    date; the tests of records dated before registration need one in the past)."""
    from cohort.models import Participant

    stamp = timezone.make_aware(datetime.combine(day, at))
    Participant.objects.filter(pk=participant.pk).update(registered_at=stamp)
    participant.refresh_from_db()
    return participant


class RegistrationDataFactory(factory.DictFactory):
    """The keyword arguments of ``cohort.services.participant_register`` except ``by``, for
    tests that call the service (or post the form) themselves: ``RegistrationDataFactory(
    site=site, hospital_number="X1")``. Hospital numbers are unique within the run."""

    site = factory.SubFactory(SiteFactory)
    sex = "female"
    primary_tumour = "breast"
    referring_department = "radiation_oncology"
    bone_metastases_diagnosed_on = factory.LazyFunction(lambda: _today() - timedelta(days=30))
    given_name = "Anna"
    family_name = "Jansen"
    date_of_birth = date(1960, 5, 17)
    hospital_number = factory.LazyFunction(lambda: f"HN{next(_hospital_numbers):06d}")
    email = "anna@example.invalid"
    phone = "+31 6 1234 5678"
    preferred_language = "nl"


_hospital_numbers = itertools.count(1)


class ParticipantFactory(RegistrationDataFactory):
    """A registered cohort participant (``cohort.services.participant_register``), then by
    default one consent conversation with all four elements yes (``consents_give``).

    Extra keywords: ``consents`` (``True``, an element -> answer dict, or ``False`` for
    none), ``consents_on``, ``consent_form``, ``consent_by``; ``registered_on`` (a date)
    back-dates the registration. Every other keyword goes to ``participant_register``.
    """

    class Meta:
        model = Participant

    by = factory.LazyAttribute(lambda o: registrar(o.site))
    consents: bool | dict[str, bool | None] = True
    consents_on = None
    consent_form = None
    consent_by = None
    registered_on = None

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise TypeError(f"{cls.__name__} only creates (through the service), never builds")

    @classmethod
    def _create(
        cls,
        model_class,
        *,
        consents=True,
        consents_on=None,
        consent_form=None,
        consent_by=None,
        registered_on=None,
        **kwargs,
    ):
        from cohort.services import participant_register

        participant = participant_register(**kwargs)
        if registered_on is not None:
            backdate_registration(participant, registered_on)
        if consents:
            consents_give(
                participant=participant,
                by=consent_by or kwargs["by"],
                answers=consents,
                on=consents_on,
                form_version=consent_form,
            )
        return participant


def participant_without_identity(*, site, consents: bool | dict[str, bool | None] = True):
    """The one exception to "through the services": a participant whose identifying data
    (so the date of birth) were never recorded. Registration always stores them, so no
    service makes this row; it is written directly, for the tests of what the rules do with
    an unknown date of birth (the age criterion must then be answered). Consents go through
    the service as usual."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT nextval('cohort_study_number_seq')")
        (n,) = cur.fetchone()
    participant = Participant.objects.create(
        study_number=f"PRE-{int(n):05d}",
        site=site,
        sex="female",
        year_of_birth=1960,
        primary_tumour="breast",
        referring_department="radiation_oncology",
        registered_by=registrar(site),
    )
    if consents:
        consents_give(participant=participant, answers=consents)
    return participant


# --- randomization: sequences, screening, allocation ----------------------------------------
class SequenceFactory(_ServiceFactory):
    """An activated randomisation sequence (``sequence_generate`` + ``sequence_activate``):
    by default permuted blocks of 4 and 6 per site, 60 slots per stratum, environment test.
    ``activate=False`` leaves it generated."""

    class Meta:
        model = Sequence

    trial = factory.LazyFunction(blend_trial)
    by = factory.LazyFunction(sequence_keeper)
    method = "permuted_blocks"
    environment = "test"
    factors = factory.LazyFunction(lambda: ["site"])
    block_sizes = factory.LazyFunction(lambda: [4, 6])
    slots_per_stratum = 60
    activate = True

    @classmethod
    def _create(cls, model_class, *, activate=True, **kwargs):
        from randomization.services import sequence_activate, sequence_generate

        if kwargs["method"] != "permuted_blocks":
            kwargs.pop("block_sizes")
            kwargs.pop("slots_per_stratum")
        sequence = sequence_generate(**kwargs)
        return sequence_activate(by=kwargs["by"], sequence=sequence) if activate else sequence


def eligible_answers(trial) -> dict[str, str]:
    """criterion code -> the answer that keeps a participant eligible (current protocol)."""
    return {
        code: ("yes" if kind == "inclusion" else "no")
        for code, kind in trial.criteria.filter(protocol_version=trial.protocol_version)
        .values_list("code", "kind")
        .order_by("order", "code")
    }


class ScreeningFactory(_ServiceFactory):
    """A screening through ``randomization.services.screening_record``, today, eligible
    unless ``answers`` says otherwise (criterion code -> "yes" / "no" / "unknown").

    Criteria the system derives from stored data are not typed (the service answers them);
    a "yes" for such a criterion (``multiple_myeloma``) stores the data that give it (the
    primary tumour) instead of typing a contradicting answer.
    """

    class Meta:
        model = Screening

    trial = factory.LazyFunction(blend_trial)
    participant = factory.SubFactory(ParticipantFactory)
    by = factory.LazyAttribute(lambda o: registrar(o.participant.site))
    screened_on = factory.LazyFunction(_today)
    answers = factory.LazyFunction(dict)

    @classmethod
    def _create(cls, model_class, *, trial, participant, by, screened_on, answers):
        from cohort.models import Participant
        from randomization.selectors import screening_evaluate
        from randomization.services import screening_record

        overrides = dict(answers)
        for code, answer in list(overrides.items()):
            if answer == "yes" and code in DERIVED_YES_DATA:
                Participant.objects.filter(pk=participant.pk).update(**DERIVED_YES_DATA[code])
                participant.refresh_from_db()
                overrides.pop(code)
        derived = screening_evaluate(
            trial=trial, participant=participant, answers={}, on=screened_on
        ).derived
        typed = {k: v for k, v in eligible_answers(trial).items() if k not in derived}
        typed.update(overrides)
        return screening_record(
            by=by, trial=trial, participant=participant, screened_on=screened_on, answers=typed
        )


def eligible_participant(*, site, by=None, trial=None, **fields):
    """A consenting participant at ``site`` with an eligible screening by ``by``."""
    participant = ParticipantFactory(site=site, **fields)
    screening = ScreeningFactory(
        trial=trial or blend_trial(), participant=participant, by=by or registrar(site)
    )
    assert screening.is_eligible, screening.reasons
    return participant


class AllocationFactory(_ServiceFactory):
    """An allocation through ``randomization.services.allocation_randomise`` (needs an
    active sequence: ``SequenceFactory``). Without ``participant`` a fresh eligible one is
    made at ``site`` (further keywords go to ``ParticipantFactory``); with ``arm`` fresh
    participants are randomised until one lands in that arm (the others stay randomised:
    that is how a real list is consumed)."""

    class Meta:
        model = Allocation

    trial = factory.LazyFunction(blend_trial)
    participant = None
    site = factory.LazyAttribute(lambda o: o.participant.site if o.participant else SiteFactory())
    by = factory.LazyAttribute(lambda o: registrar(o.site))
    arm: str | None = None

    @classmethod
    def _create(cls, model_class, *, trial, site, by, participant=None, arm=None, **fields):
        from randomization.services import allocation_randomise

        for _ in range(1 if participant is not None else 20):
            candidate = participant or eligible_participant(site=site, by=by, trial=trial, **fields)
            allocation = allocation_randomise(by=by, trial=trial, participant=candidate).allocation
            if arm is None or allocation.arm.code == arm:
                return allocation
        raise AssertionError(f"no {arm} allocation in 20 tries")


# --- crf: questionnaires ------------------------------------------------------------------
class QuestionnaireFactory(_ServiceFactory):
    """The questionnaire of ``participant`` at ``timepoint`` (a code), made by anchoring
    the follow-up schedule (``crf.services.schedule_anchor``) on ``day0``; by default day 0
    is chosen so that the timepoint's target day is today (its window is open now)."""

    class Meta:
        model = Questionnaire

    trial = factory.LazyFunction(blend_trial)
    participant = factory.SubFactory(ParticipantFactory)
    timepoint = "week2"
    day0 = None
    is_actual = True

    @classmethod
    def _create(cls, model_class, *, trial, participant, timepoint, day0, is_actual):
        from crf.services import schedule_anchor

        tp = trial.timepoints.get(code=timepoint)
        if day0 is None:
            day0 = _today() - timedelta(days=tp.day_offset)
        schedule_anchor(participant=participant, trial=trial, day0=day0, is_actual=is_actual)
        return Questionnaire.objects.get(participant=participant, trial=trial, timepoint=tp)
