"""Follow-up schedule and questionnaires (ePRO).

- :class:`Timepoint` — the schedule as data (SPEC.md §3.5), per trial.
- :class:`Questionnaire` — one row per participant, trial and timepoint; the
  database is the source of truth for what is due (``next_action_at``).
- :class:`QuestionnaireLink` — a personal link sent in a mail: only the
  SHA-256 of the random token is stored; valid until the window closes.
- :class:`InstrumentResponse` — the item answers of one instrument (JSON),
  with the instrument version and the computed scores.

Nothing is deleted; every model is audited (core.audit.track).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from core.audit import track
from core.models import NO_DELETE


@track()
class Timepoint(models.Model):
    """A follow-up moment of a trial: day offset from day 0, window, instruments."""

    audit_scope = "configuration"

    trial = models.ForeignKey(
        "randomization.Trial",
        on_delete=models.PROTECT,
        related_name="timepoints",
        verbose_name=_("trial"),
    )
    code = models.SlugField(_("code"), max_length=20)
    label_nl = models.CharField(_("label (Dutch)"), max_length=60)
    label_en = models.CharField(_("label (English)"), max_length=60)
    day_offset = models.IntegerField(_("day offset from day 0"))
    window_before = models.PositiveSmallIntegerField(_("window before (days)"))
    window_after = models.PositiveSmallIntegerField(_("window after (days)"))
    instruments = ArrayField(models.CharField(max_length=20), verbose_name=_("instruments"))
    is_primary = models.BooleanField(_("primary endpoint timepoint"), default=False)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["trial", "day_offset", "code"]
        verbose_name = _("timepoint")
        verbose_name_plural = _("timepoints")
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="timepoint_code_unique"),
            models.UniqueConstraint(
                fields=["trial"],
                condition=Q(is_primary=True),
                name="timepoint_one_primary_per_trial",
            ),
            models.CheckConstraint(
                condition=Q(instruments__len__gt=0), name="timepoint_has_instruments"
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.trial_id}:{self.code}"

    @property
    def label(self) -> str:
        return self.label_en if (get_language() or "nl").startswith("en") else self.label_nl


class QuestionnaireStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    OPEN = "open", _("Open")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    REMINDED = "reminded", _("Reminded")
    COMPLETED = "completed", _("Completed")
    MISSED = "missed", _("Missed")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


# Rows the sweep still has to act on (the partial index covers exactly these).
ACTIVE_STATUSES = (
    QuestionnaireStatus.SCHEDULED,
    QuestionnaireStatus.OPEN,
    QuestionnaireStatus.SENDING,
    QuestionnaireStatus.SENT,
    QuestionnaireStatus.REMINDED,
)
# Rows whose invitation has not gone out: re-anchoring moves them, cancelling stops them.
UNSENT_STATUSES = (QuestionnaireStatus.SCHEDULED, QuestionnaireStatus.OPEN)
# A patient may answer through a link while the row is in one of these.
ANSWERABLE_STATUSES = (
    QuestionnaireStatus.SENDING,
    QuestionnaireStatus.SENT,
    QuestionnaireStatus.REMINDED,
)
FINAL_STATUSES = (
    QuestionnaireStatus.COMPLETED,
    QuestionnaireStatus.MISSED,
    QuestionnaireStatus.CANCELLED,
    QuestionnaireStatus.FAILED,
)


class Mode(models.TextChoices):
    EPRO = "epro", _("Online (patient link)")
    PAPER = "paper", _("Paper")
    PHONE = "phone", _("By phone")


class SendKind(models.TextChoices):
    INVITATION = "invitation", _("Invitation")
    REMINDER = "reminder", _("Reminder")


class QuestionnaireQuerySet(models.QuerySet["Questionnaire"]):
    def due(self, at: datetime) -> QuestionnaireQuerySet:
        """Rows the sweep must look at now (served by the partial index ``q_due``)."""
        return self.filter(status__in=ACTIVE_STATUSES, next_action_at__lte=at)


@track()
class Questionnaire(models.Model):
    """One timepoint's questionnaire for one participant in one trial."""

    audit_site_path = "participant__site"

    participant = models.ForeignKey(
        "cohort.Participant",
        on_delete=models.PROTECT,
        related_name="questionnaires",
        verbose_name=_("participant"),
    )
    trial = models.ForeignKey(
        "randomization.Trial", on_delete=models.PROTECT, related_name="+", verbose_name=_("trial")
    )
    timepoint = models.ForeignKey(
        Timepoint, on_delete=models.PROTECT, related_name="questionnaires"
    )
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=QuestionnaireStatus.choices,
        default=QuestionnaireStatus.SCHEDULED,
    )
    day0 = models.DateField(_("day 0 used"))
    day0_is_actual = models.BooleanField(_("day 0 is the actual date"), default=False)
    opens_at = models.DateTimeField(_("window opens"))
    due_at = models.DateTimeField(_("due"))
    closes_at = models.DateTimeField(_("window closes"))
    # When the sweep must next act on this row (invitation, reminder, retry, stale claim,
    # window close). NULL for final rows.
    next_action_at = models.DateTimeField(_("next action at"), null=True, blank=True)

    # Sending: the claim (status ``sending``) carries an attempt id; a claim older
    # than QUESTIONNAIRE_SENDING_STALE_SECONDS is treated as a crashed send.
    sending_kind = models.CharField(max_length=12, choices=SendKind.choices, blank=True)
    sending_attempt = models.UUIDField(null=True, blank=True, editable=False)
    sending_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(_("failed send attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    sent_at = models.DateTimeField(_("invitation sent"), null=True, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(_("reminders sent"), default=0)
    reminders_failed = models.PositiveSmallIntegerField(_("reminders given up"), default=0)
    last_reminder_at = models.DateTimeField(_("last reminder"), null=True, blank=True)

    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    # When the patient answered: the local date is always known once completed; the exact
    # moment only when it is known (online, or a time given with a paper/phone entry).
    # Nothing is invented: a paper form dated "3 March" has completed_at empty.
    completed_on = models.DateField(_("date answered"), null=True, blank=True)
    completed_at = models.DateTimeField(
        _("time answered"),
        null=True,
        blank=True,
        help_text=_("Empty when only the date is known."),
    )
    completion_recorded_at = models.DateTimeField(
        _("completion recorded"), null=True, blank=True, editable=False
    )
    outside_window = models.BooleanField(
        _("outside window"),
        default=False,
        help_text=_(
            "Answered outside the timepoint's window (confirmed at entry); not used where "
            "an endpoint needs in-window answers."
        ),
    )
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("entered by"),
    )
    scores = models.JSONField(_("scores"), default=dict, blank=True)
    cancel_reason = models.CharField(_("reason for cancelling"), max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = QuestionnaireQuerySet.as_manager()

    class Meta:
        ordering = ["participant", "opens_at"]
        verbose_name = _("questionnaire")
        verbose_name_plural = _("questionnaires")
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "trial", "timepoint"], name="questionnaire_unique"
            ),
            models.CheckConstraint(
                condition=Q(opens_at__lt=models.F("closes_at")), name="questionnaire_window_order"
            ),
            models.CheckConstraint(
                condition=~Q(status="completed")
                | Q(completed_on__isnull=False, completion_recorded_at__isnull=False),
                name="questionnaire_completed_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(sending_attempt__isnull=False),
                name="questionnaire_sending_has_attempt",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_action_at", "id"],
                name="q_due",
                condition=Q(status__in=["scheduled", "open", "sending", "sent", "reminded"]),
            ),
            models.Index(fields=["status", "due_at"], name="q_status_due"),
            # the staff worklist's buckets in their order (closing soonest first), a keyset
            # page at a time: open and overdue rows, and failed ones
            models.Index(
                fields=["closes_at", "id"],
                name="q_worklist_active",
                condition=Q(status__in=["scheduled", "open", "sending", "sent", "reminded"]),
            ),
            models.Index(
                fields=["closes_at", "id"], name="q_worklist_failed", condition=Q(status="failed")
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.participant_id}:{self.timepoint_id}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def first_day(self) -> date:
        """The first local day of the window (for display)."""
        return timezone.localtime(self.opens_at).date()

    @property
    def last_day(self) -> date:
        """The last local day of the window, inclusive (it closes at midnight after it)."""
        return timezone.localtime(self.closes_at - timedelta(microseconds=1)).date()

    @property
    def reminders_done(self) -> int:
        return self.reminders_sent + self.reminders_failed

    def is_overdue(self, at: datetime | None = None) -> bool:
        at = at or timezone.now()
        return self.status in ACTIVE_STATUSES and self.due_at <= at < self.closes_at


