"""Reads for questionnaire screens and APIs, with access control (core.access)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from cohort.models import Participant
from core.access import DATA_ENTRY, SITE_STAFF, access_for, require_write
from core.pagination import CappedCount, count_capped
from crf.models import (
    ACTIVE_STATUSES,
    ANSWERABLE_STATUSES,
    InstrumentResponse,
    Questionnaire,
    QuestionnaireLink,
    QuestionnaireStatus,
)

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
