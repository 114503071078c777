"""Reads for questionnaire screens and APIs, with access control (core.access)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import Case, Prefetch, Q, QuerySet, When
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from cohort.models import Participant
from core.access import DATA_ENTRY, SITE_STAFF, access_for, require_write
from core.pagination import CappedCount, count_capped
from crf import expected, instruments
from crf.computed import as_date
from crf.definition_store import definition_of
from crf.expected import Expected
from crf.instruments import Instrument
from crf.models import (
    ACTIVE_STATUSES,
    ANSWERABLE_STATUSES,
    ClinicalRecord,
    DataQuery,
    FormExpectation,
    InstrumentResponse,
    QueryMessage,
    Questionnaire,
    QuestionnaireLink,
    QuestionnaireStatus,
    RecordStatus,
    SourceVerification,
    Timepoint,
)
from randomization.models import Allocation, AllocationStatus, Decision
from randomization.selectors import death_date

if TYPE_CHECKING:  # pragma: no cover
    from core.hooks import Finding
    from core.models import User

S = QuestionnaireStatus
# Scores shown in the nurse panel, per instrument (the full set is on the detail page).
HEADLINE_SCORES = {
    "c15pal": ["PF2", "QL"],
    "pain": ["worst", "average", "interference", "omed"],
    "eq5d5l": ["index", "vas"],
}


# --- patient links -----------------------------------------------------------------------------
def questionnaire_for_token(token: str, at: datetime | None = None) -> Questionnaire | None:
    """The questionnaire a link opens, or None for a forged, expired, used or stopped link.

    The caller shows the same neutral page for every None, whatever the cause.
    """
    from crf.services import token_hash

    if not token or len(token) > 100:
        return None
    at = at or timezone.now()
    link = (
        QuestionnaireLink.objects.select_related(
            "questionnaire__timepoint", "questionnaire__participant__identity"
        )
        .filter(token_hash=token_hash(token))
        .first()
    )
    if link is None or link.expires_at <= at:
        return None
    q = link.questionnaire
    if q.status not in ANSWERABLE_STATUSES or q.closes_at <= at:
        return None
    return q


def token_completed(token: str) -> bool:
    """True when ``token`` is a real link of a questionnaire already completed online
    (used only to make a repeated final submit land on the thank-you page)."""
    from crf.services import token_hash

    if not token or len(token) > 100:
        return False
    return QuestionnaireLink.objects.filter(
        token_hash=token_hash(token), questionnaire__status=S.COMPLETED
    ).exists()


def patient_language(q: Questionnaire) -> str:
    identity = getattr(q.participant, "identity", None)
    return "en" if getattr(identity, "preferred_language", "nl") == "en" else "nl"


# --- staff ----------------------------------------------------------------------------------------
def _readable(user: User) -> QuerySet[Questionnaire]:
    return access_for(user).scope(
        Questionnaire.objects.all(), site_field="participant__site", roles=SITE_STAFF
    )


def questionnaire_get(*, user: User, pk: int, for_write: bool = False) -> Questionnaire:
    """One questionnaire the user may read (404 otherwise); with ``for_write`` also enter."""
    q = (
        _readable(user)
        .select_related("participant", "timepoint", "trial", "entered_by")
        .prefetch_related(Prefetch("responses", queryset=InstrumentResponse.objects.order_by("pk")))
        .filter(pk=pk)
        .first()
    )
    if q is None:
        raise Http404
    if for_write:
        require_write(user, q.participant.site_id)  # 403, as the services check again
    return q


def _decimals(code: str) -> dict[str, int]:
    from crf import scoring

    return {info.code: info.decimals for info in scoring.scale_info(code)}


def headline_scores(q: Questionnaire) -> list[tuple[str, Any, int]]:
    """``(key, value, decimals)`` of the panel's scores; each shown with its precision."""
    out = []
    for code in q.timepoint.instruments:
        values = (q.scores or {}).get(code) or {}
        decimals = _decimals(code) if code in HEADLINE_SCORES else {}
        for key in HEADLINE_SCORES.get(code, []):
            if values.get(key) is not None:
                out.append((key, values[key], decimals.get(key, 1)))
    return out


def score_rows(code: str, scores: dict[str, Any] | None, language: str) -> list[dict[str, Any]]:
    """The score table of one instrument: every scale in the instrument's order, with its
    name, abbreviation, value (None = not scoreable) and display precision. A stored key
    the current scale list does not know (an older version) follows at the end."""
    from crf import scoring

    scores = scores or {}
    if not scores:
        return []
    rows = [
        {
            "key": info.code,
            "label": info.label.in_language(language),
            "value": scores.get(info.code),
            "decimals": info.decimals,
        }
        for info in scoring.scale_info(code)
    ]
    known = {row["key"] for row in rows}
    rows += [
        {"key": key, "label": key, "value": value, "decimals": 1}
        for key, value in scores.items()
        if key not in known
    ]
    return rows


def participant_panel(*, user: User, participant: Participant) -> dict[str, Any] | None:
    """The questionnaire panel of the participant page (``core.hooks.participant_panels``)."""
    access = access_for(user)
    if not access.can_read_site(participant.site_id, roles=SITE_STAFF):
        return None
    rows = list(
        Questionnaire.objects.filter(participant=participant)
        .select_related("timepoint", "trial")
        .order_by("trial__code", "opens_at")
    )
    if not rows:
        return None
    now = timezone.now()
    timeline: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for q in rows:
        items.append(
            {
                "q": q,
                "scores": headline_scores(q),
                "overdue": q.is_overdue(now),
            }
        )
        # Timeline entries: {"on": moment or date, "recorded_at": when recorded, "text": ...}.
        if q.sent_at:
            timeline.append(
                {
                    "on": q.sent_at,
                    "recorded_at": q.sent_at,
                    "text": _("Questionnaire %(tp)s sent") % {"tp": q.timepoint.label},
                }
            )
        if q.completed_on:
            timeline.append(
                {
                    # the moment when known (online, or a time entered), else the date alone
                    "on": q.completed_at or q.completed_on,
                    "recorded_at": q.completion_recorded_at or q.completed_at or q.created_at,
                    "text": _("Questionnaire %(tp)s completed") % {"tp": q.timepoint.label},
                }
            )
    return {
        "template": "crf/_participant_panel.html",
        "context": {
            "questionnaire_rows": items,
            "can_enter": access.can_write_site(participant.site_id),
        },
        "timeline": timeline,
        "banner": None,
    }


