"""The PRESENT cohort: participants, their identifying data (kept apart), staged
TwiCs consent per element, scoped withdrawal and death.

Nothing here is ever deleted: consent corrections supersede a record,
withdrawals and death are rows with who/when/why.
"""

from __future__ import annotations

from datetime import date

import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Func, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cohort.rules import (
    validate_hospital_number,
    validate_no_markup,
    validate_person_name,
    validate_phone,
)
from core.audit import track
from core.models import NO_DELETE, Site


def study_number_fragments() -> Func:
    """Every run of digits inside a study number (``PRE-00042`` -> ``0``, ``00``, ... ``42``,
    ``00042``), from the SQL function of migration 0003: a GIN index over it finds the
    participants whose number contains a few typed digits without reading the others."""
    return Func(
        F("study_number"),
        function="cohort_study_number_fragments",
        output_field=ArrayField(models.TextField()),
    )


class Sex(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")
    UNKNOWN = "unknown", _("Unknown")


class PrimaryTumour(models.TextChoices):
    BREAST = "breast", _("Breast")
    PROSTATE = "prostate", _("Prostate")
    LUNG = "lung", _("Lung")
    KIDNEY = "kidney", _("Kidney")
    COLORECTAL = "colorectal", _("Colorectal")
    MELANOMA = "melanoma", _("Melanoma")
    THYROID = "thyroid", _("Thyroid")
    BLADDER = "bladder", _("Bladder")
    OESOPHAGUS_GASTRIC = "oesophagus_gastric", _("Oesophagus / stomach")
    MYELOMA = "myeloma", _("Multiple myeloma")
    UNKNOWN_PRIMARY = "unknown_primary", _("Unknown primary")
    OTHER = "other", _("Other")


class ReferringDepartment(models.TextChoices):
    RADIATION_ONCOLOGY = "radiation_oncology", _("Radiation oncology")
    ORTHOPAEDIC_SURGERY = "orthopaedic_surgery", _("Orthopaedic surgery")
    NEUROSURGERY = "neurosurgery", _("Neurosurgery")
    OTHER = "other", _("Other")


class Language(models.TextChoices):
    DUTCH = "nl", "Nederlands"
    ENGLISH = "en", "English"


class ParticipantQuerySet(models.QuerySet):
    def alive(self) -> ParticipantQuerySet:
        return self.filter(death__isnull=True)


@track()
class Participant(models.Model):
    """A PRESENT cohort member: pseudonymous clinical attributes only.

    ``study_number`` (PRE-00042) comes from a PostgreSQL sequence: unique, never
    reused, safe under concurrent registrations.
    """

    audit_site_path = "site"

    study_number = models.CharField(_("study number"), max_length=12, unique=True, editable=False)
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="participants", verbose_name=_("site")
    )
    sex = models.CharField(_("sex"), max_length=10, choices=Sex.choices)
    year_of_birth = models.PositiveSmallIntegerField(_("year of birth"))
    primary_tumour = models.CharField(
        _("primary tumour"), max_length=30, choices=PrimaryTumour.choices
    )
    bone_metastases_diagnosed_on = models.DateField(
        _("bone metastases diagnosed on"), null=True, blank=True
    )
    referring_department = models.CharField(
        _("referring department"), max_length=30, choices=ReferringDepartment.choices
    )
    registered_at = models.DateTimeField(_("registered at"), default=timezone.now, editable=False)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", editable=False
    )

    objects = ParticipantQuerySet.as_manager()

    class Meta:
        ordering = ["-registered_at"]
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        # The lists' order (newest first) with and without a site filter, and the digits
        # search (participant_list, keyset pages).
        indexes = [
            models.Index(fields=["site", "-registered_at", "-id"], name="participant_site_recent"),
            models.Index(fields=["-registered_at", "-id"], name="participant_recent"),
            GinIndex(study_number_fragments(), name="participant_number_digits"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(year_of_birth__gte=1900) & Q(year_of_birth__lte=2100),
                name="participant_year_of_birth_range",
            ),
            models.CheckConstraint(
                condition=Q(study_number__regex=r"^PRE-[0-9]{5,}$"),
                name="participant_study_number_format",
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return self.study_number


@track()
class Identity(models.Model):
    """Identifying data, kept apart from clinical data.

    Shown only to staff of the participant's own site (core.access); never in
    an export, a log line, or a statistician's view.
    """

    # The audit screens show this model's values only to staff of the participant's own site.
    audit_identifying = True
    audit_site_path = "participant__site"

    participant = models.OneToOneField(
        Participant, on_delete=models.PROTECT, related_name="identity"
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", editable=False)
    given_name = models.CharField(
        _("given name"), max_length=100, validators=[validate_person_name]
    )
    family_name = models.CharField(
        _("family name"), max_length=100, validators=[validate_person_name]
    )
    date_of_birth = models.DateField(_("date of birth"))
    hospital_number = models.CharField(
        _("hospital record number"), max_length=20, validators=[validate_hospital_number]
    )
    email = models.EmailField(_("email"), max_length=254, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, validators=[validate_phone])
    preferred_language = models.CharField(
        _("preferred language"), max_length=2, choices=Language.choices, default=Language.DUTCH
    )

    class Meta:
        verbose_name = _("identifying data")
        verbose_name_plural = _("identifying data")
        constraints = [
            models.UniqueConstraint(
                fields=["site", "hospital_number"], name="identity_unique_hospital_number_per_site"
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"identity of {self.participant_id}"


class ConsentElement(models.TextChoices):
    """The staged TwiCs consent elements at cohort entry (SPEC.md §1.1)."""

    COHORT = "cohort", _("(a) Cohort participation and use of clinical data")
    PROMS = "proms", _("(b) Patient-reported outcome questionnaires")
    RANDOMISATION_OFFER = (
        "randomisation_offer",
        _("(c) Being randomly selected to be offered experimental interventions"),
    )
    CONTROL_UNINFORMED = "control_uninformed", _("(d) Serving as a control without being informed")


class ConsentMode(models.TextChoices):
    PAPER = "paper", _("Paper")
    ELECTRONIC = "electronic", _("Electronic")


@track()
class ConsentFormVersion(models.Model):
    """A consent form version, effective on a range of dates (inclusive)."""

    audit_scope = "configuration"

    code = models.SlugField(_("code"), max_length=40)
    version = models.CharField(_("version"), max_length=20)
    language = models.CharField(_("language"), max_length=2, choices=Language.choices)
    effective_from = models.DateField(_("effective from"))
    effective_to = models.DateField(_("effective to"), null=True, blank=True)

    class Meta:
        ordering = ["code", "-effective_from"]
        verbose_name = _("consent form version")
        verbose_name_plural = _("consent form versions")
        constraints = [
            models.UniqueConstraint(
                fields=["code", "version", "language"], name="consent_form_version_unique"
            ),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True)
                | Q(effective_to__gte=models.F("effective_from")),
                name="consent_form_effective_range",
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.code} v{self.version} ({self.language})"

    def is_effective_on(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )


class ConsentRecordQuerySet(models.QuerySet):
    def current(self) -> ConsentRecordQuerySet:
        """Records not superseded by a correction."""
        return self.filter(superseded_by__isnull=True)


@track()
class ConsentRecord(models.Model):
    """One answer to one consent element. A correction creates a new record and
    points the old one at it (``superseded_by``) with a reason; nothing is lost."""

    audit_site_path = "participant__site"

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="consents")
    element = models.CharField(_("consent element"), max_length=30, choices=ConsentElement.choices)
    answer = models.BooleanField(
        _("answer"), help_text=_("Yes: consent given. No: consent refused.")
    )
    given_on = models.DateField(_("date"))
    form_version = models.ForeignKey(
        ConsentFormVersion,
        on_delete=models.PROTECT,
        related_name="records",
        verbose_name=_("form version"),
    )
    mode = models.CharField(_("mode"), max_length=12, choices=ConsentMode.choices)
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("taken by"),
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)
    superseded_by = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="supersedes",
        editable=False,
    )
    correction_reason = models.TextField(
        _("reason for correction"), blank=True, max_length=2000, validators=[validate_no_markup]
    )

    objects = ConsentRecordQuerySet.as_manager()

    class Meta:
        ordering = ["participant", "element", "-given_on", "-recorded_at"]
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        indexes = [
            models.Index(fields=["participant", "element"], name="consent_participant_element")
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.participant_id} {self.element}={'yes' if self.answer else 'no'} ({self.given_on})"


class WithdrawalScope(models.TextChoices):
    """What a withdrawal stops (SPEC.md §3.1). Broader scopes imply the narrower ones
    where it matters: see cohort.selectors."""

    QUESTIONNAIRES = "questionnaires", _("Stop questionnaires")
    TRIAL = "trial", _("Stop trial participation (intervention)")
    DATA_COLLECTION = "data_collection", _("Stop further data collection")
    DATA_USE = "data_use", _("Withdraw consent for data use")


@track()
class Withdrawal(models.Model):
    audit_site_path = "participant__site"

    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="withdrawals"
    )
    scope = models.CharField(_("scope"), max_length=20, choices=WithdrawalScope.choices)
    effective_on = models.DateField(_("effective on"))
    reason = models.TextField(
        _("reason"),
        blank=True,
        max_length=2000,
        validators=[validate_no_markup],
        help_text=_("Optional. Never write identifying data here."),
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["participant", "effective_on"]
        verbose_name = _("withdrawal")
        verbose_name_plural = _("withdrawals")
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "scope"], name="withdrawal_once_per_scope"
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.participant_id} withdrew {self.scope} on {self.effective_on}"


