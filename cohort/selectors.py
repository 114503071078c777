"""Reads about cohort participants, including the two contact/consent rules every
later app must use and never re-implement:

- :func:`may_contact_for_questionnaires` — may we send this participant a
  questionnaire at this moment?
- :func:`twics_randomisation_consent` — may this participant be randomised in a
  TwiCs trial at this moment (consent elements (c) and (d))?
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from django.contrib.postgres.expressions import ArraySubquery

# The lookup exists (Django defines it next to ArrayField); django-stubs does not declare it.
from django.contrib.postgres.fields.array import ArrayContains  # type: ignore[attr-defined]
from django.db.models import Exists, OuterRef, Q, QuerySet, Value
from django.http import Http404
from django.utils import timezone

from cohort.models import (
    ConsentElement,
    ConsentFormVersion,
    ConsentRecord,
    Death,
    Identity,
    Participant,
    Withdrawal,
    WithdrawalScope,
    study_number_fragments,
)
from cohort.rules import (
    STUDY_NUMBER_PREFIX,
    ConsentRule,
    ParticipantStatus,
    Status,
    consent_reasons,
    format_study_number,
    latest_by_element,
    normalise_hospital_number,
    parse_study_number,
    participant_status,
)
from core import hooks
from core.access import CLINICAL_READERS, access_for
from core.models import Site, User

if TYPE_CHECKING:  # pragma: no cover - django-stubs-ext is a development dependency
    from django_stubs_ext import StrOrPromise

# Which withdrawal scopes end which activity. Withdrawing consent for data use or
# stopping all data collection also stops questionnaires and trial participation.
STOPS_QUESTIONNAIRES = {
    WithdrawalScope.QUESTIONNAIRES,
    WithdrawalScope.DATA_COLLECTION,
    WithdrawalScope.DATA_USE,
}
STOPS_TRIAL = {WithdrawalScope.TRIAL, WithdrawalScope.DATA_COLLECTION, WithdrawalScope.DATA_USE}


def _as_date(at: date | datetime | None) -> date:
    if at is None:
        return timezone.localdate()
    if isinstance(at, datetime):
        return timezone.localdate(at) if timezone.is_aware(at) else at.date()
    return at


def current_consents(
    participant: Participant, at: date | datetime | None = None
) -> dict[str, ConsentRecord]:
    """The latest non-superseded answer per element given on or before ``at``
    (:func:`cohort.rules.latest_by_element`)."""
    day = _as_date(at)
    return latest_by_element(
        ConsentRecord.objects.current().filter(participant=participant, given_on__lte=day)
    )


def _withdrawn_scopes(participant: Participant, day: date) -> set[str]:
    return set(
        Withdrawal.objects.filter(participant=participant, effective_on__lte=day).values_list(
            "scope", flat=True
        )
    )


def _dead_on(participant: Participant, day: date) -> bool:
    death = (
        getattr(participant, "death", None)
        if _death_loaded(participant)
        else _load_death(participant)
    )
    return death is not None and death.died_on <= day


def _death_loaded(participant: Participant) -> bool:
    return "death" in participant._state.fields_cache


def _load_death(participant: Participant) -> Death | None:
    from cohort.models import Death

    return Death.objects.filter(participant=participant).first()


@dataclass(frozen=True)
class ContactDecision:
    allowed: bool
    reasons: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.allowed


# The two consent rules later apps use (the reasons come from cohort.rules.consent_reasons).
QUESTIONNAIRE_CONTACT = ConsentRule(
    elements=(ConsentElement.COHORT, ConsentElement.PROMS),
    stopped_by=frozenset(STOPS_QUESTIONNAIRES),
    withdrawn_reason="withdrawn_questionnaires",
)
TWICS_RANDOMISATION = ConsentRule(
    elements=(
        ConsentElement.COHORT,
        ConsentElement.RANDOMISATION_OFFER,
        ConsentElement.CONTROL_UNINFORMED,
    ),
    stopped_by=frozenset(STOPS_TRIAL),
    withdrawn_reason="withdrawn_trial",
)


def _consent_decision(
    rule: ConsentRule, participant: Participant, at: date | datetime | None
) -> ContactDecision:
    day = _as_date(at)
    reasons = consent_reasons(
        rule,
        answers={e: r.answer for e, r in current_consents(participant, day).items()},
        withdrawn_scopes=_withdrawn_scopes(participant, day),
        dead=_dead_on(participant, day),
    )
    return ContactDecision(allowed=not reasons, reasons=reasons)


def questionnaire_contact(
    participant: Participant, at: date | datetime | None = None
) -> ContactDecision:
    """Why (not) a questionnaire may be sent: consent (a)+(b) yes, no questionnaire-stopping
    withdrawal, not dead — all judged on the date of ``at`` (Europe/Amsterdam)."""
    return _consent_decision(QUESTIONNAIRE_CONTACT, participant, at)


def may_contact_for_questionnaires(
    participant: Participant, at: date | datetime | None = None
) -> bool:
    return questionnaire_contact(participant, at).allowed


def randomisation_consent(
    participant: Participant, at: date | datetime | None = None
) -> ContactDecision:
    """Why (not) the participant may be randomised in a TwiCs trial: cohort consent (a),
    and both (c) being offered interventions and (d) serving as an uninformed control,
    given and not withdrawn; not dead."""
    return _consent_decision(TWICS_RANDOMISATION, participant, at)


def twics_randomisation_consent(
    participant: Participant, at: date | datetime | None = None
) -> bool:
    return randomisation_consent(participant, at).allowed


# --- screens and APIs: every read scoped through core.access ----------------------------------


def _scoped_participants(user: User) -> QuerySet[Participant]:
    return access_for(user).scope(Participant.objects.all(), roles=CLINICAL_READERS)


def _study_number_q(search: str) -> Q | None:
    """``study_number icontains search`` as a condition an index answers, or None when no
    study number can contain it. Every study number is ``PRE-`` and five or more digits
    (a check constraint), so a search that ends ``PRE-`` and goes on with digits
    (``PRE-0004``, ``E-0004``) is a prefix (the unique index), digits alone are a run of
    digits inside the number (the GIN index over :func:`study_number_fragments`), and a
    piece of ``PRE-`` itself matches every number."""
    term = search.upper()
    if term in STUDY_NUMBER_PREFIX:
        return Q()
    if term.isdigit():
        # both: PostgreSQL answers a rare run of digits from the GIN index, and a common
        # one by reading the list in order with the cheap LIKE until the page is full
        return Q(study_number__contains=term) & Q(
            ArrayContains(study_number_fragments(), Value([term]))
        )
    for start in range(len(STUDY_NUMBER_PREFIX)):
        head = STUDY_NUMBER_PREFIX[start:]
        digits = term.removeprefix(head)
        if term.startswith(head) and digits.isdigit():
            return Q(study_number__startswith=STUDY_NUMBER_PREFIX + digits)
    return None


def participant_list(
    *,
    user: User,
    search: str | None = None,
    status: str | None = None,
    match_hospital_number: bool = False,
) -> QuerySet[Participant]:
    """Participants the user may read, newest first (``-registered_at, -pk``: page it with
    ``core.pagination.keyset_page``), with their status computed in the same query
    (``died_on``, ``withdrawn_scopes``) so a page costs a fixed number of queries; the
    "not informed" flag of a page's rows comes from :func:`participants_not_informed`.

    ``search`` matches the study number (``PRE-00042``, ``42`` or a fragment) and, only
    with ``match_hospital_number`` (searches that came in a POST body, never in a URL) and
    only at sites where the user may see identifying data, the exact hospital record number.
    ``status`` is one of :class:`cohort.rules.Status`.
    """
    access = access_for(user)
    qs = _scoped_participants(user).select_related("site", "death")
    identifying_sites = access.identifying_site_ids()
    if identifying_sites:
        qs = qs.select_related("identity")
    qs = qs.annotate(
        withdrawn_scopes=ArraySubquery(
            Withdrawal.objects.filter(participant=OuterRef("pk")).order_by("scope").values("scope")
        ),
    )
    search = (search or "").strip()[:40]
    if search:
        cond = _study_number_q(search)
        if cond is None:  # no study number can contain it
            cond = Q(pk__in=[])
        number = parse_study_number(search)
        if number:  # "PRE-00000" parses as 0, which no study number has
            cond |= Q(study_number=format_study_number(number))
        if match_hospital_number and identifying_sites:
            cond |= Q(
                identity__site_id__in=identifying_sites,
                identity__hospital_number=normalise_hospital_number(search),
            )
        qs = qs.filter(cond)
    died = Exists(Death.objects.filter(participant=OuterRef("pk")))
    withdrew = Exists(Withdrawal.objects.filter(participant=OuterRef("pk")))
    if status == Status.DECEASED:
        qs = qs.filter(died)
    elif status == Status.WITHDRAWN:
        qs = qs.filter(~died, withdrew)
    elif status == Status.ACTIVE:
        qs = qs.filter(~died, ~withdrew)
    return qs.order_by("-registered_at", "-pk")


def participants_not_informed(participants: list[Participant]) -> set[int]:
    """The ids among ``participants`` (one page) that some app marks "never told about a
    trial" (``core.hooks.not_informed_records``): one query per subscriber over these ids
    only. (An ``Exists`` in the list query itself made PostgreSQL hash every control-arm
    allocation on each request, before the page's ``LIMIT``.)"""
    ids = [p.pk for p in participants]
    found: set[int] = set()
    if not ids:
        return found
    for _name, call in hooks.not_informed_records.each():
        found.update(call().filter(participant_id__in=ids).values_list("participant_id", flat=True))
    return found


def not_informed_q(outer: str = "pk") -> Q | None:
    """ "Never told about a trial" as one condition over the participant ``outer`` refers
    to (an ``OuterRef``), from the apps subscribed to ``core.hooks.not_informed_records``;
    None when no app says so."""
    found: Q | None = None
    for _name, call in hooks.not_informed_records.each():
        cond = Q(Exists(call().filter(participant=OuterRef(outer))))
        found = cond if found is None else found | cond
    return found


def is_not_informed(participant: Participant) -> bool:
    """True when any app holds a record that makes ``participant`` "not informed"."""
    return any(
        call().filter(participant=participant).exists()
        for _name, call in hooks.not_informed_records.each()
    )


def participant_get(*, user: User, study_number: str) -> Participant:
    """One participant the user may read; another site's participant is a 404, never a 403.
    The one door to a participant for every app's screens and APIs."""
    qs = _scoped_participants(user).select_related("site", "death", "registered_by")
    if access_for(user).identifying_site_ids():
        qs = qs.select_related("identity")
    participant = qs.filter(study_number=(study_number or "").strip().upper()[:12]).first()
    if participant is None:
        raise Http404
    return participant


def participant_by_hospital_number(*, user: User, hospital_number: str) -> Participant | None:
    """The participant with this hospital record number at a site where the user may see
    identifying data (exact match), else None."""
    sites = access_for(user).identifying_site_ids()
    number = normalise_hospital_number(hospital_number)
    if not sites or not number:
        return None
    return (
        _scoped_participants(user)
        .filter(identity__site_id__in=sites, identity__hospital_number=number)
        .first()
    )


def status_of(participant: Participant, on: date | None = None) -> ParticipantStatus:
    """Status from what :func:`participant_list` loaded (no query), or a query otherwise."""
    scopes = getattr(participant, "withdrawn_scopes", None)
    if scopes is None:
        scopes = list(
            Withdrawal.objects.filter(participant=participant).values_list("scope", flat=True)
        )
    death = (
        getattr(participant, "death", None)
        if _death_loaded(participant)
        else _load_death(participant)
    )
    return participant_status(
        died_on=death.died_on if death else None,
        withdrawn_scopes=scopes,
        on=on or timezone.localdate(),
    )


def identity_visible(*, user: User, participant: Participant) -> Identity | None:
    """The identifying data of ``participant`` when ``user`` may see it, else None."""
    if not access_for(user).can_see_identifying(participant.site_id):
        return None
    try:
        return participant.identity
    except Identity.DoesNotExist:
        return None


def participant_consents(*, participant: Participant) -> list[ConsentRecord]:
    """Every consent record (originals and corrections), oldest first."""
    return list(
        ConsentRecord.objects.filter(participant=participant)
        .select_related("form_version", "taken_by", "superseded_by")
        .order_by("given_on", "recorded_at", "pk")
    )


def participant_withdrawals(*, participant: Participant) -> list[Withdrawal]:
    return list(
        Withdrawal.objects.filter(participant=participant)
        .select_related("recorded_by")
        .order_by("effective_on", "pk")
    )


@dataclass(frozen=True)
class ConsentSummary:
    element: str
    label: StrOrPromise
    record: ConsentRecord | None

    @property
    def given(self) -> bool | None:
        return None if self.record is None else self.record.answer


def consent_summary(records: list[ConsentRecord]) -> list[ConsentSummary]:
    """The current answer per element (latest non-superseded record), in element order."""
    latest = latest_by_element(r for r in records if r.superseded_by_id is None)
    return [
        ConsentSummary(element=e.value, label=e.label, record=latest.get(e.value))
        for e in ConsentElement
    ]


@dataclass(frozen=True)
class TimelineEntry:
    """One timeline line. ``on`` is an aware datetime when the moment is known, else a
    date (shown without a time: nothing is invented); ``recorded_at`` is when the record was
    made, which orders the entries of one day."""

    on: date | datetime
    recorded_at: datetime
    kind: str
    text: str
    detail: str = ""
    struck: bool = False

    @property
    def date_only(self) -> bool:
        return not isinstance(self.on, datetime)

    @property
    def day(self) -> date:
        return _as_date(self.on)

    @property
    def at(self) -> date | datetime:
        """What the page shows (kept for templates): the moment, or the date alone."""
        return self.on


def timeline_sort_key(entry: TimelineEntry) -> tuple[date, date | datetime, datetime, bool]:
    """By date (Europe/Amsterdam), then by the moment when it is known and otherwise by
    when the record was made; the registration first among equals."""
    moment = entry.recorded_at if entry.date_only else entry.on
    return (entry.day, moment, entry.recorded_at, entry.kind != "registered")


def participant_timeline(
    *,
    participant: Participant,
    consents: list[ConsentRecord],
    withdrawals: list[Withdrawal],
    extra: list[dict[str, Any]] | None = None,
) -> list[TimelineEntry]:
    """Registered, consents (corrections shown with their reason), withdrawals, death and
    whatever other apps add (``extra``: ``{"on": date | aware datetime, "recorded_at":
    aware datetime, "text": str}`` each), ordered by :func:`timeline_sort_key`."""
    from django.utils.translation import gettext as _

    entries = [
        TimelineEntry(
            on=participant.registered_at,
            recorded_at=participant.registered_at,
            kind="registered",
            text=_("Registered in the PRESENT cohort at %(site)s")
            % {"site": participant.site.name},
        )
    ]
    for record in consents:
        answer = _("yes") if record.answer else _("no")
        text = _("Consent %(element)s: %(answer)s") % {
            "element": record.get_element_display(),
            "answer": answer,
        }
        detail = _("form %(form)s, %(mode)s, taken by %(by)s") % {
            "form": record.form_version,
            "mode": record.get_mode_display().lower(),
            "by": record.taken_by.get_full_name() or record.taken_by.get_username(),
        }
        if record.correction_reason:
            detail += " · " + _("correction: %(reason)s") % {"reason": record.correction_reason}
        entries.append(
            TimelineEntry(
                on=record.given_on,
                recorded_at=record.recorded_at,
                kind="consent",
                text=text,
                detail=detail,
                struck=record.superseded_by_id is not None,
            )
        )
    for w in withdrawals:
        entries.append(
            TimelineEntry(
                on=w.effective_on,
                recorded_at=w.recorded_at,
                kind="withdrawal",
                text=_("Withdrawal: %(scope)s") % {"scope": w.get_scope_display()},
                detail=w.reason,
            )
        )
    death = (
        getattr(participant, "death", None)
        if _death_loaded(participant)
        else _load_death(participant)
    )
    if death is not None:
        entries.append(
            TimelineEntry(
                on=death.died_on,
                recorded_at=death.recorded_at,
                kind="death",
                text=_("Deceased"),
                detail=_("source: %(source)s") % {"source": death.get_source_display()},
            )
        )
    for item in extra or []:
        entries.append(
            TimelineEntry(
                on=item["on"],
                recorded_at=item["recorded_at"],
                kind=item.get("kind") or "other",
                text=item["text"],
            )
        )
    return sorted(entries, key=timeline_sort_key)


def consent_form_versions() -> QuerySet[ConsentFormVersion]:
    return ConsentFormVersion.objects.order_by("code", "-effective_from", "language")


def consent_form_version_suggested(
    *, language: str | None, on: date | None = None
) -> ConsentFormVersion | None:
    """The version in effect today (in the participant's language when known): the form's
    default. The service still checks the version against the consent date."""
    day = on or timezone.localdate()
    effective = (
        ConsentFormVersion.objects.filter(effective_from__lte=day)
        .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=day))
        .order_by("-effective_from", "pk")
    )
    if language:
        preferred = effective.filter(language=language).first()
        if preferred is not None:
            return preferred
    return effective.first()


def consent_record_get(*, participant: Participant, pk: int) -> ConsentRecord:
    record = (
        ConsentRecord.objects.filter(participant=participant, pk=pk)
        .select_related("form_version", "participant")
        .first()
    )
    if record is None:
        raise Http404
    return record


def withdrawal_get(*, participant: Participant, pk: int) -> Withdrawal:
    withdrawal = (
        Withdrawal.objects.filter(participant=participant, pk=pk)
        .select_related("participant")
        .first()
    )
    if withdrawal is None:
        raise Http404
    return withdrawal


def death_get(*, participant: Participant) -> Death:
    death = Death.objects.filter(participant=participant).select_related("participant").first()
    if death is None:
        raise Http404
    return death


def site_staff_sites(*, user: User) -> QuerySet[Site]:
    """Sites where the user may register participants."""
    return access_for(user).writable_sites()