@track()
class QuestionnaireLink(models.Model):
    """A link sent to a patient; the token itself is never stored, only its SHA-256."""

    audit_site_path = "questionnaire__participant__site"
    audit_hidden_fields = ("token_hash",)

    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.PROTECT, related_name="links")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    kind = models.CharField(max_length=12, choices=SendKind.choices)
    attempt = models.UUIDField(editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["questionnaire", "created_at"]
        verbose_name = _("questionnaire link")
        verbose_name_plural = _("questionnaire links")
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"link {self.pk} of {self.questionnaire_id}"


@track()
class InstrumentResponse(models.Model):
    """The item answers of one instrument within one questionnaire, and its scores."""

    audit_site_path = "questionnaire__participant__site"

    questionnaire = models.ForeignKey(
        Questionnaire, on_delete=models.PROTECT, related_name="responses"
    )
    instrument = models.CharField(_("instrument"), max_length=20)
    instrument_version = models.CharField(_("instrument version"), max_length=120)
    answers = models.JSONField(_("answers"), default=dict, blank=True)
    scores = models.JSONField(_("scores"), default=dict, blank=True)
    scoring_tables = models.JSONField(
        _("scoring table versions"),
        default=dict,
        blank=True,
        help_text=_("The versions of the conversion and tariff tables the scores used."),
    )
    saved_at = models.DateTimeField(_("saved"), default=timezone.now)

    class Meta:
        ordering = ["questionnaire", "id"]
        verbose_name = _("instrument response")
        verbose_name_plural = _("instrument responses")
        constraints = [
            models.UniqueConstraint(
                fields=["questionnaire", "instrument"], name="response_unique_instrument"
            )
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.questionnaire_id}:{self.instrument}"


# --- versioned code lists (CTCAE v5.0) -------------------------------------------------------
@track()
class CodeList(models.Model):
    """One loaded version of a code list (e.g. CTCAE v5.0 from NCI's spreadsheet).

    A version is loaded once and never changed; loading a new version makes it the current
    one (one current version per list). Without any loaded version the list shipped with
    the code (``crf/codelists/*.json``) applies. Written only by
    :func:`crf.codelists.code_list_load`.
    """

    audit_scope = "configuration"

    code = models.SlugField(_("code list"), max_length=40)
    version = models.CharField(_("version"), max_length=20)
    source = models.TextField(
        _("source"), help_text=_("Where the rows came from (file, publisher).")
    )
    loaded_at = models.DateTimeField(_("loaded"), default=timezone.now, editable=False)
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("loaded by"),
    )
    is_current = models.BooleanField(_("current version"), default=False)

    class Meta:
        ordering = ["code", "-loaded_at"]
        verbose_name = _("code list version")
        verbose_name_plural = _("code list versions")
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="codelist_version_unique"),
            models.UniqueConstraint(
                fields=["code"], condition=Q(is_current=True), name="codelist_one_current"
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.code} {self.version}"