class DeathSource(models.TextChoices):
    HOSPITAL_RECORD = "hospital_record", _("Hospital record")
    GENERAL_PRACTITIONER = "general_practitioner", _("General practitioner")
    FAMILY = "family", _("Family")
    MUNICIPAL_REGISTRY = "municipal_registry", _("Municipal personal records database (BRP)")
    OTHER = "other", _("Other")


@track()
class Death(models.Model):
    """Recorded once; stops all patient contact from ``died_on``."""

    audit_site_path = "participant__site"

    participant = models.OneToOneField(Participant, on_delete=models.PROTECT, related_name="death")
    died_on = models.DateField(_("date of death"))
    source = models.CharField(_("source"), max_length=30, choices=DeathSource.choices)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("death")
        verbose_name_plural = _("deaths")
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.participant_id} died {self.died_on}"


@track()
class IdentityAccess(models.Model):
    """One display of a participant's identifying data to a user (SPEC.md §5: every
    access to identifying data is attributable). Append-only."""

    audit_site_path = "participant__site"

    class Context(models.TextChoices):
        PAGE = "page", _("Participant page")
        LIST = "list", _("Participant list")
        API = "api", _("API")
        FORM = "form", _("Form")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("user")
    )
    participant = models.ForeignKey(
        Participant,
        on_delete=models.PROTECT,
        related_name="identity_accesses",
        verbose_name=_("participant"),
    )
    at = models.DateTimeField(_("at"), default=timezone.now, editable=False)
    context = models.CharField(_("context"), max_length=10, choices=Context.choices)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("identifying data access")
        verbose_name_plural = _("identifying data accesses")
        indexes = [models.Index(fields=["participant", "-at"], name="identity_access_recent")]
        triggers = [
            NO_DELETE,
            pgtrigger.Protect(name="no_update", operation=pgtrigger.Update),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} saw identity of {self.participant_id} at {self.at:%Y-%m-%d %H:%M}"