WORKLIST_BUCKETS = ("open", "overdue", "failed")


def worklist(
    *, user: User, bucket: str = "open", site_id: int | None = None, at: datetime | None = None
) -> QuerySet[Questionnaire]:
    """Questionnaires needing attention at the user's sites.

    - ``open``: the window is open and no answer is in (including invitations waiting
      for contact hours or without an email address);
    - ``overdue``: past the due day, window still open, no answer;
    - ``failed``: the invitation could not be sent after every retry.
    """
    at = at or timezone.now()
    qs = access_for(user).scope(
        Questionnaire.objects.all(),
        site_field="participant__site",
        roles=DATA_ENTRY | {"data_manager"},
    )
    if bucket == "failed":
        qs = qs.filter(status=S.FAILED)
    elif bucket == "overdue":
        qs = qs.filter(status__in=ACTIVE_STATUSES, due_at__lte=at, closes_at__gt=at)
    else:
        qs = qs.filter(Q(status__in=ACTIVE_STATUSES, opens_at__lte=at, closes_at__gt=at))
    if site_id:
        qs = qs.filter(participant__site_id=site_id)
    # closing soonest first; the partial indexes q_worklist_active / q_worklist_failed
    # serve the order (keyset pages, core.pagination)
    return qs.select_related("participant__site", "timepoint", "trial").order_by("closes_at", "pk")


def worklist_counts(*, user: User, at: datetime | None = None) -> dict[str, CappedCount]:
    """Rows per bucket, each counted up to ``core.pagination.COUNT_CAP`` (then "more than"):
    reading at most that many index entries, however many questionnaires are open."""
    return {b: count_capped(worklist(user=user, bucket=b, at=at)) for b in WORKLIST_BUCKETS}


# --- API ------------------------------------------------------------------------------------------
def participant_questionnaires(
    *, user: User, study_number: str
) -> tuple[Participant, QuerySet[Questionnaire]]:
    """The questionnaires of one participant the user may read (404 when not visible)."""
    participant = (
        access_for(user)
        .scope(Participant.objects.all(), site_field="site")
        .filter(study_number=study_number)
        .first()
    )
    if participant is None:
        raise Http404
    qs = (
        Questionnaire.objects.filter(participant=participant)
        .select_related("timepoint", "trial")
        .prefetch_related(Prefetch("responses", queryset=InstrumentResponse.objects.order_by("pk")))
        .order_by("trial__code", "opens_at")
    )
    return participant, qs


# --- hook subscribers (registered in crf/apps.py) -------------------------------------------
def participant_records_after(
    *, participant: Participant, after: date, activities: frozenset[str]
) -> list[Finding]:
    """``core.hooks.participant_records_after``: questionnaires completed after ``after``
    (when questionnaires are among the stopped ``activities``), named for the nurse."""
    from core import hooks

    if hooks.QUESTIONNAIRES not in activities:
        return []
    findings: list[Finding] = []
    done = Questionnaire.objects.filter(
        participant=participant, status=S.COMPLETED, completed_on__gt=after
    ).select_related("timepoint", "trial")
    for q in done.order_by("completed_on", "pk"):
        findings.append(
            hooks.Finding(
                kind="questionnaire_completed",
                text=_("questionnaire %(tp)s (%(trial)s) completed on %(date)s")
                % {"tp": q.timepoint.label, "trial": q.trial.code, "date": q.completed_on},
                on=q.completed_on,
            )
        )
    return findings


# --- clinical records -------------------------------------------------------------------------
@dataclass(frozen=True)
class FormCell:
    """One expected form (and occurrence) of a participant, with its record if any."""

    form_code: str
    occurrence: str | None  # None: "add another" of an event or log form
    status: str  # crf.expected.STATUSES
    required: bool
    occurs: str
    window_start: date | None
    window_end: date | None
    record: ClinicalRecord | None

    @property
    def title(self) -> str:
        return instruments.load(self.form_code).title.in_language(get_language())


def _allocation_for(participant: Participant) -> Allocation | None:
    """The participant's trial allocation (the active one first): what clinical forms hang on."""
    return (
        Allocation.objects.select_related("arm", "offer", "participant", "trial")
        .filter(participant=participant)
        .order_by(Case(When(status=AllocationStatus.ACTIVE, then=0), default=1), "-randomised_at")
        .first()
    )


def _surgery_on(records: list[ClinicalRecord]) -> date | None:
    days = [
        as_date(str(r.data.get("started_at", ""))[:10])
        for r in records
        if r.form_code == "surgery" and r.status != RecordStatus.VOIDED and r.data.get("started_at")
    ]
    found = [d for d in days if d is not None]
    return min(found) if found else None


def _expected(
    allocation: Allocation, records: list[ClinicalRecord], *, today: date | None = None
) -> list[Expected]:
    refused = (
        getattr(allocation, "offer", None) is not None
        and allocation.offer.decision == Decision.REFUSED
    )
    arm = "intervention" if allocation.arm.is_intervention else "control"
    if allocation.status != AllocationStatus.ACTIVE:
        return []
    return expected.expected_forms(
        arm=arm,
        refused=refused and arm == "intervention",
        day0=allocation.day0,
        surgery_on=_surgery_on(records),
        died_on=death_date(participant_id=allocation.participant_id),
        today=today or timezone.localdate(),
        records=[(r.form_code, r.occurrence, r.status) for r in records],
        timepoints=expected.timepoint_windows(
            Timepoint.objects.filter(trial_id=allocation.trial_id, is_active=True).only(
                "code", "day_offset", "window_before", "window_after"
            )
        ),
    )


def _records_of(allocation: Allocation) -> list[ClinicalRecord]:
    return list(
        ClinicalRecord.objects.filter(
            participant_id=allocation.participant_id, trial_id=allocation.trial_id
        )
        .select_related("updated_by")
        .order_by("form_code", "pk")
    )


def expected_for(
    *,
    allocation: Allocation,
    today: date | None = None,
    records: list[ClinicalRecord] | None = None,
) -> list[Expected]:
    """The expected forms of one allocated participant (no access check: for services);
    ``records``: the participant's records when the caller has read them already."""
    return _expected(
        allocation, _records_of(allocation) if records is None else records, today=today
    )


