"""Trials hosted on the PRESENT cohort and their arms.

The randomization helper-owned parts (criteria, screenings, sequences,
allocations, TwiCs offer/decision, treatment start) build on these two models.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.audit import track
from core.models import NO_DELETE


class TrialStatus(models.TextChoices):
    """The trial's lifecycle (``randomization.lifecycle``): set-up → recruiting (when a
    production sequence goes live) → closed to recruitment → closed."""

    SETUP = "setup", _("In set-up")
    RECRUITING = "recruiting", _("Recruiting")
    RECRUITMENT_CLOSED = "recruitment_closed", _("Closed to recruitment")
    CLOSED = "closed", _("Closed")


@track(exclude=["numbers_issued"])
class Trial(models.Model):
    """A TwiCs trial inside the cohort (PRESENT hosts several; BLEND is the first)."""

    audit_scope = "configuration"

    code = models.SlugField(
        _("code"),
        max_length=20,
        unique=True,
        help_text=_("Also the trial-number prefix, e.g. BLEND-017."),
    )
    name = models.CharField(_("name"), max_length=200)
    registration = models.CharField(_("registrations"), max_length=200, blank=True)
    protocol_version = models.CharField(_("protocol version"), max_length=20)
    target_size = models.PositiveIntegerField(_("target size"))
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=TrialStatus.choices,
        default=TrialStatus.SETUP,
        editable=False,
        help_text=_(
            "Changed only through the lifecycle (sequence go-live, closing with a reason)."
        ),
    )
    # How many trial numbers were given out: the last allocation's number. Advanced in the
    # randomisation's own statement, under this row's lock, so that numbers stay gapless
    # across strata. Not in the audit trail: each allocation's number is.
    numbers_issued = models.PositiveIntegerField(
        _("trial numbers issued"), default=0, editable=False
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("trial")
        verbose_name_plural = _("trials")
        constraints = [
            models.CheckConstraint(condition=Q(target_size__gt=0), name="trial_target_positive")
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return self.code


@track()
class Arm(models.Model):
    audit_scope = "configuration"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="arms")
    code = models.SlugField(_("code"), max_length=20)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    ratio = models.PositiveSmallIntegerField(_("allocation ratio weight"), default=1)
    is_intervention = models.BooleanField(
        _("intervention arm"),
        default=False,
        help_text=_("TwiCs: only this arm is offered the intervention."),
    )

    class Meta:
        ordering = ["trial", "-is_intervention", "code"]
        verbose_name = _("arm")
        verbose_name_plural = _("arms")
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="arm_code_unique_per_trial"),
            models.CheckConstraint(condition=Q(ratio__gt=0), name="arm_ratio_positive"),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.trial.code}:{self.code}"


# --- eligibility criteria and screening -------------------------------------------------------
class CriterionKind(models.TextChoices):
    INCLUSION = "inclusion", _("Inclusion")
    EXCLUSION = "exclusion", _("Exclusion")


class CriterionDerivation(models.TextChoices):
    """The derivations of ``randomization.eligibility.derive`` (SPEC.md §3.2)."""

    AGE_AT_SCREENING = "age_at_screening", _("Age on the screening date (date of birth)")
    PRIMARY_TUMOUR = "primary_tumour", _("Primary tumour (registration)")
    RANDOMISATION_CONSENT = "randomisation_consent", _("Consent to randomisation (consent records)")
    ALIVE_AT_SCREENING = "alive_at_screening", _("Alive on the screening date (death record)")


@track()
class Criterion(models.Model):
    """One eligibility criterion of a trial, versioned with the protocol (data, not code)."""

    audit_scope = "configuration"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="criteria")
    protocol_version = models.CharField(_("protocol version"), max_length=20)
    kind = models.CharField(_("kind"), max_length=10, choices=CriterionKind.choices)
    code = models.SlugField(_("code"), max_length=40)
    text_nl = models.TextField(_("text (Dutch)"))
    text_en = models.TextField(_("text (English)"))
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    derived_from = models.CharField(
        _("derived from"),
        max_length=30,
        choices=CriterionDerivation.choices,
        blank=True,
        help_text=_(
            "Stored data the system answers this criterion from (nurses do not answer it, "
            "unless the data cannot decide it). Empty: always asked."
        ),
    )
    derivation_params = models.JSONField(
        _("derivation parameters"),
        default=dict,
        blank=True,
        help_text=_('E.g. {"min_years": 18} or {"values": ["myeloma"]}.'),
    )

    class Meta:
        ordering = ["trial", "protocol_version", "order", "code"]
        verbose_name = _("eligibility criterion")
        verbose_name_plural = _("eligibility criteria")
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "protocol_version", "code"], name="criterion_code_unique"
            )
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.trial_id}/{self.protocol_version}/{self.code}"

    @property
    def text(self) -> str:
        from django.utils.translation import get_language

        return self.text_en if (get_language() or "nl").startswith("en") else self.text_nl


class Answer(models.TextChoices):
    YES = "yes", _("Yes")
    NO = "no", _("No")
    UNKNOWN = "unknown", _("Unknown")


class AnswerSource(models.TextChoices):
    ENTERED = "entered", _("Entered")
    DERIVED = "derived", _("Derived from stored data")


class Verdict(models.TextChoices):
    ELIGIBLE = "eligible", _("Eligible")
    INELIGIBLE = "ineligible", _("Not eligible")


@track()
class Screening(models.Model):
    """One participant checked against one trial's criteria. Re-screening adds a record;
    earlier screenings stay as they were (they feed the CONSORT flow)."""

    audit_site_path = "participant__site"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="screenings")
    participant = models.ForeignKey(
        "cohort.Participant", on_delete=models.PROTECT, related_name="screenings"
    )
    site = models.ForeignKey(
        "core.Site", on_delete=models.PROTECT, related_name="+", editable=False
    )
    protocol_version = models.CharField(_("protocol version"), max_length=20)
    screened_on = models.DateField(_("screening date"))
    screened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("screened by"),
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)
    verdict = models.CharField(_("verdict"), max_length=12, choices=Verdict.choices)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        verbose_name = _("screening")
        verbose_name_plural = _("screenings")
        indexes = [
            models.Index(fields=["trial", "participant", "-recorded_at"], name="screening_latest"),
            models.Index(fields=["trial", "site", "-recorded_at"], name="screening_site_recent"),
            # the overview's and the API's newest-first list for sponsor-wide readers
            models.Index(fields=["trial", "-recorded_at", "-id"], name="screening_recent"),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"screening {self.pk} of {self.participant_id} for {self.trial_id}"

    @property
    def is_eligible(self) -> bool:
        return self.verdict == Verdict.ELIGIBLE


@track()
class ScreeningAnswer(models.Model):
    audit_site_path = "screening__participant__site"

    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="answers")
    criterion = models.ForeignKey(Criterion, on_delete=models.PROTECT, related_name="+")
    answer = models.CharField(_("answer"), max_length=8, choices=Answer.choices)
    source = models.CharField(
        _("source"), max_length=8, choices=AnswerSource.choices, default=AnswerSource.ENTERED
    )
    basis = models.JSONField(
        _("derived from"),
        default=dict,
        blank=True,
        help_text=_("What a derived answer rests on (e.g. the age on the screening date)."),
    )

    class Meta:
        ordering = ["screening", "criterion__order"]
        verbose_name = _("screening answer")
        verbose_name_plural = _("screening answers")
        constraints = [
            models.UniqueConstraint(
                fields=["screening", "criterion"], name="screening_answer_once_per_criterion"
            )
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.criterion_id}={self.answer}"


# --- sequences (concealed) ----------------------------------------------------------------------
class Method(models.TextChoices):
    PERMUTED_BLOCKS = "permuted_blocks", _("Permuted blocks of random size")
    MINIMISATION = "minimisation", _("Minimisation (Pocock–Simon)")


class Environment(models.TextChoices):
    TEST = "test", _("Test")
    PRODUCTION = "production", _("Production")


class SequenceStatus(models.TextChoices):
    GENERATED = "generated", _("Generated (not live)")
    ACTIVE = "active", _("Active (live)")
    RETIRED = "retired", _("Retired")


# Participant attributes a sequence may stratify or minimise on, besides the site.
STRATIFICATION_FACTORS = {
    "site": _("Site"),
    "sex": _("Sex"),
    "primary_tumour": _("Primary tumour"),
    "referring_department": _("Referring department"),
}


@track(exclude=["seed"])
class Sequence(models.Model):
    """A sealed randomisation list (or minimisation configuration) of one trial.

    The seed never enters the audit trail and is readable only through
    ``randomization.selectors`` by a statistician holding the sequence permission.
    """

    audit_scope = "concealed"
    audit_permission = "randomization.manage_sequences"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="sequences")
    method = models.CharField(_("method"), max_length=20, choices=Method.choices)
    environment = models.CharField(_("environment"), max_length=12, choices=Environment.choices)
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=SequenceStatus.choices,
        default=SequenceStatus.GENERATED,
    )
    block_sizes = models.JSONField(_("block sizes"), default=list, blank=True)
    factors = models.JSONField(_("stratification factors"), default=list)
    slots_per_stratum = models.PositiveIntegerField(_("slots per stratum"), default=0)
    probability = models.DecimalField(
        _("probability of the preferred arm"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.800"),
    )
    arms = models.JSONField(_("arms and ratios"), default=list)
    seed = models.CharField(_("seed"), max_length=64, editable=False)
    fingerprint = models.CharField(_("SHA-256 fingerprint"), max_length=64, editable=False)
    generated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    generated_at = models.DateTimeField(_("generated at"), default=timezone.now, editable=False)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    retired_at = models.DateTimeField(_("retired at"), null=True, blank=True)

    class Meta:
        ordering = ["trial", "-generated_at"]
        verbose_name = _("randomisation sequence")
        verbose_name_plural = _("randomisation sequences")
        permissions = [
            ("manage_sequences", "Can generate, read and activate randomisation sequences"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "environment"],
                condition=Q(status="active"),
                name="sequence_one_active_per_trial_environment",
            ),
            models.CheckConstraint(
                condition=Q(probability__gt=Decimal("0.5")) & Q(probability__lte=Decimal("1")),
                name="sequence_probability_range",
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.trial_id} sequence {self.pk} ({self.environment}, {self.status})"


@track(exclude=["arm"])
class Slot(models.Model):
    """One position of a sealed list. Immutable: the list is what the fingerprint seals.

    The arm is excluded from the audit trail so no audit screen can show an unused slot.
    """

    # Block, block size, position and stratum predict allocations: sequence holders only.
    audit_scope = "concealed"
    audit_permission = "randomization.manage_sequences"

    sequence = models.ForeignKey(Sequence, on_delete=models.PROTECT, related_name="slots")
    stratum = models.CharField(_("stratum"), max_length=200)
    position = models.PositiveIntegerField(_("position"))
    block = models.PositiveIntegerField(_("block"))
    block_size = models.PositiveSmallIntegerField(_("block size"))
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["sequence", "stratum", "position"]
        verbose_name = _("slot")
        verbose_name_plural = _("slots")
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "stratum", "position"], name="slot_position_unique"
            ),
            models.CheckConstraint(condition=Q(position__gte=1), name="slot_position_positive"),
        ]
        triggers = [
            NO_DELETE,
            pgtrigger.Protect(name="sealed_no_update", operation=pgtrigger.Update),
        ]

    def __str__(self) -> str:
        return f"slot {self.stratum}#{self.position}"


@track()
class Stratum(models.Model):
    """The row locked while randomising in a stratum; ``used`` is how many slots are taken."""

    audit_scope = "concealed"
    audit_permission = "randomization.manage_sequences"

    sequence = models.ForeignKey(Sequence, on_delete=models.PROTECT, related_name="strata")
    key = models.CharField(_("stratum"), max_length=200)
    size = models.PositiveIntegerField(_("slots"))
    used = models.PositiveIntegerField(_("slots used"), default=0)

    class Meta:
        ordering = ["sequence", "key"]
        verbose_name = _("stratum")
        verbose_name_plural = _("strata")
        constraints = [
            models.UniqueConstraint(fields=["sequence", "key"], name="stratum_key_unique"),
            models.CheckConstraint(
                condition=Q(used__lte=models.F("size")), name="stratum_not_overused"
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.sequence_id}:{self.key}"


# --- allocations --------------------------------------------------------------------------------
class AllocationStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    CORRECTED_IN_ERROR = "corrected_in_error", _("Randomised in error (corrected)")


@track()
class Allocation(models.Model):
    """A participant's randomised arm in a trial: once per participant per trial, never deleted.

    A randomised-in-error participant keeps this row; only ``status`` changes, through the
    two-person correction workflow.
    """

    audit_site_path = "participant__site"
    # Which list, stratum and slot an allocation used would reveal the list's structure.
    audit_hidden_fields = ("sequence", "stratum", "slot")

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="allocations")
    participant = models.ForeignKey(
        "cohort.Participant", on_delete=models.PROTECT, related_name="allocations"
    )
    site = models.ForeignKey("core.Site", on_delete=models.PROTECT, related_name="+")
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="allocations")
    trial_number = models.CharField(_("trial number"), max_length=30, unique=True)
    sequence = models.ForeignKey(Sequence, on_delete=models.PROTECT, related_name="allocations")
    stratum = models.CharField(_("stratum"), max_length=200)
    slot = models.OneToOneField(
        Slot, on_delete=models.PROTECT, related_name="allocation", null=True, blank=True
    )
    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="+")
    randomised_at = models.DateTimeField(_("randomised at"), default=timezone.now)
    randomised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("randomised by"),
    )
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=AllocationStatus.choices,
        default=AllocationStatus.ACTIVE,
    )
    treatment_start_planned = models.DateField(
        _("planned start of treatment (day 0)"), null=True, blank=True
    )
    treatment_start_actual = models.DateField(
        _("actual start of treatment (day 0)"), null=True, blank=True
    )

    class Meta:
        ordering = ["-randomised_at", "-pk"]
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "participant"], name="allocation_once_per_participant"
            ),
        ]
        indexes = [
            models.Index(fields=["trial", "site", "-randomised_at"], name="alloc_site_recent"),
            # the overview's newest-first list for sponsor-wide readers
            models.Index(fields=["trial", "-randomised_at", "-id"], name="alloc_recent"),
            # counts by arm read from the index alone (arm_counts)
            models.Index(
                fields=["trial", "arm"], name="alloc_active_arm", condition=Q(status="active")
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return self.trial_number

    @property
    def day0(self) -> date | None:
        return self.treatment_start_actual or self.treatment_start_planned


@track()
class MinimisationDecision(models.Model):
    """The figures behind one minimised allocation (Pocock–Simon)."""

    # The draw and the imbalances predict the next allocation: sequence holders only.
    audit_scope = "concealed"
    audit_permission = "randomization.manage_sequences"

    allocation = models.OneToOneField(
        Allocation, on_delete=models.PROTECT, related_name="minimisation"
    )
    levels = models.JSONField(_("factor levels"))
    imbalance = models.JSONField(_("total imbalance per candidate arm"))
    preferred = models.JSONField(_("preferred arms"))
    probability = models.DecimalField(_("probability"), max_digits=4, decimal_places=3)
    draw = models.FloatField(_("random draw"))
    chosen = models.CharField(_("chosen arm"), max_length=20)

    class Meta:
        verbose_name = _("minimisation decision")
        verbose_name_plural = _("minimisation decisions")
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"minimisation of {self.allocation_id}"


class CorrectionStatus(models.TextChoices):
    PROPOSED = "proposed", _("Proposed")
    CONFIRMED = "confirmed", _("Confirmed")
    REJECTED = "rejected", _("Rejected")


@track()
class AllocationCorrection(models.Model):
    """Two-person correction of a randomised-in-error allocation: one proposes with a
    reason, a different person with a different role confirms (or rejects)."""

    audit_site_path = "allocation__participant__site"

    allocation = models.ForeignKey(Allocation, on_delete=models.PROTECT, related_name="corrections")
    reason = models.TextField(_("reason"), max_length=2000)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    proposed_role = models.CharField(_("role of proposer"), max_length=20)
    proposed_at = models.DateTimeField(_("proposed at"), default=timezone.now)
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=CorrectionStatus.choices,
        default=CorrectionStatus.PROPOSED,
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    decided_role = models.CharField(_("role of confirmer"), max_length=20, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("note"), max_length=2000, blank=True)

    class Meta:
        ordering = ["-proposed_at", "-pk"]
        verbose_name = _("allocation correction")
        verbose_name_plural = _("allocation corrections")
        constraints = [
            models.UniqueConstraint(
                fields=["allocation"],
                condition=Q(status="proposed"),
                name="correction_one_open_per_allocation",
            ),
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("proposed_by")),
                name="correction_two_persons",
            ),
        ]
        # the corrections list, newest first, a page at a time
        indexes = [models.Index(fields=["-proposed_at", "-id"], name="correction_recent")]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"correction {self.pk} of {self.allocation_id} ({self.status})"


# --- TwiCs after randomisation ---------------------------------------------------------------
class Decision(models.TextChoices):
    PENDING = "pending", _("Pending")
    ACCEPTED = "accepted", _("Accepted")
    REFUSED = "refused", _("Refused")


@track()
class InterventionOffer(models.Model):
    """Intervention arm only: the offer, the patient's decision and the trial consent.
    Refusers stay in the intervention arm (intention to treat)."""

    audit_site_path = "allocation__participant__site"

    allocation = models.OneToOneField(Allocation, on_delete=models.PROTECT, related_name="offer")
    offered_on = models.DateField(_("offered on"))
    offered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("offered by"),
    )
    decision = models.CharField(
        _("decision"), max_length=10, choices=Decision.choices, default=Decision.PENDING
    )
    decided_on = models.DateField(_("decision date"), null=True, blank=True)
    refusal_reason = models.TextField(_("reason for refusal"), max_length=2000, blank=True)
    consent_form_version = models.ForeignKey(
        "cohort.ConsentFormVersion",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("trial consent form version"),
    )
    consent_date = models.DateField(_("trial consent date"), null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("intervention offer")
        verbose_name_plural = _("intervention offers")
        constraints = [
            models.CheckConstraint(
                condition=Q(decision="pending") | Q(decided_on__isnull=False),
                name="offer_decided_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(decision="accepted")
                | (Q(consent_form_version__isnull=False) & Q(consent_date__isnull=False)),
                name="offer_accepted_has_consent",
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"offer for {self.allocation_id}: {self.decision}"


@track()
class ControlDisclosure(models.Model):
    """A protocol deviation: a control-arm participant was told about the trial or allocation."""

    audit_site_path = "allocation__participant__site"

    allocation = models.ForeignKey(Allocation, on_delete=models.PROTECT, related_name="disclosures")
    disclosed_on = models.DateField(_("date of disclosure"))
    description = models.TextField(
        _("what happened"),
        max_length=4000,
        help_text=_("Who told whom what, and how. Never write identifying data here."),
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["-disclosed_on", "-pk"]
        verbose_name = _("control-arm disclosure (protocol deviation)")
        verbose_name_plural = _("control-arm disclosures (protocol deviations)")
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"disclosure {self.pk} for {self.allocation_id}"