@track()
class CodeListTerm(models.Model):
    """One term of a code list version: code (MedDRA code for CTCAE), English term, Dutch
    label, system organ class, and the description of each grade 1–5 (``null`` where the
    grade does not exist for the term)."""

    audit_scope = "configuration"

    code_list = models.ForeignKey(
        CodeList, on_delete=models.PROTECT, related_name="terms", verbose_name=_("code list")
    )
    code = models.CharField(_("code"), max_length=20)
    term = models.CharField(_("term"), max_length=200)
    term_nl = models.CharField(_("term (Dutch)"), max_length=200, blank=True)
    soc = models.CharField(_("system organ class"), max_length=200)
    definition = models.TextField(_("definition"), blank=True)
    grades = models.JSONField(
        _("grades"), help_text=_('{"1": description or null, ..., "5": description or null}')
    )

    class Meta:
        ordering = ["code_list", "soc", "term"]
        verbose_name = _("code list term")
        verbose_name_plural = _("code list terms")
        constraints = [
            models.UniqueConstraint(fields=["code_list", "code"], name="codelist_term_unique"),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.code} {self.term}"


# --------------------------------------------------------------------------- form definitions


@track()
class FormDefinition(models.Model):
    """One version of a definition (questionnaire or clinical form) as it was shipped.

    The JSON files in ``crf/instruments/`` and ``crf/definitions/`` are the source; this
    table is their read-only register, filled after ``migrate`` by
    :func:`crf.definition_store.form_definitions_sync`, so that every stored record can name
    the exact definition it was entered with and the admin can list them. A file changed
    without a new version is refused (system check crf.E002): bump the version.
    """

    audit_scope = "configuration"

    class Kind(models.TextChoices):
        QUESTIONNAIRE = "questionnaire", _("Questionnaire")
        CLINICAL = "clinical", _("Clinical form")

    code = models.SlugField(_("code"), max_length=40)
    version = models.CharField(_("version"), max_length=20)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    occurs = models.CharField(_("occurs"), max_length=20, blank=True)
    title = models.JSONField(_("title"), help_text=_("The title in Dutch and English."))
    content = models.JSONField(_("content"), help_text=_("The definition file as shipped."))
    sha256 = models.CharField(_("SHA-256 of the file"), max_length=64)
    loaded_at = models.DateTimeField(_("loaded at"), default=timezone.now)

    class Meta:
        ordering = ["kind", "code", "-loaded_at"]
        verbose_name = _("form definition")
        verbose_name_plural = _("form definitions")
        constraints = [
            models.UniqueConstraint(
                fields=["code", "version"], name="formdefinition_code_version_unique"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["questionnaire", "clinical"]), name="formdefinition_kind"
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.code} {self.version}"

    def title_in(self, language: str | None = None) -> str:
        lang = (language or get_language() or "nl").split("-")[0]
        title = self.title if isinstance(self.title, dict) else {}
        return str(title.get(lang) or title.get("nl") or self.code)