def records_of(*, allocation: Allocation) -> list[ClinicalRecord]:
    """The participant's clinical records in the allocation's trial (no access check)."""
    return _records_of(allocation)


def form_cells(*, allocation: Allocation, today: date | None = None) -> list[FormCell]:
    """Every expected form with its record, in the order of :data:`crf.expected.RULES`,
    plus records the rules would not expect (data is never hidden)."""
    records = _records_of(allocation)
    by_key = {(r.form_code, r.occurrence): r for r in records}
    cells = []
    for row in _expected(allocation, records, today=today):
        cells.append(
            FormCell(
                form_code=row.form_code,
                occurrence=row.occurrence,
                status=row.status,
                required=row.required,
                occurs=row.occurs,
                window_start=row.window.start,
                window_end=row.window.end,
                record=by_key.pop((row.form_code, row.occurrence), None)
                if row.occurrence
                else None,
            )
        )
    for record in by_key.values():  # e.g. after a correction in error: still shown
        cells.append(
            FormCell(
                form_code=record.form_code,
                occurrence=record.occurrence,
                status="voided" if record.status == RecordStatus.VOIDED else record.status,
                required=False,
                occurs=expected.rule_for(record.form_code).occurs,
                window_start=None,
                window_end=None,
                record=record,
            )
        )
    return cells


def _readable_participant(user: User, study_number: str) -> Participant:
    participant = (
        access_for(user)
        .scope(Participant.objects.select_related("site"), site_field="site")
        .filter(study_number=study_number)
        .first()
    )
    if participant is None:
        raise Http404
    return participant


def participant_allocation(*, user: User, study_number: str) -> tuple[Participant, Allocation]:
    """A participant the user may read (clinical readers of its site; statisticians) and
    the allocation its forms hang on; 404 when not visible or not randomised."""
    participant = _readable_participant(user, study_number)
    allocation = _allocation_for(participant)
    if allocation is None:
        raise Http404
    return participant, allocation


def clinical_records(
    *, user: User, study_number: str, form_code: str
) -> tuple[Allocation, QuerySet[ClinicalRecord]]:
    """The records of one form of a participant the user may read (404 otherwise)."""
    _participant, allocation = participant_allocation(user=user, study_number=study_number)
    if form_code not in expected.FORM_CODES:
        raise Http404
    qs = (
        ClinicalRecord.objects.filter(
            participant_id=allocation.participant_id,
            trial_id=allocation.trial_id,
            form_code=form_code,
        )
        .select_related("definition", "updated_by", "created_by", "participant")
        # the list needs the definition's code and version, not its whole content per row
        .defer("definition__content")
        .annotate(**review_annotations())
        .order_by("pk")
    )
    return allocation, qs


def clinical_record_get(
    *, user: User, pk: int, for_write: bool = False, study_number: str | None = None
) -> ClinicalRecord:
    """One record the user may read (or, ``for_write``, write); 404 when not visible (a
    nurse of another site learns nothing), 403 when visible but not writable."""
    qs = access_for(user).scope(
        ClinicalRecord.objects.select_related(
            "definition", "updated_by", "created_by", "participant__site", "trial"
        ),
        site_field="participant__site",
    )
    if study_number is not None:
        qs = qs.filter(participant__study_number=study_number)
    record = qs.filter(pk=pk).first()
    if record is None:
        raise Http404
    if for_write:
        require_write(user, record.participant.site_id)
    return record


def identifying_items(definition: Instrument) -> set[str]:
    """Free-text items marked as possibly identifying (``identifying_risk``), also inside
    repeat groups (``<item>.<field>``)."""
    found = set()
    for item in definition.items:
        if item.identifying_risk:
            found.add(item.code)
        for sub in item.items:
            if sub.identifying_risk:
                found.add(f"{item.code}.{sub.code}")
    return found


def record_data_for(user: User, record: ClinicalRecord) -> dict[str, Any]:
    """The record's data as ``user`` may read it: pseudonymised readers (statisticians,
    staff without a role at the participant's site) get possibly identifying free texts
    withheld (the key is kept with the value ``None`` so they know it exists)."""
    data = dict(record.data)
    if access_for(user).can_see_identifying(record.participant.site_id):
        return data
    hidden = identifying_items(definition_of(record.definition))
    for name in hidden:
        if "." in name:
            item, field = name.split(".", 1)
            rows = data.get(item)
            if isinstance(rows, list):
                data[item] = [
                    {**row, field: None} if isinstance(row, dict) and field in row else row
                    for row in rows
                ]
        elif name in data:
            data[name] = None
    return data


FORM_WORKLIST_BUCKETS = ("overdue_forms", "draft_forms")


def forms_worklist(
    *,
    user: User,
    bucket: str = "overdue_forms",
    site_id: int | None = None,
    today: date | None = None,
) -> QuerySet[Any]:
    """Clinical forms needing attention at the user's sites:

    - ``overdue_forms``: expected, required, not started, window closed before today
      (:class:`crf.models.FormExpectation`, oldest window first);
    - ``draft_forms``: started but not completed (:class:`crf.models.ClinicalRecord`
      drafts, longest untouched first).
    """
    access = access_for(user)
    roles = DATA_ENTRY | {"data_manager"}
    if bucket == "draft_forms":
        drafts = access.scope(
            ClinicalRecord.objects.filter(status=RecordStatus.DRAFT),
            site_field="participant__site",
            roles=roles,
        )
        if site_id:
            drafts = drafts.filter(participant__site_id=site_id)
        return drafts.select_related("participant__site", "updated_by").order_by("updated_at", "pk")
    today = today or timezone.localdate()
    rows = access.scope(
        FormExpectation.objects.filter(status="not_started", required=True, window_end__lt=today),
        site_field="site",
        roles=roles,
    )
    if site_id:
        rows = rows.filter(site_id=site_id)
    return rows.select_related("participant", "site").order_by("window_end", "id")


# --- data review: the context the edit checks see -----------------------------------------------
def record_context(
    *, allocation: Allocation, records: list[ClinicalRecord] | None = None
) -> dict[str, Any]:
    """The read-only facts a record's edit checks compare with (crf.computed.CHECKS): arm,
    TwiCs refusal, day 0 and randomisation date, year of birth, date of death (key present,
    ``None`` when alive), consent to randomisation (c), end of study, the first surgery day,
    the SBRT start times, the baseline ASIA grade and whether a grade 5 adverse event is
    recorded. Voided records count for nothing."""
    from cohort.models import ConsentElement, ConsentRecord

    records = _records_of(allocation) if records is None else records
    live = [r for r in records if r.status != RecordStatus.VOIDED]
    refused = (
        getattr(allocation, "offer", None) is not None
        and allocation.offer.decision == Decision.REFUSED
    )
    consented_on = (
        ConsentRecord.objects.current()
        .filter(
            participant_id=allocation.participant_id,
            element=ConsentElement.RANDOMISATION_OFFER,
            answer=True,
        )
        .order_by("given_on")
        .values_list("given_on", flat=True)
        .first()
    )
    end = next((r for r in live if r.form_code == "end_of_study"), None)
    baseline = next((r for r in live if r.form_code == "baseline_clinical"), None)
    return {
        "arm": "intervention" if allocation.arm.is_intervention else "control",
        "refused": refused,
        "day0": allocation.day0,
        "randomised_on": timezone.localdate(allocation.randomised_at),
        "born_year": allocation.participant.year_of_birth,
        "died_on": death_date(participant_id=allocation.participant_id),
        "consented_on": consented_on,
        "ended_on": as_date(end.data.get("ended_on")) if end else None,
        "surgery_on": _surgery_on(live),
        "sbrt_started": sorted(
            str(r.data["started_at"])
            for r in live
            if r.form_code == "sbrt_delivery" and r.data.get("started_at")
        ),
        "baseline_asia": baseline.data.get("asia") if baseline else None,
        "fatal_ae": any(r.form_code == "adverse_event" and r.data.get("grade") == 5 for r in live),
    }


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a record's history as a monitor reads it."""

    at: datetime
    kind: str  # change | signature | signature_invalidated | verification | query
    user: str
    text: str
    changes: dict[str, tuple[Any, Any]]


def record_history(*, user: User, record: ClinicalRecord) -> list[HistoryEntry]:
    """Everything that happened to a record, oldest first: its changes (item by item, with
    the reason), signatures and their invalidation, verifications and query steps. Empty
    for a user who may not read the record's audit trail (core.selectors rules)."""
    from core.selectors import audit_trail_for

    trail = audit_trail_for(user=user, model=ClinicalRecord, pk=record.pk)
    if not trail:
        return []
    entries = [
        HistoryEntry(
            at=e.at,
            kind="change",
            user=e.user or e.actor,
            text=e.reason,
            changes={k: v for k, v in e.changes.items() if k.startswith("data.") or k == "status"},
        )
        for e in trail
    ]
    for signature in record.signatures.select_related("signed_by", "invalidated_by"):
        entries.append(
            HistoryEntry(
                signature.signed_at, "signature", signature.printed_name, signature.meaning, {}
            )
        )
        if signature.invalidated_at:
            entries.append(
                HistoryEntry(
                    signature.invalidated_at,
                    "signature_invalidated",
                    str(signature.invalidated_by or ""),
                    signature.invalidated_reason,
                    {},
                )
            )
    for mark in record.verifications.select_related("verified_by"):
        entries.append(
            HistoryEntry(mark.verified_at, "verification", str(mark.verified_by), mark.item, {})
        )
    for message in QueryMessage.objects.filter(query__record=record).select_related("by", "query"):
        entries.append(
            HistoryEntry(
                message.at,
                "query",
                str(message.by or ""),
                f"{message.get_action_display()}: {message.query.item or '—'}: {message.text}",
                {},
            )
        )
    return sorted(entries, key=lambda e: e.at)


# --- data review worklists ------------------------------------------------------------------------
def records_to_sign(*, user: User) -> QuerySet[ClinicalRecord]:
    """Completed records at the sites where the user is an investigator, without a valid
    signature (a signature invalidated by a change puts the record back on this list)."""
    sites = {g.site_id for g in access_for(user).grants if g.role == "investigator" and g.site_id}
    return (
        ClinicalRecord.objects.filter(participant__site_id__in=sites, status=RecordStatus.COMPLETE)
        .exclude(signatures__invalidated_at__isnull=True, signatures__record__isnull=False)
        .select_related("participant", "definition")
        .order_by("completed_at", "pk")
    )


QUERY_FILTERS = ("status", "form_code", "raised_by", "site_id")


def query_worklist(
    *,
    user: User,
    status: str | None = None,
    form_code: str | None = None,
    raised_by: int | None = None,
    site_id: int | None = None,
) -> QuerySet[DataQuery]:
    """Queries at the user's sites (site staff and monitors), unresolved first by default;
    filters by status, form, raiser and site. Each row carries its age (``age``, a
    duration since it was raised; ``age.days`` in days)."""
    from django.db.models import DurationField, ExpressionWrapper, F
    from django.db.models.functions import Now

    qs = access_for(user).scope(
        DataQuery.objects.all(), site_field="record__participant__site", roles=SITE_STAFF
    )
    qs = qs.filter(status=status) if status else qs.exclude(status="closed")
    if form_code:
        qs = qs.filter(record__form_code=form_code)
    if raised_by:
        qs = qs.filter(raised_by_id=raised_by)
    if site_id:
        qs = qs.filter(record__participant__site_id=site_id)
    return (
        qs.annotate(age=ExpressionWrapper(Now() - F("raised_at"), output_field=DurationField()))
        .select_related("record__participant__site", "raised_by")
        .order_by("raised_at", "pk")
    )


def sdv_progress(*, user: User) -> list[dict[str, Any]]:
    """Per site and form: completed records, and how many have every key item verified."""
    from django.db.models import Count, Exists, OuterRef

    rows = []
    completed = access_for(user).scope(
        ClinicalRecord.objects.filter(status=RecordStatus.COMPLETE),
        site_field="participant__site",
        roles=SITE_STAFF,
    )
    key_items = {code: list(instruments.load(code).sdv) for code in expected.FORM_CODES}
    for code, items in key_items.items():
        if not items:
            continue
        verified = completed.filter(form_code=code)
        for name in items:
            verified = verified.filter(
                Exists(
                    SourceVerification.objects.filter(
                        record=OuterRef("pk"), item=name, cleared_at__isnull=True
                    )
                )
            )
        totals = dict(
            completed.filter(form_code=code)
            .values_list("participant__site__code")
            .annotate(n=Count("pk"))
            .values_list("participant__site__code", "n")
        )
        done = dict(
            verified.values_list("participant__site__code")
            .annotate(n=Count("pk"))
            .values_list("participant__site__code", "n")
        )
        for site_code, total in sorted(totals.items()):
            rows.append(
                {
                    "site": site_code,
                    "form_code": code,
                    "complete": total,
                    "verified": done.get(site_code, 0),
                }
            )
    return rows