# --------------------------------------------------------------------------- clinical records


class RecordStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    COMPLETE = "complete", _("Complete")
    NOT_DONE = "not_done", _("Not done")
    VOIDED = "voided", _("Voided (made in error)")


@track()
class ClinicalRecord(models.Model):
    """One clinical case report form of one participant: every BLEND form in one model.

    ``data`` holds the answers as :mod:`crf.instruments` defines them (item code → plain
    JSON value), entered with the definition version ``definition``; computed items
    (SINS, length of stay) are recomputed by the save service on every write. One record
    per participant, trial, form and occurrence (``"1"`` for a once-only form, the
    timepoint code for follow-up forms, ``"1"``, ``"2"``, … for events and logs).

    ``revision`` counts the saves: a save based on an older revision is refused (optimistic
    concurrency, :func:`crf.services.clinical_record_update`). Written only by the services
    of :mod:`crf.services`; never deleted (a log entry made in error is ``voided`` with a
    reason). The audit trail shows each item's old and new value (``audit_expand_fields``).
    """

    audit_site_path = "participant__site"
    audit_expand_fields = ("data",)

    trial = models.ForeignKey(
        "randomization.Trial", on_delete=models.PROTECT, related_name="clinical_records"
    )
    participant = models.ForeignKey(
        "cohort.Participant", on_delete=models.PROTECT, related_name="clinical_records"
    )
    form_code = models.SlugField(_("form"), max_length=40)
    occurrence = models.CharField(_("occurrence"), max_length=20)
    definition = models.ForeignKey(
        FormDefinition,
        on_delete=models.PROTECT,
        related_name="records",
        verbose_name=_("definition version"),
    )
    data = models.JSONField(_("data"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=RecordStatus.choices, default=RecordStatus.DRAFT
    )
    status_reason = models.TextField(
        _("reason"),
        max_length=2000,
        blank=True,
        help_text=_("Why the form was not done, or why the entry was voided."),
    )
    revision = models.PositiveIntegerField(_("revision"), default=1)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(_("last changed at"), default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        ordering = ["participant", "form_code", "pk"]
        verbose_name = _("clinical record")
        verbose_name_plural = _("clinical records")
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "trial", "form_code", "occurrence"],
                name="clinicalrecord_once_per_occurrence",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "complete", "not_done", "voided"]),
                name="clinicalrecord_status",
            ),
            models.CheckConstraint(
                condition=Q(revision__gte=1), name="clinicalrecord_revision_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "complete"]) | ~Q(status_reason=""),
                name="clinicalrecord_reason_when_not_done_or_voided",
            ),
            models.CheckConstraint(
                condition=~Q(status="complete") | Q(completed_at__isnull=False),
                name="clinicalrecord_completed_at",
            ),
        ]
        indexes = [
            # incomplete forms of a site's worklist
            models.Index(
                fields=["trial", "updated_at"],
                name="clinicalrecord_drafts",
                condition=Q(status="draft"),
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.form_code} {self.occurrence} of {self.participant_id}"

    @property
    def is_final(self) -> bool:
        """Complete or not done: a change needs a reason for change."""
        return self.status in (RecordStatus.COMPLETE, RecordStatus.NOT_DONE)


class FormExpectation(models.Model):
    """Which clinical forms a participant is expected to have, kept in step with the
    records and their anchors (day 0, surgery, death, arm, the TwiCs decision) by
    :func:`crf.services.form_expectations_refresh`, so a site's worklist finds overdue forms
    with one indexed query instead of evaluating every participant.

    A cache of :func:`crf.expected.expected_forms` (the rule), not trial data: rows are
    replaced when recomputed and not audited. ``status`` is the status on the day of the
    refresh except that "overdue" is never stored: a required row ``not_started`` whose
    ``window_end`` has passed is overdue (the worklist asks the database).
    """

    trial = models.ForeignKey("randomization.Trial", on_delete=models.CASCADE, related_name="+")
    participant = models.ForeignKey(
        "cohort.Participant", on_delete=models.CASCADE, related_name="form_expectations"
    )
    site = models.ForeignKey("core.Site", on_delete=models.CASCADE, related_name="+")
    form_code = models.SlugField(max_length=40)
    occurrence = models.CharField(max_length=20)
    window_start = models.DateField(null=True, blank=True)
    window_end = models.DateField(null=True, blank=True)
    required = models.BooleanField(default=True)
    status = models.CharField(max_length=20)
    # the record of this form and occurrence, when there is one: the form grid reads the
    # whole grid (statuses, windows, records) in one query
    record = models.ForeignKey(
        ClinicalRecord, on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    refreshed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "trial", "form_code", "occurrence"],
                name="formexpectation_unique",
            ),
        ]
        ordering = ["participant", "id"]
        indexes = [
            models.Index(fields=["participant", "trial"], name="formexpectation_grid"),
            # a site's overdue forms, oldest window first
            models.Index(
                fields=["site", "window_end", "id"],
                name="formexpectation_due",
                condition=Q(status="not_started", required=True),
            ),
            models.Index(
                fields=["window_end", "id"],
                name="formexpectation_due_all",
                condition=Q(status="not_started", required=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.form_code} {self.occurrence} expected of {self.participant_id}"


# --------------------------------------------------------------------------- data review: queries


class QueryStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ANSWERED = "answered", _("Answered")
    CLOSED = "closed", _("Closed")


class QueryOrigin(models.TextChoices):
    CHECK = "check", _("Edit check")
    MANUAL = "manual", _("Raised by a reviewer")


@track()
class DataQuery(models.Model):
    """A question about one item (or the whole record, ``item`` empty) of a clinical record.

    Automatic queries come from the definition's edit checks (``check_name``) and open and
    close with the data; manual ones are raised by a monitor or data manager and answered
    by the site. Queries never change data themselves. The thread is
    :class:`QueryMessage`; both are audited and never deleted.
    """

    audit_site_path = "record__participant__site"

    record = models.ForeignKey(ClinicalRecord, on_delete=models.PROTECT, related_name="queries")
    item = models.CharField(_("item"), max_length=120, blank=True)
    origin = models.CharField(_("origin"), max_length=10, choices=QueryOrigin.choices)
    check_name = models.CharField(_("edit check"), max_length=60, blank=True)
    text = models.TextField(_("question"), max_length=2000)
    suggested_value = models.JSONField(_("suggested value"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=QueryStatus.choices, default=QueryStatus.OPEN
    )
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    raised_at = models.DateTimeField(_("raised at"), default=timezone.now)
    updated_at = models.DateTimeField(_("last changed at"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        ordering = ["raised_at", "pk"]
        verbose_name = _("query")
        verbose_name_plural = _("queries")
        constraints = [
            # one open automatic query per check and item: a re-run never duplicates one
            models.UniqueConstraint(
                fields=["record", "check_name", "item"],
                condition=Q(origin="check") & ~Q(status="closed"),
                name="dataquery_one_open_per_check_item",
            ),
            models.CheckConstraint(
                condition=~Q(origin="check") | ~Q(check_name=""), name="dataquery_check_named"
            ),
            models.CheckConstraint(
                condition=~Q(origin="manual") | Q(raised_by__isnull=False),
                name="dataquery_manual_has_raiser",
            ),
            models.CheckConstraint(
                condition=~Q(status="closed") | Q(closed_at__isnull=False),
                name="dataquery_closed_at",
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "raised_at"],
                name="dataquery_unresolved",
                condition=~Q(status="closed"),
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"query {self.pk} on {self.record_id} {self.item}"


class QueryAction(models.TextChoices):
    RAISE = "raise", _("Raised")
    ANSWER = "answer", _("Answered")
    CLOSE = "close", _("Closed")
    REOPEN = "reopen", _("Re-opened")
    RESOLVED = "resolved", _("Resolved by a data change")


@track()
class QueryMessage(models.Model):
    """One step of a query's thread: who did what, when, with what text."""

    audit_site_path = "query__record__participant__site"

    query = models.ForeignKey(DataQuery, on_delete=models.PROTECT, related_name="messages")
    action = models.CharField(_("action"), max_length=10, choices=QueryAction.choices)
    text = models.TextField(_("text"), max_length=2000, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("query message")
        verbose_name_plural = _("query messages")
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.action} on query {self.query_id}"


# --------------------------------------------------------------------------- data review: e-signatures


@track()
class ESignature(models.Model):
    """An investigator's electronic signature (21 CFR 11.50) of one completed record, or of
    a participant's whole casebook (``record`` empty): who (printed name and role), when,
    the meaning of the signature, and the SHA-256 of what was signed (the data with the
    definition version). A later change of the signed data invalidates it, visibly and with
    who and when; the signature row itself is never deleted."""

    audit_site_path = "participant__site"

    participant = models.ForeignKey(
        "cohort.Participant", on_delete=models.PROTECT, related_name="signatures"
    )
    record = models.ForeignKey(
        ClinicalRecord, on_delete=models.PROTECT, related_name="signatures", null=True, blank=True
    )
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    printed_name = models.CharField(_("printed name"), max_length=200)
    role = models.CharField(_("role"), max_length=30)
    meaning = models.TextField(_("meaning of the signature"), max_length=500)
    signed_at = models.DateTimeField(_("signed at"), default=timezone.now)
    sha256 = models.CharField(_("SHA-256 of the signed data"), max_length=64)
    revision = models.PositiveIntegerField(_("record revision signed"), null=True, blank=True)
    invalidated_at = models.DateTimeField(_("invalidated at"), null=True, blank=True)
    invalidated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    invalidated_reason = models.CharField(_("invalidated by"), max_length=300, blank=True)

    class Meta:
        ordering = ["signed_at", "pk"]
        verbose_name = _("electronic signature")
        verbose_name_plural = _("electronic signatures")
        constraints = [
            models.UniqueConstraint(
                fields=["record"],
                condition=Q(invalidated_at__isnull=True, record__isnull=False),
                name="esignature_one_valid_per_record",
            ),
            models.UniqueConstraint(
                fields=["participant"],
                condition=Q(invalidated_at__isnull=True, record__isnull=True),
                name="esignature_one_valid_casebook",
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"signature {self.pk} by {self.signed_by_id}"

    @property
    def is_valid(self) -> bool:
        return self.invalidated_at is None


# --------------------------------------------------------------------------- data review: locks


class LockLevel(models.TextChoices):
    RECORD = "record", _("Form")
    PARTICIPANT = "participant", _("Participant")
    TRIAL = "trial", _("Whole trial")


@track()
class DataLock(models.Model):
    """A data manager's lock: one record, a participant's casebook, or the whole trial
    (before analysis) becomes read-only for every write path (the record services refuse).
    Unlocking needs a reason; the row stays with who, when and why (never deleted).
    Audit scope: a record or casebook lock belongs to its participant's site; a whole-trial
    lock (no participant) is read by sponsor-wide reviewers only."""

    audit_site_path = "participant__site"

    level = models.CharField(_("level"), max_length=12, choices=LockLevel.choices)
    trial = models.ForeignKey("randomization.Trial", on_delete=models.PROTECT, related_name="+")
    participant = models.ForeignKey(
        "cohort.Participant", on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    record = models.ForeignKey(
        ClinicalRecord, on_delete=models.PROTECT, related_name="locks", null=True, blank=True
    )
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    locked_at = models.DateTimeField(_("locked at"), default=timezone.now)
    lock_reason = models.CharField(_("reason for the lock"), max_length=300, blank=True)
    unlocked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    unlocked_at = models.DateTimeField(_("unlocked at"), null=True, blank=True)
    unlock_reason = models.CharField(_("reason for unlocking"), max_length=300, blank=True)

    class Meta:
        ordering = ["-locked_at", "-pk"]
        verbose_name = _("data lock")
        verbose_name_plural = _("data locks")
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(level="record", record__isnull=False, participant__isnull=False)
                    | Q(level="participant", record__isnull=True, participant__isnull=False)
                    | Q(level="trial", record__isnull=True, participant__isnull=True)
                ),
                name="datalock_level_target",
            ),
            models.CheckConstraint(
                condition=Q(unlocked_at__isnull=True) | ~Q(unlock_reason=""),
                name="datalock_unlock_reason",
            ),
            models.UniqueConstraint(
                fields=["level", "trial", "participant", "record"],
                condition=Q(unlocked_at__isnull=True),
                nulls_distinct=False,
                name="datalock_one_active_per_target",
            ),
        ]
        indexes = [
            models.Index(
                fields=["trial", "participant"],
                name="datalock_active",
                condition=Q(unlocked_at__isnull=True),
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.level} lock {self.pk}"


# --------------------------------------------------------------------------- data review: SDV


@track()
class SourceVerification(models.Model):
    """A monitor's mark that one item of a record was checked against the source documents
    (source data verification). A later change of that item clears the mark (``cleared_at``,
    with the change's author) and lists the item for re-verification; marks of the other
    items stay. Never deleted."""

    audit_site_path = "record__participant__site"

    record = models.ForeignKey(
        ClinicalRecord, on_delete=models.PROTECT, related_name="verifications"
    )
    item = models.CharField(_("item"), max_length=120)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(_("verified at"), default=timezone.now)
    revision = models.PositiveIntegerField(_("record revision verified"))
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    class Meta:
        ordering = ["record", "item", "verified_at"]
        verbose_name = _("source data verification")
        verbose_name_plural = _("source data verifications")
        constraints = [
            models.UniqueConstraint(
                fields=["record", "item"],
                condition=Q(cleared_at__isnull=True),
                name="sdv_one_current_mark_per_item",
            ),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"SDV of {self.item} on {self.record_id}"


class RecheckStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class RecheckRun(models.Model):
    """One re-run of the edit checks after a rule change (``manage.py crf_recheck`` or a data
    manager's re-check screen through Celery): who asked, for which form, its progress
    (records done of total, updated after each batch, so a page can show a progress bar
    without a Celery result backend) and the counts it ended with. The queries it opens
    and closes are on their own audit trail; this row is the job's log and is never
    deleted."""

    form_code = models.CharField(_("form"), max_length=60, blank=True)  # "": every form
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=RecheckStatus.choices, default=RecheckStatus.QUEUED
    )
    done = models.PositiveIntegerField(_("records done"), default=0)
    total = models.PositiveIntegerField(_("records to check"), null=True, blank=True)
    opened = models.PositiveIntegerField(_("queries opened"), default=0)
    closed = models.PositiveIntegerField(_("queries closed"), default=0)
    error = models.CharField(_("error"), max_length=500, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        triggers = [NO_DELETE]
        constraints = [
            models.CheckConstraint(
                condition=Q(total__isnull=True) | Q(done__lte=models.F("total")),
                name="recheckrun_done_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"recheck {self.form_code or 'all'} {self.status}"

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.status == RecheckStatus.DONE else 0
        return round(100 * self.done / self.total)