# --- the review state of a record (queries, signature, lock, source verification) ------------
@dataclass(frozen=True)
class ReviewState:
    """What review has done to one record, read with the record (annotations of
    :func:`review_annotations`, no query per record): its unresolved queries (open or
    answered), the valid signature or the last invalidated one, the lock that applies (the
    record's, the participant's or the whole trial's) and the items verified against the
    source, with the definition's key items (``sdv``) still to verify."""

    open_queries: int
    signature: dict[str, Any] | None  # valid: signed_by, printed_name, signed_at, meaning
    invalidated: dict[str, Any] | None  # the last invalidated one, when none is valid
    lock: dict[str, Any] | None  # level, locked_by, locked_at
    verified: tuple[str, ...]
    key_items: tuple[str, ...]

    @property
    def signed(self) -> bool:
        return self.signature is not None

    @property
    def locked(self) -> bool:
        return self.lock is not None

    @property
    def to_verify(self) -> tuple[str, ...]:
        """Key items without a current mark (never verified, or cleared by a change)."""
        return tuple(name for name in self.key_items if name not in self.verified)

    @property
    def sdv(self) -> str:
        """ "done" (every key item verified), "partial", "none", or "" (no key items)."""
        if not self.key_items:
            return ""
        if not self.to_verify:
            return "done"
        return "partial" if set(self.verified) & set(self.key_items) else "none"

    def as_dict(self) -> dict[str, Any]:
        return {
            "open_queries": self.open_queries,
            "signature": self.signature,
            "signature_invalidated": self.invalidated,
            "lock": self.lock,
            "verified_items": list(self.verified),
            "sdv_key_items": list(self.key_items),
            "sdv": self.sdv or None,
        }


@functools.lru_cache(maxsize=4)
def _review_sql(record: str, participant: str, trial: str) -> dict[str, str]:
    """The review subqueries as SQL text, built once per outer query shape (the ORM's
    version cost the participant page ~4 ms a request to build and compile)."""
    from core.models import User
    from crf.models import DataLock, DataQuery, ESignature, SourceVerification

    q, s, lk, v, u = (
        m._meta.db_table for m in (DataQuery, ESignature, DataLock, SourceVerification, User)
    )

    def signature(valid: bool) -> str:
        extra = (
            ""
            if valid
            else ", 'invalidated_at', s.invalidated_at, 'invalidated_by', iu.username,"
            " 'invalidated_reason', s.invalidated_reason"
        )
        join = "" if valid else f" LEFT JOIN {u} iu ON iu.id = s.invalidated_by_id"
        return (
            f"(SELECT jsonb_build_object('signed_by', su.username, 'printed_name', s.printed_name,"  # noqa: S608 - identifiers from the models
            f" 'signed_at', s.signed_at, 'meaning', s.meaning, 'revision', s.revision{extra})"
            f" FROM {s} s JOIN {u} su ON su.id = s.signed_by_id{join}"
            f" WHERE s.record_id = {record} AND s.invalidated_at IS {'NULL' if valid else 'NOT NULL'}"
            " ORDER BY s.signed_at DESC, s.id DESC LIMIT 1)"
        )

    return {
        "review_open_queries": (
            f"(SELECT COUNT(*) FROM {q} q WHERE q.record_id = {record} AND q.status <> 'closed')"  # noqa: S608
        ),
        "review_signature": signature(True),
        "review_invalidated": signature(False),
        "review_lock": (
            "(SELECT jsonb_build_object('level', l.level, 'locked_by', lu.username,"  # noqa: S608
            " 'locked_at', l.locked_at)"
            f" FROM {lk} l JOIN {u} lu ON lu.id = l.locked_by_id"
            f" WHERE l.trial_id = {trial} AND l.unlocked_at IS NULL AND (l.level = 'trial'"
            f" OR (l.level = 'participant' AND l.participant_id = {participant})"
            f" OR (l.level = 'record' AND l.record_id = {record}))"
            " ORDER BY CASE l.level WHEN 'trial' THEN 0 WHEN 'participant' THEN 1 ELSE 2 END,"
            " l.id LIMIT 1)"
        ),
        "review_verified": (
            f"ARRAY(SELECT v.item FROM {v} v WHERE v.record_id = {record}"  # noqa: S608
            " AND v.cleared_at IS NULL ORDER BY v.item)"
        ),
    }


def review_annotations(
    *, model: type[models.Model] = ClinicalRecord, record: str = "id"
) -> dict[str, Any]:
    """Annotations that read a record's review state inside the query that reads the record
    (correlated subqueries on indexed columns: the grid and the records list stay at a fixed
    number of queries). ``model``: the outer query's model, with ``participant_id`` and
    ``trial_id`` columns; ``record``: its column of the record's id (a row without a record
    skips the subqueries)."""
    from django.contrib.postgres.fields import ArrayField
    from django.db.models import CharField, Field, IntegerField, JSONField
    from django.db.models.expressions import RawSQL

    if record not in ("id", "record_id"):  # identifiers only, never input
        raise ValueError(f"not a record column: {record!r}")
    table = model._meta.db_table
    sql = _review_sql(
        f'"{table}"."{record}"', f'"{table}"."participant_id"', f'"{table}"."trial_id"'
    )
    fields: dict[str, Field[Any, Any]] = {
        "review_open_queries": IntegerField(),
        "review_verified": ArrayField(CharField()),
    }
    guard = "" if record == "id" else f'"{table}"."{record}" IS NOT NULL'
    return {
        name: RawSQL(  # noqa: S611 - SQL text of _review_sql, no parameters from input
            f"CASE WHEN {guard} THEN {text} END" if guard else text,
            (),
            output_field=fields.get(name, JSONField()),
        )
        for name, text in sql.items()
    }


def _with_datetimes(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON from PostgreSQL has its timestamps as text: back to datetimes."""
    from django.utils.dateparse import parse_datetime

    if value is None:
        return None
    return {
        k: parse_datetime(v) if k.endswith("_at") and isinstance(v, str) else v
        for k, v in value.items()
    }


def review_state(row: Any, form_code: str) -> ReviewState:
    """The :class:`ReviewState` of a row read with :func:`review_annotations`."""
    return ReviewState(
        open_queries=row.review_open_queries or 0,
        signature=_with_datetimes(row.review_signature),
        invalidated=None if row.review_signature else _with_datetimes(row.review_invalidated),
        lock=_with_datetimes(row.review_lock),
        verified=tuple(row.review_verified or ()),
        key_items=instruments.load(form_code).sdv,
    )


def record_review_state(record: ClinicalRecord) -> ReviewState:
    """One record's review state (one query)."""
    row = (
        ClinicalRecord.objects.filter(pk=record.pk)
        .annotate(**review_annotations())
        .only("pk", "form_code")[0]
    )
    return review_state(row, record.form_code)


@dataclass(frozen=True)
class GridCell:
    """One cell of the participant's form grid, read from the expected-forms cache."""

    form_code: str
    occurrence: str
    status: str  # as stored, "overdue" when a required form's window has passed
    required: bool
    window_start: date | None
    window_end: date | None
    record: ClinicalRecord | None
    review: ReviewState | None = None  # None: no record yet


def form_grid(*, participant: Participant, today: date | None = None) -> list[GridCell]:
    """The participant's form grid in ONE query: every expected form and occurrence with its
    status and record (crf.models.FormExpectation, kept current by the record services and
    the day 0, decision, correction and death hooks), in the order of the rules. No access
    check: the caller (a panel or view) has decided the user may read the participant."""
    today = today or timezone.localdate()
    order = {code: index for index, code in enumerate(expected.FORM_CODES)}
    rows = list(
        FormExpectation.objects.filter(participant=participant)
        .select_related("record", "record__updated_by")
        .annotate(**review_annotations(model=FormExpectation, record="record_id"))
    )
    rows.sort(
        key=lambda r: (order.get(r.form_code, len(order)), expected.occurrence_key(r.occurrence))
    )
    return [
        GridCell(
            form_code=r.form_code,
            occurrence=r.occurrence,
            status=(
                "overdue"
                if r.status == "not_started"
                and r.required
                and r.window_end is not None
                and r.window_end < today
                else r.status
            ),
            required=r.required,
            window_start=r.window_start,
            window_end=r.window_end,
            record=r.record,
            review=review_state(r, r.form_code) if r.record is not None else None,
        )
        for r in rows
    ]


# --- the nurses' form screens and the participant page's forms panel --------------------------
NEW_OCCURRENCE = "new"  # the URL segment of a new event or log entry
LOG_COLUMNS: dict[str, tuple[str, ...]] = {
    # the items a log's table on the participant page shows, in order
    "adverse_event": ("term", "grade", "onset_on", "serious"),
    "systemic_therapy": ("therapy_type", "stopped_on", "restarted_on"),
    "deviation": ("occurred_on", "deviation_type"),
}


def form_screen(
    *, user: User, study_number: str, form_code: str, occurrence: str
) -> tuple[Participant, Allocation, ClinicalRecord | None]:
    """The participant, allocation and record (``None`` when not started) of one form
    screen the user may read; 404 when the participant is not visible (a nurse of another
    site learns nothing), the form unknown, a log entry that does not exist, or an
    occurrence that is neither recorded nor expected. ``occurrence`` "new" opens a new
    entry of an event or log form."""
    participant, allocation = participant_allocation(user=user, study_number=study_number)
    if form_code not in expected.FORM_CODES:
        raise Http404
    occurs = expected.rule_for(form_code).occurs
    if occurrence == NEW_OCCURRENCE:
        if occurs not in ("per_event", "log"):
            raise Http404
        return participant, allocation, None
    record = (
        ClinicalRecord.objects.filter(
            participant_id=allocation.participant_id,
            trial_id=allocation.trial_id,
            form_code=form_code,
            occurrence=occurrence,
        )
        .select_related("definition", "updated_by")
        .first()
    )
    if record is None and not any(
        row.form_code == form_code
        and row.occurrence == occurrence
        and row.status != "not_applicable"
        for row in expected_for(allocation=allocation)
    ):
        raise Http404  # neither recorded nor expected (the rules decide, not the cache)
    if record is not None:
        record.participant = participant  # read with its site already (record_data_for)
    return participant, allocation, record


def _occurrence_label(occurrence: str) -> str:
    """ "week4" -> "week 4", "month6" -> "maand 6"; numbers as they are."""
    match = re.match(r"^(week|month)(\d+)$", occurrence)
    if match is None:
        return occurrence
    word = _("week") if match[1] == "week" else _("month")
    return f"{word} {match[2]}"


def _log_value(form_code: str, item: str, value: Any, language: str) -> str:
    from crf import codelists

    if value is None or value == "":
        return ""
    definition = instruments.load(form_code)
    field = definition.item(item)
    if field.kind == "code_list":
        term = codelists.term(field.code_list, str(value))
        return term.label if term else str(value)
    if field.kind == "yes_no":
        return _("yes") if value else _("no")
    if field.kind == "choice":
        return field.choice_label(value, language) or str(value)
    return str(value)


# The badge of each form status on the grid, the logs and the form screen: Bootstrap classes
# and the label.
FORM_STATUS_BADGES: dict[str, tuple[str, Any]] = {
    "draft": ("text-bg-warning", gettext_lazy("Draft")),
    "complete": ("text-bg-success", gettext_lazy("Complete")),
    "not_done": ("text-bg-secondary", gettext_lazy("Not done")),
    "overdue": ("text-bg-danger", gettext_lazy("Overdue")),
    "not_applicable": (
        "text-bg-light text-body-tertiary fw-normal",
        gettext_lazy("Not applicable"),
    ),
    "voided": (
        "text-bg-light text-body-tertiary text-decoration-line-through",
        gettext_lazy("Voided (made in error)"),
    ),
}
NOT_STARTED_BADGE = ("text-bg-light border border-secondary-subtle", gettext_lazy("Not started"))


def form_status_badge(status: str) -> SafeString:
    """The HTML badge of a form status (built in Python: the grid shows dozens of them and a
    template include per badge was a third of the participant page's time)."""
    css, label = FORM_STATUS_BADGES.get(status, NOT_STARTED_BADGE)
    return format_html(
        '<span class="badge crf-form-status crf-form-{} {}" data-status="{}">{}</span>',
        status,
        css,
        status,
        label,
    )


def review_marks(review: ReviewState | None) -> SafeString:
    """The review icons of a grid cell or log row (built in Python, as the status badges):
    unresolved queries with their count, signed (or a signature invalidated by a change),
    locked, verified against the source (all key items, or some)."""
    from django.utils.html import format_html_join

    if review is None:
        return SafeString("")
    marks: list[tuple[str, str, Any]] = []
    if review.open_queries:
        marks.append(
            (
                "crf-review-queries text-danger",
                "bi-chat-left-dots-fill",
                _("%(n)d unresolved queries") % {"n": review.open_queries},
            )
        )
    if review.signed:
        marks.append(("crf-review-signed text-success", "bi-pen-fill", _("Signed")))
    elif review.invalidated:
        marks.append(
            (
                "crf-review-unsigned text-warning",
                "bi-pen",
                _("Signature invalidated by a change"),
            )
        )
    if review.locked:
        marks.append(("crf-review-locked text-secondary", "bi-lock-fill", _("Locked")))
    if review.sdv == "done":
        marks.append(("crf-review-sdv text-success", "bi-check2-square", _("Source verified")))
    elif review.sdv == "partial":
        marks.append(
            ("crf-review-sdv-partial text-warning", "bi-dash-square", _("Partly source verified"))
        )
    return format_html_join(
        "",
        '<span class="{}" title="{}"><i class="bi {}" aria-hidden="true"></i>'
        '<span class="visually-hidden">{}</span>{}</span>',
        (
            (
                css,
                label,
                icon,
                label,
                format_html('<small class="ms-1">{}</small>', review.open_queries)
                if "queries" in css
                else "",
            )
            for css, icon, label in marks
        ),
    )


def _form_screen_urls(study_number: str) -> Any:
    """A function (form code, occurrence) → the form screen's URL, reversing once."""
    template = reverse("crf:form_screen", args=[study_number, "formcode0", "occurrence0"])

    def url(form_code: str, occurrence: str) -> str:
        return template.replace("formcode0", form_code).replace("occurrence0", occurrence)

    return url


def forms_panel(*, user: User, participant: Participant) -> dict[str, Any] | None:
    """The clinical forms panel of the participant page (``core.hooks.participant_panels``):
    the form grid (every expected form and occurrence with its status, read in ONE query by
    :func:`form_grid`) and the logs (adverse events, systemic therapy, protocol deviations)
    as tables. None for a participant without expected forms (not randomised)."""
    access = access_for(user)
    if not access.can_read_site(participant.site_id, roles=SITE_STAFF):
        return None
    cells = form_grid(participant=participant)
    pending = False
    if not cells:
        # nothing cached yet: no record and no day 0. A randomised participant still gets
        # the baseline form and the logs (the full grid follows from day 0).
        allocation = _allocation_for(participant)
        if allocation is None or allocation.status != AllocationStatus.ACTIVE:
            return None
        pending = True
        cells = [
            GridCell("baseline_clinical", "1", "not_started", True, None, None, None),
        ]
    language = get_language() or "nl"
    forms: dict[str, dict[str, Any]] = {}
    logs: dict[str, dict[str, Any]] = {
        code: {
            "code": code,
            "title": instruments.load(code).title.in_language(language),
            "columns": [instruments.load(code).item(name).label(language) for name in columns],
            "rows": [],
            "new_url": _form_screen_urls(participant.study_number)(code, "new"),
        }
        for code, columns in LOG_COLUMNS.items()
    }
    url = _form_screen_urls(participant.study_number)
    casebook_lock = next(
        (
            c.review.lock
            for c in cells
            if c.review is not None
            and c.review.lock is not None
            and c.review.lock["level"] != "record"
        ),
        None,
    )
    for cell in cells:
        if cell.form_code in logs:
            if cell.record is not None:
                logs[cell.form_code]["open_queries"] = logs[cell.form_code].get(
                    "open_queries", 0
                ) + (cell.review.open_queries if cell.review else 0)
                logs[cell.form_code]["rows"].append(
                    {
                        "cell": cell,
                        "url": url(cell.form_code, cell.occurrence),
                        "badge": form_status_badge(cell.record.status),
                        "marks": review_marks(cell.review),
                        "values": [
                            _log_value(cell.form_code, name, cell.record.data.get(name), language)
                            for name in LOG_COLUMNS[cell.form_code]
                        ],
                    }
                )
            continue
        row = forms.setdefault(
            cell.form_code,
            {
                "code": cell.form_code,
                "title": instruments.load(cell.form_code).title.in_language(language),
                "cells": [],
                "more": expected.rule_for(cell.form_code).occurs == "per_event",
                "new_url": url(cell.form_code, "new"),
                "open_queries": 0,
            },
        )
        row["open_queries"] += cell.review.open_queries if cell.review else 0
        row["cells"].append(
            {
                "label": _occurrence_label(cell.occurrence),
                "url": url(cell.form_code, cell.occurrence),
                "badge": form_status_badge(cell.status),
                "marks": review_marks(cell.review),
                **cell.__dict__,
            }
        )
    for row in forms.values():  # "add another" only where one applies
        row["more"] = row["more"] and any(c["status"] != "not_applicable" for c in row["cells"])
        timepoints = expected.rule_for(row["code"]).timepoints
        if timepoints:  # follow-up visits in time order (week 4, week 12, month 6)
            row["cells"].sort(
                key=lambda c, tps=timepoints: (
                    tps.index(c["occurrence"]) if c["occurrence"] in tps else len(tps)
                )
            )
    return {
        "template": "crf/_forms_panel.html",
        "context": {
            "form_rows": list(forms.values()),
            "log_tables": list(logs.values()),
            "can_write": access.can_write_site(participant.site_id) and casebook_lock is None,
            "pending": pending,
            "casebook_lock": casebook_lock,
        },
        "timeline": [],
        "banner": None,
    }


# --- data review screens (issue 12): the form screen's review block and the review lists ------
# Imported here rather than at the top so this section stays apart from the form screens'
# section above (two people edit this module).
from crf.models import DataLock, ESignature, LockLevel, QueryStatus  # noqa: E402

REVIEW_ROLES = frozenset({"data_manager"})  # crf.services.REVIEWERS (monitors)


@dataclass(frozen=True)
class ItemReview:
    """One item of a record as the monitor's source data verification sees it."""

    code: str
    label: str
    key: bool  # a key item of the definition (``sdv``)
    mark: SourceVerification | None  # the current verification
    needs_reverification: bool  # verified once, the mark cleared by a change since
    open_queries: int


@dataclass(frozen=True)
class RecordReview:
    """Everything the review block of a form screen shows, read in a fixed number of
    queries (whatever the number of queries, messages, signatures or marks)."""

    queries: list[DataQuery]
    signature: ESignature | None  # the record's valid signature
    invalidated: list[ESignature]  # the record's invalidated signatures, newest first
    casebook_signature: ESignature | None  # the participant's valid casebook signature
    locks: list[DataLock]  # the active locks that cover the record (form, casebook, trial)
    items: list[ItemReview]

    @property
    def locked(self) -> bool:
        return bool(self.locks)

    @property
    def unresolved(self) -> int:
        return sum(1 for q in self.queries if q.status != QueryStatus.CLOSED)


def record_review(
    *,
    record: ClinicalRecord | None,
    participant_id: int,
    trial_id: int,
    language: str | None = None,
) -> RecordReview:
    """The review state of one form screen: its queries with their threads, signatures,
    the locks that cover it and the verification of its items. No access check: the caller
    (the form screen) has decided the user may read the participant."""
    locks = list(
        DataLock.objects.filter(trial_id=trial_id, unlocked_at__isnull=True)
        .filter(
            Q(level=LockLevel.TRIAL)
            | Q(level=LockLevel.PARTICIPANT, participant_id=participant_id)
            | (Q(level=LockLevel.RECORD, record=record) if record is not None else Q(pk__in=[]))
        )
        .select_related("locked_by")
        .order_by("locked_at", "pk")
    )
    signatures = list(
        ESignature.objects.filter(
            Q(participant_id=participant_id, record__isnull=True)
            | (Q(record=record) if record is not None else Q(pk__in=[]))
        )
        .select_related("signed_by", "invalidated_by")
        .order_by("-signed_at", "-pk")
    )
    if record is None:
        return RecordReview([], None, [], _valid_casebook(signatures), locks, [])
    queries = list(
        DataQuery.objects.filter(record=record)
        .select_related("raised_by")
        .prefetch_related(Prefetch("messages", queryset=QueryMessage.objects.select_related("by")))
        .order_by("raised_at", "pk")
    )
    marks = list(SourceVerification.objects.filter(record=record).select_related("verified_by"))
    current = {m.item: m for m in marks if m.cleared_at is None}
    cleared = {m.item for m in marks if m.cleared_at is not None}
    open_by_item: dict[str, int] = {}
    for q in queries:
        if q.status != QueryStatus.CLOSED and q.item:
            base = q.item.split("-")[0]
            open_by_item[base] = open_by_item.get(base, 0) + 1
    definition = definition_of(record.definition)
    key_items = set(definition.sdv)
    items = [
        ItemReview(
            code=item.code,
            label=item.label(language or get_language()),
            key=item.code in key_items,
            mark=current.get(item.code),
            needs_reverification=item.code in cleared and item.code not in current,
            open_queries=open_by_item.get(item.code, 0),
        )
        for item in definition.items
        if item.kind != "computed"
    ]
    record_signatures = [s for s in signatures if s.record_id == record.pk]
    return RecordReview(
        queries=queries,
        signature=next((s for s in record_signatures if s.invalidated_at is None), None),
        invalidated=[s for s in record_signatures if s.invalidated_at is not None],
        casebook_signature=_valid_casebook(signatures),
        locks=locks,
        items=items,
    )


def _valid_casebook(signatures: list[ESignature]) -> ESignature | None:
    return next((s for s in signatures if s.record_id is None and s.invalidated_at is None), None)


def query_for_review(*, user: User, pk: int) -> DataQuery:
    """One query at the user's sites (site staff and monitors) with its record and
    participant; 404 otherwise (another site's query is not found, never refused)."""
    query = (
        access_for(user)
        .scope(
            DataQuery.objects.filter(pk=pk),
            site_field="record__participant__site",
            roles=SITE_STAFF,
        )
        .select_related("record__participant")
        .first()
    )
    if query is None:
        raise Http404
    return query


def query_raisers(*, user: User) -> QuerySet[User]:
    """The people who raised queries at the user's sites (the worklist's raiser filter)."""
    from core.models import User as UserModel

    raised = access_for(user).scope(
        DataQuery.objects.filter(raised_by__isnull=False),
        site_field="record__participant__site",
        roles=SITE_STAFF,
    )
    return UserModel.objects.filter(pk__in=raised.values("raised_by_id")).order_by("username")


def casebook_records(*, allocation: Allocation) -> list[ClinicalRecord]:
    """A participant's records of the trial as the casebook signature covers them (voided
    entries excluded), by form and occurrence."""
    order = {code: index for index, code in enumerate(expected.FORM_CODES)}
    records = list(
        ClinicalRecord.objects.filter(
            participant_id=allocation.participant_id, trial_id=allocation.trial_id
        )
        .exclude(status=RecordStatus.VOIDED)
        .select_related("updated_by")
        .defer("definition__content")
    )
    records.sort(
        key=lambda r: (order.get(r.form_code, len(order)), expected.occurrence_key(r.occurrence))
    )
    return records


def data_locks(*, user: User, active: bool = True, limit: int = 200) -> list[DataLock]:
    """The locks a data manager sees: of participants at the user's sites, and the
    whole-trial locks (they cover every site). ``active`` False: the lifted ones, latest
    first."""
    from core.access import site_q

    qs = DataLock.objects.filter(
        site_q(user, site_field="participant__site", roles=REVIEW_ROLES)
        | Q(participant__isnull=True)
    )
    if not access_for(user).has_role(*REVIEW_ROLES):
        return []
    if active:
        qs = qs.filter(unlocked_at__isnull=True).order_by("-locked_at", "-pk")
    else:
        qs = qs.filter(unlocked_at__isnull=False).order_by("-unlocked_at", "-pk")
    return list(
        qs.select_related("trial", "participant", "record", "locked_by", "unlocked_by")[:limit]
    )
