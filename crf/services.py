"""Writes for schedules and questionnaires (ePRO).

Contract with the other apps (signatures fixed):

- :func:`schedule_anchor` — randomization calls it when a planned or actual day 0
  is recorded.
- :func:`questionnaires_cancel_pending` — cohort calls it when a
  questionnaire-stopping withdrawal or a death is recorded.

Both run inside the caller's transaction (hook subscribers); every other write is a
top-level service in its own durable transaction (:func:`core.services.top_level`), and
those a nurse makes check write access first (:func:`core.access.require_write`). Refusals
are :class:`core.refusals.Refusal` subclasses; nothing is written when one is raised.

Sending (:func:`questionnaires_sweep`) is a series of short transactions:
claim one due row (``FOR UPDATE SKIP LOCKED``) and decide with
:func:`crf.lifecycle.decide`; for a send, mark it ``sending`` with an attempt id
and commit; hand the mail over outside any transaction; then mark it ``sent``
for that attempt id. See :mod:`crf.lifecycle` for the stale-claim rule.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as day_time
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cohort.models import Participant
from core.access import require_write
from core.audit import reason as audit_reason
from core.refusals import Invalid, NotAllowed, Refusal
from core.services import top_level
from crf import conf, expected, instruments
from crf.channels import Channel, OutgoingMessage, SendFailed, channel_for
from crf.definition_store import current_definition, definition_of
from crf.instruments import Instrument
from crf.lifecycle import Action, Snapshot, decide
from crf.models import (
    ACTIVE_STATUSES,
    ANSWERABLE_STATUSES,
    UNSENT_STATUSES,
    ClinicalRecord,
    DataLock,
    DataQuery,
    ESignature,
    FormExpectation,
    InstrumentResponse,
    LockLevel,
    Mode,
    QueryAction,
    QueryMessage,
    QueryOrigin,
    QueryStatus,
    Questionnaire,
    QuestionnaireLink,
    QuestionnaireStatus,
    RecheckRun,
    RecheckStatus,
    RecordStatus,
    SendKind,
    SourceVerification,
    Timepoint,
)
from crf.windows import (
    CompletionDay,
    completion_day_check,
    invitation_time,
    retry_time,
    window_for,
)
from randomization.models import Allocation, AllocationStatus

if TYPE_CHECKING:  # pragma: no cover
    from core.models import User
    from randomization.models import Trial

logger = logging.getLogger(__name__)
S = QuestionnaireStatus


# --- errors ---------------------------------------------------------------------------------
class QuestionnaireError(Refusal):
    """Base of the named questionnaire refusals (:class:`core.refusals.Refusal`): a conflict
    with the questionnaire's state (409); those about the input are also
    :class:`~core.refusals.Invalid` (400)."""


class NotAnswerable(QuestionnaireError):
    """The questionnaire cannot take answers now (closed, cancelled, not sent)."""

    code = "not_answerable"
    default_message = gettext_lazy("This questionnaire can no longer be entered.")


class AlreadyCompleted(QuestionnaireError):
    """The questionnaire is completed; change it through a correction with a reason."""

    code = "already_completed"
    default_message = gettext_lazy("This questionnaire is already completed; correct it instead.")


class UnknownInstrument(QuestionnaireError, Invalid):
    """The instrument is not part of this questionnaire's timepoint."""

    code = "unknown_instrument"


class ReasonRequired(QuestionnaireError, Invalid):
    """A change of completed data needs a reason for change."""

    code = "reason_required"
    field = "reason"
    default_message = gettext_lazy("Give a reason for the change.")


class InvalidAnswers(QuestionnaireError, Invalid):
    """Answers failed validation: ``errors = {instrument: {item: message}}`` (the same as
    nested field errors)."""

    code = "invalid_answers"

    def __init__(self, errors: dict[str, dict[str, str]]):
        super().__init__()
        self.errors = errors
        self.field_errors = {code: {k: [v] for k, v in e.items()} for code, e in errors.items()}
        self.non_field_errors = []


class EntryRefused(QuestionnaireError, Invalid):
    """The completion cannot be right as given: ``errors = {field: message}`` (``"__all__"``
    for the entry as a whole, ``"completed_on"`` for an impossible date)."""

    code = "entry_refused"

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()), errors=errors)
        self.errors = errors


class NothingAnswered(EntryRefused):
    """Not a single item is answered: that is no completed questionnaire."""

    code = "nothing_answered"


class ConfirmationRequired(QuestionnaireError):
    """The entry is possible but needs the nurse's explicit confirmation first: items are
    left unanswered (how many), and/or the date answered lies outside the window.
    Confirm by calling again with ``confirm_unanswered=unanswered`` and/or
    ``confirm_outside_window=completed_on``; a confirmation of other values asks again."""

    code = "confirmation_required"

    def __init__(
        self,
        *,
        unanswered: int,
        unanswered_by_instrument: dict[str, int],
        outside_window: bool,
        completed_on: date,
        first_day: date,
        last_day: date,
    ):
        reasons = (["unanswered"] if unanswered else []) + (
            ["outside_window"] if outside_window else []
        )
        super().__init__(reasons=reasons or None)
        self.unanswered = unanswered
        self.unanswered_by_instrument = unanswered_by_instrument
        self.outside_window = outside_window
        self.completed_on = completed_on
        self.first_day = first_day
        self.last_day = last_day


# --- audit ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _default_reason(text: str) -> Iterator[None]:
    """Attach ``text`` as the reason for change only when the caller gave none.

    pghistory keeps one context per request or task, and a nested reason replaces the
    metadata of that one context row, so it would also relabel the caller's own events
    (e.g. a withdrawal's typed reason). The caller's reason wins.
    """
    from pghistory import runtime

    current = getattr(runtime._tracker, "value", None)
    if current is not None and current.metadata.get("reason"):
        yield
    else:
        with audit_reason(text):
            yield


# --- tokens ---------------------------------------------------------------------------------
def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


# --- schedule -------------------------------------------------------------------------------
def _lock_participant(participant: Participant) -> Participant:
    return Participant.objects.select_for_update().get(pk=participant.pk)


@transaction.atomic
def schedule_anchor(*, participant: Participant, trial: Trial, day0: date, is_actual: bool) -> None:
    """Create or re-anchor the follow-up schedule of ``participant`` in ``trial`` on day 0.

    Creates one questionnaire per active timepoint (unique per participant, trial and
    timepoint). On a later call (the actual date replacing the planned one) only rows
    whose invitation has not gone out move; sent, answered and closed rows stay.
    Called by randomization when a planned or actual start of treatment is recorded.
    """
    from cohort.selectors import questionnaire_contact

    _lock_participant(participant)
    now = timezone.now()
    hours = conf.contact_hours()
    existing = {
        q.timepoint_id: q
        for q in Questionnaire.objects.select_for_update().filter(
            participant=participant, trial=trial
        )
    }
    decision = questionnaire_contact(participant, now)
    stopped = [r for r in decision.reasons if r in ("withdrawn_questionnaires", "deceased")]
    with _default_reason(f"schedule anchored on day 0 {day0.isoformat()}"):
        for tp in Timepoint.objects.filter(trial=trial, is_active=True):
            window = window_for(
                day0=day0,
                day_offset=tp.day_offset,
                before=tp.window_before,
                after=tp.window_after,
            )
            first_action = (
                max(invitation_time(window, hours), now) if window.closes_at > now else now
            )
            q = existing.get(tp.pk)
            if q is None:
                Questionnaire.objects.create(
                    participant=participant,
                    trial=trial,
                    timepoint=tp,
                    status=S.CANCELLED if stopped else S.SCHEDULED,
                    cancel_reason=",".join(stopped),
                    day0=day0,
                    day0_is_actual=is_actual,
                    opens_at=window.opens_at,
                    due_at=window.due_at,
                    closes_at=window.closes_at,
                    next_action_at=None if stopped else first_action,
                )
            elif q.status in UNSENT_STATUSES and q.sent_at is None:
                q.day0 = day0
                q.day0_is_actual = is_actual
                q.opens_at = window.opens_at
                q.due_at = window.due_at
                q.closes_at = window.closes_at
                q.status = S.SCHEDULED
                q.next_action_at = first_action
                q.save()
            elif q.day0 == day0 and q.day0_is_actual != is_actual:
                # Sent, answered or closed: the window stays; a planned day 0 confirmed
                # as actual is noted. (A different day 0 leaves these rows untouched.)
                q.day0_is_actual = is_actual
                q.save(update_fields=["day0_is_actual"])


@transaction.atomic
def questionnaires_cancel_pending(*, participant: Participant, reason: str) -> int:
    """Cancel every questionnaire of ``participant`` not yet completed or closed, at once.

    Links in mails already sent stop working (the row is no longer answerable) and no
    reminder follows. Returns how many rows were cancelled. Called by cohort when a
    questionnaire-stopping withdrawal or a death is recorded.
    """
    _lock_participant(participant)
    with _default_reason(reason or "questionnaires stopped"):
        return Questionnaire.objects.filter(
            participant=participant, status__in=ACTIVE_STATUSES
        ).update(
            status=S.CANCELLED,
            cancel_reason=(reason or "")[:200],
            next_action_at=None,
            sending_attempt=None,
            sending_kind="",
        )


# --- sending --------------------------------------------------------------------------------
@dataclass
class SweepResult:
    invitations: int = 0
    reminders: int = 0
    missed: int = 0
    cancelled: int = 0
    waiting: int = 0
    retried: int = 0
    failed: int = 0
    examined: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "errors"} | {
            "errors": len(self.errors)
        }


@dataclass(frozen=True)
class _Claim:
    questionnaire_id: int
    attempt: uuid.UUID
    kind: str
    message: OutgoingMessage
    channel: Channel


def _snapshot(q: Questionnaire) -> Snapshot:
    return Snapshot(
        status=q.status,
        opens_at=q.opens_at,
        closes_at=q.closes_at,
        sent_at=q.sent_at,
        reminders_done=q.reminders_done,
        sending_kind=q.sending_kind,
        sending_started_at=q.sending_started_at,
    )


def patient_link(token: str) -> str:
    return conf.public_base_url() + reverse("crf:patient_start", args=[token])


def render_message(
    *, kind: str, language: str, link: str, closes_at: datetime, site_name: str
) -> tuple[str, str, str]:
    """Subject, text and HTML of an invitation or reminder: PRESENT-branded, naming no trial,
    signed by the study team of the participant's own site (``site_name``)."""
    with translation.override(language):
        context = {
            "kind": kind,
            "link": link,
            "closes_on": timezone.localtime(closes_at - timedelta(seconds=1)).date(),
            "site_name": site_name,
        }
        subject = render_to_string("crf/email/subject.txt", context).strip()
        text = render_to_string("crf/email/message.txt", context)
        html = render_to_string("crf/email/message.html", context)
    return " ".join(subject.split()), text, html


POISON_RETRY = timedelta(minutes=30)


def _claim_one(now: datetime, result: SweepResult) -> tuple[bool, _Claim | None]:
    """Lock one due row and apply the lifecycle step. Returns (found, claim-to-send).

    An unexpected error on one row (a broken template, bad data) must not block the rows
    behind it: the row's own changes are rolled back, the error is recorded on the row,
    and it is looked at again in 30 minutes.
    """
    with transaction.atomic():
        q = (
            Questionnaire.objects.due(now)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("participant__site")
            .order_by("next_action_at", "pk")
            .first()
        )
        if q is None:
            return False, None
        result.examined += 1
        try:
            with transaction.atomic():
                return True, _apply_step(q, now, result)
        except Exception as exc:  # noqa: BLE001 - isolate one bad row
            logger.exception("questionnaire %s: sweep step failed", q.pk)
            error = f"sweep error: {exc.__class__.__name__}"[:200]
            Questionnaire.objects.filter(pk=q.pk).update(
                last_error=error, next_action_at=now + POISON_RETRY
            )
            result.errors.append(error)
            return True, None


def _apply_step(q: Questionnaire, now: datetime, result: SweepResult) -> _Claim | None:
    from cohort.selectors import questionnaire_contact

    step = decide(
        _snapshot(q),
        now=now,
        hours=conf.contact_hours(),
        reminder_days=conf.reminder_days(),
        stale_seconds=conf.sending_stale_seconds(),
    )
    if step.action is Action.MISSED:
        q.status = S.MISSED
        q.next_action_at = None
        q.sending_attempt = None
        q.sending_kind = ""
        q.save()
        result.missed += 1
        return None
    if step.action is Action.WAIT:
        if step.status_if_waiting:
            q.status = step.status_if_waiting
            q.sending_attempt = None
            q.sending_kind = ""
        q.next_action_at = step.at
        q.save()
        result.waiting += 1
        return None

    # A send: re-check at the moment of sending that the patient may be contacted.
    decision = questionnaire_contact(q.participant, now)
    if not decision.allowed:
        q.status = S.CANCELLED
        q.cancel_reason = ",".join(decision.reasons)[:200]
        q.next_action_at = None
        q.sending_attempt = None
        q.sending_kind = ""
        q.save()
        result.cancelled += 1
        return None
    identity = getattr(q.participant, "identity", None)
    channel = channel_for(identity)
    address = channel.address_for(identity) if identity is not None else None
    kind = SendKind.INVITATION if step.action is Action.SEND_INVITATION else SendKind.REMINDER
    if address is None:
        # Nobody to mail: keep it open for the nurses (phone or paper), look again daily.
        if kind == SendKind.INVITATION:
            q.status = S.OPEN
        elif q.status == S.SENDING:
            q.status = S.REMINDED if q.reminders_sent else S.SENT
        if kind == SendKind.REMINDER:
            q.reminders_failed += 1
        q.last_error = f"no {channel.name} address"
        q.sending_attempt = None
        q.sending_kind = ""
        q.next_action_at = min(now + timedelta(days=1), q.closes_at)
        q.save()
        result.waiting += 1
        return None

    token = new_token()
    attempt = uuid.uuid4()
    QuestionnaireLink.objects.create(
        questionnaire=q,
        token_hash=token_hash(token),
        kind=kind,
        attempt=attempt,
        expires_at=q.closes_at,
    )
    q.status = S.SENDING
    q.sending_kind = kind
    q.sending_attempt = attempt
    q.sending_started_at = now
    q.next_action_at = now + timedelta(seconds=conf.sending_stale_seconds())
    q.save()
    language = getattr(identity, "preferred_language", "nl") or "nl"
    subject, text, html = render_message(
        kind=kind,
        language=language,
        link=patient_link(token),
        closes_at=q.closes_at,
        site_name=q.participant.site.name,
    )
    message = OutgoingMessage(to=address, subject=subject, text=text, html=html)
    return _Claim(q.pk, attempt, kind, message, channel)


@transaction.atomic
def _mark_sent(claim: _Claim, now: datetime) -> bool:
    q = (
        Questionnaire.objects.select_for_update()
        .filter(pk=claim.questionnaire_id, status=S.SENDING, sending_attempt=claim.attempt)
        .first()
    )
    if q is None:  # completed or cancelled while the mail was on its way
        return False
    if claim.kind == SendKind.INVITATION:
        q.status = S.SENT
        q.sent_at = now
    else:
        q.status = S.REMINDED
        q.reminders_sent += 1
        q.last_reminder_at = now
    q.attempts = 0
    q.last_error = ""
    q.sending_attempt = None
    q.sending_kind = ""
    # The next reminder (or the window close) is worked out by the next sweep.
    q.next_action_at = now
    step = decide(
        _snapshot(q),
        now=now,
        hours=conf.contact_hours(),
        reminder_days=conf.reminder_days(),
        stale_seconds=conf.sending_stale_seconds(),
    )
    if step.action is Action.WAIT and step.at:
        q.next_action_at = step.at
    q.save()
    return True


@transaction.atomic
def _mark_failed(claim: _Claim, now: datetime, error: str) -> str:
    q = (
        Questionnaire.objects.select_for_update()
        .filter(pk=claim.questionnaire_id, status=S.SENDING, sending_attempt=claim.attempt)
        .first()
    )
    if q is None:
        return "gone"
    q.attempts += 1
    q.last_error = error[:200]
    q.sending_attempt = None
    q.sending_kind = ""
    outcome = "retry"
    if claim.kind == SendKind.INVITATION:
        if q.attempts >= conf.max_send_attempts():
            q.status = S.FAILED
            q.next_action_at = None
            outcome = "failed"
        else:
            q.status = S.OPEN
    else:
        q.status = S.REMINDED if q.reminders_sent else S.SENT
        if q.attempts >= conf.max_send_attempts():
            q.reminders_failed += 1  # give this reminder up; the questionnaire stays open
            q.attempts = 0
            outcome = "reminder_given_up"
    if outcome != "failed":
        q.next_action_at = min(
            retry_time(
                failed_at=now,
                attempts=max(q.attempts, 1),
                hours=conf.contact_hours(),
                base_seconds=conf.retry_base_seconds(),
            ),
            q.closes_at,
        )
    q.save()
    return outcome


def questionnaires_sweep(*, now: datetime | None = None, limit: int | None = None) -> SweepResult:
    """Do everything that is due: invitations, reminders, retries, windows closing.

    Safe to run in several processes at once (rows are claimed with SKIP LOCKED) and
    to run again after a crash (state lives in the database). ``now`` is for tests.
    """
    result = SweepResult()
    limit = limit or conf.sweep_batch()
    budget = conf.sweep_time_budget()
    started = time.monotonic()
    handled = 0
    while handled < limit and time.monotonic() - started < budget:
        at = now or timezone.now()
        found, claim = _claim_one(at, result)
        if not found:
            break
        handled += 1
        if claim is None:
            continue
        try:
            claim.channel.send(claim.message)
        except SendFailed as exc:
            outcome = _mark_failed(claim, now or timezone.now(), exc.reason)
            logger.warning("questionnaire %s: send failed (%s)", claim.questionnaire_id, outcome)
            if outcome == "failed":
                result.failed += 1
            else:
                result.retried += 1
            result.errors.append(exc.reason)
            continue
        if _mark_sent(claim, now or timezone.now()):
            if claim.kind == SendKind.INVITATION:
                result.invitations += 1
            else:
                result.reminders += 1
    return result


@top_level
def questionnaire_send_retry(*, questionnaire: Questionnaire, user: User) -> Questionnaire:
    """A nurse asks to send a failed (or address-less) invitation again, e.g. after the
    email address was corrected: the next sweep tries afresh with a new attempt count."""
    require_write(user, _site_id(questionnaire))
    q = _lock(questionnaire)
    if q.status not in (S.FAILED, S.OPEN) or q.sent_at is not None:
        raise NotAnswerable
    if timezone.now() >= q.closes_at:
        raise NotAnswerable
    with audit_reason("invitation to be sent again"):
        q.status = S.OPEN
        q.attempts = 0
        q.last_error = ""
        q.next_action_at = timezone.now()
        q.save()
    return q


# --- answering ------------------------------------------------------------------------------
def _instrument_codes(q: Questionnaire) -> list[str]:
    return list(q.timepoint.instruments)


def _validate(code: str, answers: Mapping[str, Any], *, complete: bool) -> dict[str, str]:
    from crf import instruments

    return instruments.validate(code, answers, complete=complete)


def _score(code: str, answers: Mapping[str, Any]) -> dict[str, Any]:
    from crf import scoring

    return scoring.score(code, dict(answers))


def _upsert_response(
    q: Questionnaire, code: str, answers: Mapping[str, Any], now: datetime
) -> InstrumentResponse:
    from crf import instruments

    version = instruments.load(code).version
    response = (
        InstrumentResponse.objects.select_for_update()
        .filter(questionnaire=q, instrument=code)
        .first()
    )
    clean = {k: v for k, v in answers.items() if v is not None and v != ""}
    if response is None:
        return InstrumentResponse.objects.create(
            questionnaire=q,
            instrument=code,
            instrument_version=version,
            answers=clean,
            saved_at=now,
        )
    if response.answers != clean or response.instrument_version != version:
        response.answers = clean
        response.instrument_version = version
        response.saved_at = now
        response.save()
    return response


def _site_id(q: Questionnaire) -> int:
    """The site of the questionnaire's participant, read from the database (whose staff
    may enter and correct it)."""
    return Participant.objects.filter(pk=q.participant_id).values_list("site_id", flat=True)[0]


def _lock(q: Questionnaire) -> Questionnaire:
    return Questionnaire.objects.select_for_update().select_related("timepoint").get(pk=q.pk)


@top_level
def questionnaire_start(*, questionnaire: Questionnaire) -> Questionnaire:
    """The patient pressed "start" (a POST): note when; nothing else changes."""
    q = _lock(questionnaire)
    if q.status not in ANSWERABLE_STATUSES or timezone.now() >= q.closes_at:
        raise NotAnswerable
    if q.started_at is None:
        q.started_at = timezone.now()
        q.save(update_fields=["started_at"])
    return q


@top_level
def questionnaire_answers_save(
    *, questionnaire: Questionnaire, instrument: str, answers: Mapping[str, Any]
) -> InstrumentResponse:
    """Save one screen (one instrument) of a patient's answers. Any item may be left
    unanswered (SPEC.md §3.6); given answers must be valid."""
    q = _lock(questionnaire)
    now = timezone.now()
    if q.status not in ANSWERABLE_STATUSES or now >= q.closes_at:
        raise NotAnswerable
    if instrument not in _instrument_codes(q):
        raise UnknownInstrument(instrument)
    errors = _validate(instrument, answers, complete=False)
    if errors:
        raise InvalidAnswers({instrument: errors})
    if q.started_at is None:
        q.started_at = now
        q.save(update_fields=["started_at"])
    return _upsert_response(q, instrument, answers, now)


def _score_all(q: Questionnaire) -> dict[str, dict[str, Any]]:
    """Score every saved instrument; each response keeps its scores and the versions of
    the scoring tables used, so a later table change stays traceable."""
    from crf import scoring

    scores: dict[str, dict[str, Any]] = {}
    for response in InstrumentResponse.objects.filter(questionnaire=q).order_by("pk"):
        response_scores = _score(response.instrument, response.answers)
        tables = scoring.table_versions(response.instrument)
        if response.scores != response_scores or response.scoring_tables != tables:
            response.scores = response_scores
            response.scoring_tables = tables
            response.save(update_fields=["scores", "scoring_tables"])
        scores[response.instrument] = response_scores
    return scores


@dataclass(frozen=True)
class Unanswered:
    """What is left unanswered in a questionnaire's answers, per instrument in order."""

    by_instrument: dict[str, int]
    answered: int

    @property
    def total(self) -> int:
        return sum(self.by_instrument.values())


def unanswered(codes: list[str], answers: Mapping[str, Mapping[str, Any]]) -> Unanswered:
    """Count the applicable required items left unanswered, and the answered items."""
    from crf import instruments

    return Unanswered(
        by_instrument={
            code: len(instruments.unanswered_items(code, answers.get(code, {}))) for code in codes
        },
        answered=sum(instruments.answered_count(code, answers.get(code, {})) for code in codes),
    )


def questionnaire_unanswered(q: Questionnaire) -> Unanswered:
    """The patient's saved answers of ``q``: what the final screen says before sending."""
    saved = {r.instrument: r.answers for r in q.responses.all()}
    return unanswered(_instrument_codes(q), saved)


def _nothing_answered() -> NothingAnswered:
    return NothingAnswered(
        {"__all__": _("No question has been answered; there is nothing to save.")}
    )


@top_level
def questionnaire_submit(*, questionnaire: Questionnaire) -> bool:
    """The patient's final submit. Returns False (and changes nothing) when it was already
    submitted, so a double click or a resent form is harmless.

    Unanswered items are allowed (the page told the patient how many before sending;
    scoring applies the missing-item rules), but a questionnaire without a single answer is
    refused (:class:`NothingAnswered`): it would complete nothing and kill the link."""
    q = _lock(questionnaire)
    if q.status == S.COMPLETED:
        return False
    now = timezone.now()
    if q.status not in ANSWERABLE_STATUSES or now >= q.closes_at:
        raise NotAnswerable
    saved = {r.instrument: r.answers for r in InstrumentResponse.objects.filter(questionnaire=q)}
    errors = {}
    for code in _instrument_codes(q):
        problems = _validate(code, saved.get(code, {}), complete=False)
        if problems:
            errors[code] = problems
    if errors:
        raise InvalidAnswers(errors)
    if unanswered(_instrument_codes(q), saved).answered == 0:
        raise _nothing_answered()
    q.scores = _score_all(q)
    q.status = S.COMPLETED
    q.completed_on = timezone.localdate(now)
    q.completed_at = now
    q.completion_recorded_at = now
    q.outside_window = not q.first_day <= q.completed_on <= q.last_day
    q.mode = Mode.EPRO
    q.next_action_at = None
    q.sending_attempt = None
    q.sending_kind = ""
    q.save()
    return True


ENTERABLE_STATUSES = (
    S.SCHEDULED,
    S.OPEN,
    S.SENDING,
    S.SENT,
    S.REMINDED,
    S.MISSED,
    S.FAILED,
)


def _day(day: date) -> str:
    return formats.date_format(day, "j M Y")


def _completion_refusal(q: Questionnaire, reason: str, *, stopped_on: date | None) -> str:
    """The message for a refused completion date, naming the stored value it contradicts."""
    from cohort.models import ConsentElement
    from cohort.selectors import current_consents

    participant = q.participant
    if reason == "future":
        return _("The date answered cannot be in the future.")
    if reason == "before_registration":
        return _("The date answered is before the registration in the cohort (%(date)s).") % {
            "date": _day(timezone.localtime(participant.registered_at).date())
        }
    if reason == "before_consent":
        consent = current_consents(participant).get(ConsentElement.PROMS)
        if consent is not None and consent.answer:
            return _(
                "The date answered is before consent (b) for questionnaires was given (%(date)s)."
            ) % {"date": _day(consent.given_on)}
        return _("No consent (b) for questionnaires is recorded for that date.")
    if reason == "after_death":
        return _("The date answered is after the date of death (%(date)s).") % {
            "date": _day(participant.death.died_on)
        }
    assert stopped_on is not None, reason  # the last refusal comes with its withdrawal date
    return _(
        "The date answered is after the withdrawal from questionnaires (effective %(date)s)."
    ) % {"date": _day(stopped_on)}


def _check_completion_day(q: Questionnaire, day: date, clock: day_time | None) -> CompletionDay:
    """The pure rule (crf.windows.completion_day_check) over the participant's records."""
    from cohort.models import ConsentElement, Death, Withdrawal
    from cohort.selectors import STOPS_QUESTIONNAIRES, current_consents

    participant = q.participant
    consent = current_consents(participant, day).get(ConsentElement.PROMS)
    death = Death.objects.filter(participant=participant).first()
    stop = (
        Withdrawal.objects.filter(participant=participant, scope__in=STOPS_QUESTIONNAIRES)
        .order_by("effective_on")
        .first()
    )
    stopped_on = stop.effective_on if stop else None
    verdict = completion_day_check(
        day,
        clock=clock,
        now=timezone.now(),
        registered_on=timezone.localtime(participant.registered_at).date(),
        consent_in_force=consent is not None and consent.answer,
        died_on=death.died_on if death else None,
        stopped_on=stopped_on,
        first_day=q.first_day,
        last_day=q.last_day,
    )
    if verdict.refusal:
        raise EntryRefused(
            {"completed_on": _completion_refusal(q, verdict.refusal, stopped_on=stopped_on)}
        )
    return verdict


@top_level
def questionnaire_enter(
    *,
    questionnaire: Questionnaire,
    user: User,
    mode: str,
    completed_on: date,
    completed_time: day_time | None = None,
    answers: Mapping[str, Mapping[str, Any]],
    confirm_unanswered: int | None = None,
    confirm_outside_window: date | None = None,
) -> Questionnaire:
    """A nurse enters a questionnaire answered on paper or by phone (mode recorded).

    ``completed_on`` is the date the patient answered; ``completed_time`` only when it is
    known (no time is invented). Refused, with nothing written:

    - values that are not valid (:class:`InvalidAnswers`);
    - an entry without a single answered item (:class:`NothingAnswered`);
    - a date in the future, before registration, before consent (b), after death or after
      a withdrawal from questionnaires (:class:`EntryRefused`, naming the stored date).

    Items may be left unanswered (the scoring rules handle missing items), and the date may
    lie outside the timepoint's window, but each only when confirmed: unless
    ``confirm_unanswered`` equals the number of unanswered items and
    ``confirm_outside_window`` equals ``completed_on``, :class:`ConfirmationRequired` says
    what to confirm. A confirmed out-of-window date is flagged ``outside_window``.
    Only data entry staff of the participant's site may enter (``require_write``).
    """
    require_write(user, _site_id(questionnaire))
    if mode not in (Mode.PAPER, Mode.PHONE):
        raise InvalidAnswers({"__all__": {"mode": "paper or phone"}})
    q = _lock(questionnaire)
    if q.status == S.COMPLETED:
        raise AlreadyCompleted
    if q.status not in ENTERABLE_STATUSES:
        raise NotAnswerable
    codes = _instrument_codes(q)
    unknown = set(answers) - set(codes)
    if unknown:
        raise UnknownInstrument(", ".join(sorted(unknown)))
    errors = {}
    for code in codes:
        problems = _validate(code, answers.get(code, {}), complete=False)
        if problems:
            errors[code] = problems
    if errors:
        raise InvalidAnswers(errors)
    missing = unanswered(codes, answers)
    if missing.answered == 0:
        raise _nothing_answered()
    verdict = _check_completion_day(q, completed_on, completed_time)
    if (missing.total and confirm_unanswered != missing.total) or (
        verdict.outside_window and confirm_outside_window != completed_on
    ):
        raise ConfirmationRequired(
            unanswered=missing.total,
            unanswered_by_instrument={c: n for c, n in missing.by_instrument.items() if n},
            outside_window=verdict.outside_window,
            completed_on=completed_on,
            first_day=q.first_day,
            last_day=q.last_day,
        )
    now = timezone.now()
    for code in codes:
        _upsert_response(q, code, answers.get(code, {}), now)
    q.scores = _score_all(q)
    q.status = S.COMPLETED
    q.completed_on = completed_on
    q.completed_at = (
        timezone.make_aware(datetime.combine(completed_on, completed_time))
        if completed_time is not None
        else None
    )
    q.completion_recorded_at = now
    q.outside_window = verdict.outside_window
    q.mode = mode
    q.entered_by = user
    q.next_action_at = None
    q.sending_attempt = None
    q.sending_kind = ""
    q.save()
    return q


@top_level
def questionnaire_answers_correct(
    *,
    questionnaire: Questionnaire,
    instrument: str,
    answers: Mapping[str, Any],
    user: User,
    reason: str,
) -> Questionnaire:
    """Correct the answers of one instrument of a completed questionnaire, with a reason;
    the scores are recomputed and both changes carry the reason in the audit trail."""
    require_write(user, _site_id(questionnaire))
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired
    q = _lock(questionnaire)
    if q.status != S.COMPLETED:
        raise NotAnswerable
    if instrument not in _instrument_codes(q):
        raise UnknownInstrument(instrument)
    errors = _validate(instrument, answers, complete=False)
    if errors:
        raise InvalidAnswers({instrument: errors})
    others = {r.instrument: r.answers for r in q.responses.all() if r.instrument != instrument}
    if unanswered(_instrument_codes(q), others | {instrument: answers}).answered == 0:
        raise _nothing_answered()
    with audit_reason(reason):
        _upsert_response(q, instrument, answers, timezone.now())
        q.scores = _score_all(q)
        q.save(update_fields=["scores"])
    return q


# --- clinical records (case report forms) ---------------------------------------------------
# One model for every clinical form (crf.models.ClinicalRecord); the definition decides the
# items, their validation and the computed values. Every write is a top-level service that
# locks the record (or, for a new one, the participant), checks write access at the
# participant's site, refuses stale revisions, and refreshes the participant's expected
# forms (crf.models.FormExpectation) in the same transaction.


class RecordError(Refusal):
    """Base of the clinical record refusals: a conflict with the record's state (409);
    those about the input are also :class:`~core.refusals.Invalid` (400)."""


class RecordInvalid(RecordError, Invalid):
    """The data, the form or the occurrence is not valid: field errors by item code
    (``<item>-<row>-<field>`` inside a repeat)."""

    code = "invalid_record"
    default_message = gettext_lazy("Please correct the marked answers.")


class RecordChanged(RecordError):
    """Optimistic concurrency: the record changed since the revision the save was based on.
    Nothing is overwritten; ``changed_by``/``changed_at``/``revision`` say by whom, when,
    and what the record is now."""

    code = "record_changed"

    def __init__(self, record: ClinicalRecord):
        self.changed_by = str(record.updated_by)
        self.changed_at = record.updated_at
        self.revision = record.revision
        super().__init__(
            _(
                "This form was changed by %(user)s on %(when)s (now revision %(revision)s) "
                "after you opened it. Nothing was saved: reload it and enter your change again."
            )
            % {
                "user": self.changed_by,
                "when": formats.date_format(
                    timezone.localtime(record.updated_at), "DATETIME_FORMAT"
                ),
                "revision": record.revision,
            }
        )


class RecordVoided(RecordError):
    code = "record_voided"
    default_message = gettext_lazy(
        "This entry was voided (made in error) and can no longer change."
    )


class RecordReasonRequired(RecordError, Invalid):
    code = "reason_required"
    field = "reason"
    default_message = gettext_lazy("Give a reason for changing a completed form.")


def _clinical_definition(form_code: str) -> Instrument:
    try:
        definition = instruments.load(form_code)
    except instruments.UnknownInstrument:
        definition = None
    if definition is None or definition.kind != "clinical":
        raise RecordInvalid(_("Unknown clinical form."), field="form_code")
    return definition


def _allocation_for_entry(allocation: Allocation) -> Allocation:
    if allocation.status != AllocationStatus.ACTIVE:
        raise RecordError(
            _("This allocation was corrected (randomised in error): no forms are entered."),
            reasons=["corrected_in_error"],
        )
    return allocation


def _next_occurrence(*, allocation: Allocation, form_code: str) -> str:
    taken = ClinicalRecord.objects.filter(
        participant_id=allocation.participant_id, trial_id=allocation.trial_id, form_code=form_code
    ).values_list("occurrence", flat=True)
    numbers = [int(o) for o in taken if o.isdigit()]
    return str(max(numbers, default=0) + 1)


def _check_occurrence(
    definition: Instrument, occurrence: str | None, allocation: Allocation
) -> str:
    """The occurrence of a new record: fixed for once-only forms, a timepoint code of the
    follow-up form, the next number for events and logs when not given."""
    rule = expected.rule_for(definition.code)
    if rule.occurs == "once":
        if occurrence not in (None, "", "1"):
            raise RecordInvalid(_("This form occurs once."), field="occurrence")
        return "1"
    if rule.occurs == "per_timepoint":
        if occurrence not in rule.timepoints:
            raise RecordInvalid(
                _("Choose one of the timepoints: %(codes)s.")
                % {"codes": ", ".join(rule.timepoints)},
                field="occurrence",
            )
        return str(occurrence)
    if occurrence in (None, ""):
        return _next_occurrence(allocation=allocation, form_code=definition.code)
    if not str(occurrence).isdigit() or int(str(occurrence)) < 1:
        raise RecordInvalid(_("An occurrence is a number from 1."), field="occurrence")
    return str(int(str(occurrence)))


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _prepared_data(
    definition: Instrument,
    existing: Mapping[str, Any],
    changes: Mapping[str, Any],
    *,
    complete: bool,
) -> dict[str, Any]:
    """``existing`` with ``changes`` applied (``None`` or empty clears an item), answers that
    no longer apply dropped, computed items recomputed; refuses invalid data
    (:class:`RecordInvalid`). A value sent for an item that does not apply is an error; one
    kept from before that stopped applying (its condition changed) is dropped."""
    if not isinstance(changes, Mapping):
        raise RecordInvalid(errors={"data": [_("Send the answers as an object of items.")]})
    computed_codes = {item.code for item in definition.computed_items}
    merged = {k: v for k, v in existing.items() if k not in computed_codes}
    for key, value in changes.items():
        if _blank(value):
            merged.pop(key, None)
        else:
            merged[key] = value
    sent = {key for key, value in changes.items() if not _blank(value)}
    applicable = {item.code for item in instruments.applicable_items(definition, merged)}
    for key in [k for k in merged if k not in applicable and k not in sent]:
        del merged[key]
    errors = instruments.validate(definition, merged, complete=complete)
    if errors:
        raise RecordInvalid(errors=errors)
    return instruments.compute(definition, merged)


def _lock_record(record: ClinicalRecord) -> ClinicalRecord:
    """Lock the participant, then the record: every record write of one participant takes
    the participant's row first (as a new record does), so two saves for one participant
    queue in one order and their refresh of the expected forms cannot deadlock."""
    Participant.objects.select_for_update().filter(pk=record.participant_id).first()
    return (
        ClinicalRecord.objects.select_for_update(of=("self",))
        .select_related("participant", "definition", "updated_by")
        .get(pk=record.pk)
    )


def _check_revision(record: ClinicalRecord, revision: int | None) -> None:
    if revision is None or int(revision) != record.revision:
        raise RecordChanged(record)


@top_level
def clinical_record_create(
    *,
    user: User,
    allocation: Allocation,
    form_code: str,
    data: Mapping[str, Any],
    occurrence: str | None = None,
    complete: bool = False,
) -> ClinicalRecord:
    """Start a clinical form for a randomised participant: a draft (anything well-typed) or,
    with ``complete``, a completed form (every applicable required item answered).
    ``occurrence``: the timepoint code of a follow-up form; for events and logs the next
    number when not given. Refuses a second record of the same occurrence."""
    require_write(user, allocation.site_id)
    definition = _clinical_definition(form_code)
    _lock_participant(allocation.participant)
    allocation = _allocation_for_entry(
        Allocation.objects.select_related("participant", "arm").get(pk=allocation.pk)
    )
    occurrence = _check_occurrence(definition, occurrence, allocation)
    _refuse_locked(trial_id=allocation.trial_id, participant_id=allocation.participant_id)
    if ClinicalRecord.objects.filter(
        participant_id=allocation.participant_id,
        trial_id=allocation.trial_id,
        form_code=form_code,
        occurrence=occurrence,
    ).exists():
        raise RecordError(
            _("This form was already started; open it to continue."),
            reasons=["record_exists"],
        )
    values = _prepared_data(definition, {}, data, complete=complete)
    now = timezone.now()
    with _default_reason(f"clinical form {form_code} entered"):
        record = ClinicalRecord.objects.create(
            trial_id=allocation.trial_id,
            participant=allocation.participant,
            form_code=form_code,
            occurrence=occurrence,
            definition=current_definition(form_code),
            data=values,
            status=RecordStatus.COMPLETE if complete else RecordStatus.DRAFT,
            created_by=user,
            updated_by=user,
            created_at=now,
            updated_at=now,
            completed_at=now if complete else None,
        )
        form_expectations_refresh(allocation=allocation)
        _check_queries_sync(record, allocation=allocation, by=user)
    return record


@top_level
def clinical_record_update(
    *,
    user: User,
    record: ClinicalRecord,
    revision: int | None,
    data: Mapping[str, Any],
    complete: bool | None = None,
    reason: str = "",
) -> ClinicalRecord:
    """Change a record: ``data`` holds the changed items (``None`` clears one); ``revision``
    the revision the change is based on (a stale one is refused with who changed it and
    when). ``complete`` True completes a draft; a completed (or not done) form stays
    completed and changes only with a ``reason`` (audited with each item's old and new
    value). A save that changes nothing writes nothing."""
    record = _lock_record(record)
    require_write(user, record.participant.site_id)
    if record.status == RecordStatus.VOIDED:
        raise RecordVoided()
    _check_revision(record, revision)
    _refuse_locked(
        trial_id=record.trial_id, participant_id=record.participant_id, record_id=record.pk
    )
    definition = definition_of(record.definition)
    final = record.is_final
    completing = bool(complete) or record.status == RecordStatus.COMPLETE
    values = _prepared_data(definition, record.data, data, complete=completing)
    status = RecordStatus.COMPLETE if completing else RecordStatus.DRAFT
    if values == record.data and status == record.status:
        return record
    reason = (reason or "").strip()
    if final and not reason:
        raise RecordReasonRequired()
    now = timezone.now()
    before = record.data
    record.data = values
    if status == RecordStatus.COMPLETE and record.status != RecordStatus.COMPLETE:
        record.completed_at = now
    record.status = status
    record.status_reason = ""
    record.revision += 1
    record.updated_by = user
    record.updated_at = now
    text = reason or (
        f"clinical form {record.form_code} completed"
        if status == RecordStatus.COMPLETE
        else f"clinical form {record.form_code} draft saved"
    )
    with audit_reason(text):
        record.save()
        _signatures_invalidate(record, by=user)
        _verifications_clear(record, before, by=user)
        allocation = _allocation_of(record)
        form_expectations_refresh(allocation=allocation)
        _check_queries_sync(record, allocation=allocation, by=user)
    return record


@top_level
def clinical_record_not_done(
    *,
    user: User,
    allocation: Allocation,
    form_code: str,
    occurrence: str | None,
    reason: str,
    revision: int | None = None,
) -> ClinicalRecord:
    """Record that an expected form was not done (e.g. the visit was missed), with the
    reason; an existing draft needs its ``revision``, a completed form cannot be "not done"
    (correct it instead). Logs have nothing expected and cannot be "not done"."""
    require_write(user, allocation.site_id)
    definition = _clinical_definition(form_code)
    if definition.occurs == "log":
        raise RecordInvalid(
            _("A log has no expected entries to mark as not done."), field="form_code"
        )
    reason = (reason or "").strip()
    if not reason:
        raise RecordInvalid(_("Give the reason the form was not done."), field="reason")
    if len(reason) > 2000:
        raise RecordInvalid(_("Use at most 2000 characters."), field="reason")
    _lock_participant(allocation.participant)
    allocation = _allocation_for_entry(
        Allocation.objects.select_related("participant", "arm").get(pk=allocation.pk)
    )
    occurrence = _check_occurrence(definition, occurrence or "1", allocation)
    _refuse_locked(trial_id=allocation.trial_id, participant_id=allocation.participant_id)
    record = (
        ClinicalRecord.objects.select_for_update(of=("self",))
        .select_related("updated_by", "definition")
        .filter(
            participant_id=allocation.participant_id,
            trial_id=allocation.trial_id,
            form_code=form_code,
            occurrence=occurrence,
        )
        .first()
    )
    now = timezone.now()
    with audit_reason(f"not done: {reason}"):
        if record is None:
            record = ClinicalRecord.objects.create(
                trial_id=allocation.trial_id,
                participant=allocation.participant,
                form_code=form_code,
                occurrence=occurrence,
                definition=current_definition(form_code),
                data={},
                status=RecordStatus.NOT_DONE,
                status_reason=reason,
                created_by=user,
                updated_by=user,
                created_at=now,
                updated_at=now,
            )
        else:
            if record.status in (RecordStatus.VOIDED,):
                raise RecordVoided()
            _check_revision(record, revision)
            _refuse_locked(
                trial_id=record.trial_id, participant_id=record.participant_id, record_id=record.pk
            )
            if record.status == RecordStatus.COMPLETE:
                raise RecordError(
                    _("A completed form cannot be marked as not done; correct it instead."),
                    reasons=["record_complete"],
                )
            record.status = RecordStatus.NOT_DONE
            record.status_reason = reason
            record.revision += 1
            record.updated_by = user
            record.updated_at = now
            record.save()
        form_expectations_refresh(allocation=allocation)
    return record


@top_level
def clinical_record_void(
    *, user: User, record: ClinicalRecord, revision: int | None, reason: str
) -> ClinicalRecord:
    """Void an event or log entry made in error (never deleted): it stays on the record
    with who, when and why, and counts as no entry."""
    record = _lock_record(record)
    require_write(user, record.participant.site_id)
    if record.status == RecordStatus.VOIDED:
        raise RecordVoided()
    _check_revision(record, revision)
    _refuse_locked(
        trial_id=record.trial_id, participant_id=record.participant_id, record_id=record.pk
    )
    if expected.rule_for(record.form_code).occurs not in ("log", "per_event"):
        raise RecordError(
            _("Only event and log entries are voided; correct this form instead."),
            reasons=["not_voidable"],
        )
    reason = (reason or "").strip()
    if not reason:
        raise RecordInvalid(_("Give the reason the entry is void."), field="reason")
    if len(reason) > 2000:
        raise RecordInvalid(_("Use at most 2000 characters."), field="reason")
    record.status = RecordStatus.VOIDED
    record.status_reason = reason
    record.revision += 1
    record.updated_by = user
    record.updated_at = timezone.now()
    with audit_reason(f"voided: {reason}"):
        record.save()
        _signatures_invalidate(record, by=user)
        allocation = _allocation_of(record)
        form_expectations_refresh(allocation=allocation)
        _check_queries_sync(record, allocation=allocation, by=user)
    return record


def _allocation_of(record: ClinicalRecord) -> Allocation:
    return Allocation.objects.select_related("participant", "arm").get(
        trial_id=record.trial_id, participant_id=record.participant_id
    )


# --- expected forms (cache for the worklist) --------------------------------------------------
@transaction.atomic
def form_expectations_refresh(*, allocation: Allocation) -> int:
    """Recompute the participant's expected forms (:func:`crf.expected.expected_forms`) into
    :class:`crf.models.FormExpectation`; rows no longer expected are removed (a cache, not
    trial data). Runs inside the caller's transaction; returns the number of rows."""
    from crf.selectors import expected_for, records_of

    existing = records_of(allocation=allocation)
    records = {(r.form_code, r.occurrence): r.pk for r in existing}
    rows = expected_for(allocation=allocation, records=existing)
    keep = []
    now = timezone.now()
    for row in rows:
        if row.occurrence is None:  # "add another": never overdue, not stored
            continue
        keep.append(
            FormExpectation(
                trial_id=allocation.trial_id,
                participant_id=allocation.participant_id,
                site_id=allocation.participant.site_id,
                form_code=row.form_code,
                occurrence=row.occurrence,
                window_start=row.window.start,
                window_end=row.window.end,
                required=row.required,
                # "overdue" is a matter of the day asked: stored as not started
                status="not_started" if row.status == "overdue" else row.status,
                record_id=records.get((row.form_code, row.occurrence)),
                refreshed_at=now,
            )
        )
    # rows no longer expected go (one statement); the rest are upserted (one statement)
    kept: dict[str, list[str]] = {}
    for expectation in keep:
        kept.setdefault(expectation.form_code, []).append(expectation.occurrence)
    still = Q(pk__in=[])
    for form_code, occurrences in kept.items():
        still |= Q(form_code=form_code, occurrence__in=occurrences)
    FormExpectation.objects.filter(
        participant_id=allocation.participant_id, trial_id=allocation.trial_id
    ).exclude(still).delete()
    FormExpectation.objects.bulk_create(
        keep,
        update_conflicts=True,
        unique_fields=["participant", "trial", "form_code", "occurrence"],
        update_fields=[
            "site",
            "window_start",
            "window_end",
            "required",
            "status",
            "record",
            "refreshed_at",
        ],
    )
    return len(keep)


def form_expectations_on_day0(
    *, participant: Participant, trial: Trial, day0: date, is_actual: bool
) -> None:
    """``core.hooks.treatment_started``: the windows move with day 0."""
    allocation = (
        Allocation.objects.select_related("participant", "arm")
        .filter(participant=participant, trial=trial)
        .first()
    )
    if allocation is not None:
        form_expectations_refresh(allocation=allocation)


def form_expectations_on_allocation(*, allocation: Allocation) -> None:
    """``core.hooks.allocation_changed``: a TwiCs decision or a correction."""
    form_expectations_refresh(
        allocation=Allocation.objects.select_related("participant", "arm").get(pk=allocation.pk)
    )


def form_expectations_on_contact_stopped(*, participant: Participant, reason: str) -> None:
    """``core.hooks.contact_stopped``: after a death no more forms are expected."""
    for allocation in Allocation.objects.select_related("participant", "arm").filter(
        participant=participant
    ):
        form_expectations_refresh(allocation=allocation)


DEVIATION_FORM = "deviation"


def deviation_log_entry(
    *,
    allocation: Allocation,
    by: User,
    occurred_on: date,
    deviation_type: str,
    description: str,
) -> ClinicalRecord:
    """``core.hooks.deviation_reported``: a deviation recorded elsewhere (a control-arm
    disclosure in randomization) becomes an entry of the participant's protocol deviation
    log, in the same transaction, as a draft: what the recording screen knew is filled in,
    the rest (who disclosed, reported to the sponsor) the nurse completes on the log."""
    return clinical_record_create.nested(
        user=by,
        allocation=allocation,
        form_code=DEVIATION_FORM,
        data={
            "occurred_on": occurred_on.isoformat(),
            "deviation_type": deviation_type,
            "description": description,
        },
    )


# --- data review: queries -------------------------------------------------------------------
# Automatic queries follow the definition's edit checks: every save runs them against the
# record's context (crf.selectors.record_context) and opens a query per new finding (check
# and item), closing the open ones whose finding is gone ("resolved by a data change").
# Manual queries are raised by a monitor (data manager) of the site, answered by the site's
# data entry staff, and closed or re-opened by a monitor. Queries never change data.
REVIEWERS = frozenset({"data_manager"})


class QueryError(Refusal):
    """A query step that does not fit the query's state (409) or its input (400)."""


class QueryInvalid(QueryError, Invalid):
    code = "invalid_query"


@dataclass(frozen=True)
class QuerySync:
    opened: int = 0
    closed: int = 0


def _open_check_queries(record_ids: list[int]) -> QuerySet[DataQuery]:
    """The unresolved automatic queries of these records, locked."""
    return (
        DataQuery.objects.select_for_update()
        .filter(record_id__in=record_ids, origin=QueryOrigin.CHECK)
        .exclude(status=QueryStatus.CLOSED)
        .order_by("pk")
    )


def _check_queries_sync(
    record: ClinicalRecord,
    *,
    allocation: Allocation,
    by: User | None,
    context: Mapping[str, Any] | None = None,
    open_queries: list[DataQuery] | None = None,
) -> QuerySync:
    """Open and close the record's automatic queries to match its checks' findings now
    (``context``: the record context, ``open_queries``: its unresolved automatic queries,
    locked, when the caller has them already)."""
    from crf.selectors import record_context

    definition = definition_of(record.definition)
    if open_queries is None:
        open_queries = list(_open_check_queries([record.pk]))
    open_now = {(q.check_name, q.item): q for q in open_queries}
    found: dict[tuple[str, str], str] = {}
    if record.status != RecordStatus.VOIDED and definition.checks:
        if context is None:
            context = record_context(allocation=allocation)
        for name, finding in instruments.check_findings(definition, record.data, context):
            found.setdefault((name, finding.item), str(finding.message))
    now = timezone.now()
    opened = closed = 0
    for key, query in open_now.items():
        if key in found:
            continue
        query.status = QueryStatus.CLOSED
        query.closed_at = query.updated_at = now
        query.save(update_fields=["status", "closed_at", "updated_at"])
        QueryMessage.objects.create(
            query=query,
            action=QueryAction.RESOLVED,
            by=by,
            at=now,
            text="" if record.status != RecordStatus.VOIDED else "entry voided",
        )
        closed += 1
    for (name, item), message in found.items():
        if (name, item) in open_now:
            continue
        query = DataQuery.objects.create(
            record=record,
            item=item,
            origin=QueryOrigin.CHECK,
            check_name=name,
            text=message,
            raised_at=now,
            updated_at=now,
        )
        QueryMessage.objects.create(query=query, action=QueryAction.RAISE, text=message, at=now)
        opened += 1
    return QuerySync(opened=opened, closed=closed)


def _lock_query(query: DataQuery) -> DataQuery:
    return (
        DataQuery.objects.select_for_update(of=("self",))
        .select_related("record__participant")
        .get(pk=query.pk)
    )


def _query_text(text: str, *, required: bool = True) -> str:
    text = (text or "").strip()
    if required and not text:
        raise QueryInvalid(_("Write the question or answer."), field="text")
    if len(text) > 2000:
        raise QueryInvalid(_("Use at most 2000 characters."), field="text")
    return text


@top_level
def query_raise(
    *, user: User, record: ClinicalRecord, item: str, text: str, suggested_value: Any = None
) -> DataQuery:
    """A monitor (data manager of the site) asks about one item (``item`` empty: the
    whole record)."""
    record = ClinicalRecord.objects.select_related("participant", "definition").get(pk=record.pk)
    require_write(user, record.participant.site_id, roles=REVIEWERS)
    if record.status == RecordStatus.VOIDED:
        raise RecordVoided()
    definition = definition_of(record.definition)
    if item and not definition.has_item(item.split("-")[0]):
        raise QueryInvalid(_("This form has no such item."), field="item")
    text = _query_text(text)
    now = timezone.now()
    with audit_reason("query raised"):
        query = DataQuery.objects.create(
            record=record,
            item=item,
            origin=QueryOrigin.MANUAL,
            text=text,
            suggested_value=suggested_value,
            raised_by=user,
            raised_at=now,
            updated_at=now,
        )
        QueryMessage.objects.create(
            query=query, action=QueryAction.RAISE, text=text, by=user, at=now
        )
    return query


def _step(query: DataQuery, *, action: str, status: str, text: str, user: User) -> DataQuery:
    now = timezone.now()
    query.status = status
    query.updated_at = now
    query.closed_at = now if status == QueryStatus.CLOSED else None
    with audit_reason(f"query {action}"):
        query.save(update_fields=["status", "updated_at", "closed_at"])
        QueryMessage.objects.create(query=query, action=action, text=text, by=user, at=now)
    return query


@top_level
def query_answer(*, user: User, query: DataQuery, text: str) -> DataQuery:
    """The site answers an open query (a data change is made on the form, with its own
    reason for change; the answer itself changes no data)."""
    query = _lock_query(query)
    require_write(user, query.record.participant.site_id)
    if query.status != QueryStatus.OPEN:
        raise QueryError(_("Only an open query can be answered."), reasons=["not_open"])
    return _step(
        query,
        action=QueryAction.ANSWER,
        status=QueryStatus.ANSWERED,
        text=_query_text(text),
        user=user,
    )


@top_level
def query_close(*, user: User, query: DataQuery, text: str = "") -> DataQuery:
    """A monitor closes an open or answered query."""
    query = _lock_query(query)
    require_write(user, query.record.participant.site_id, roles=REVIEWERS)
    if query.status == QueryStatus.CLOSED:
        raise QueryError(_("This query is already closed."), reasons=["closed"])
    return _step(
        query,
        action=QueryAction.CLOSE,
        status=QueryStatus.CLOSED,
        text=_query_text(text, required=False),
        user=user,
    )


@top_level
def query_reopen(*, user: User, query: DataQuery, text: str) -> DataQuery:
    """A monitor re-opens a closed query, saying why."""
    query = _lock_query(query)
    require_write(user, query.record.participant.site_id, roles=REVIEWERS)
    if query.status != QueryStatus.CLOSED:
        raise QueryError(_("Only a closed query can be re-opened."), reasons=["not_closed"])
    if query.origin == QueryOrigin.CHECK:
        raise QueryError(
            _("An edit check's query re-opens by itself when the finding returns."),
            reasons=["automatic"],
        )
    return _step(
        query, action=QueryAction.REOPEN, status=QueryStatus.OPEN, text=_query_text(text), user=user
    )


@dataclass
class RecheckResult:
    records: int = 0
    opened: int = 0
    closed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"records": self.records, "opened": self.opened, "closed": self.closed}


def records_recheck(
    *,
    form_code: str | None = None,
    batch: int = 200,
    progress: Callable[[int, int], None] | None = None,
) -> RecheckResult:
    """Re-run the edit checks over every record (of ``form_code``) after a rule change:
    automatic queries are opened and closed to match, in short transactions of ``batch``
    records (each record locked with its participant, as a save would). Idempotent: a
    second run changes nothing. ``progress(done, total)`` is called after each batch."""
    from crf.selectors import record_context

    qs = ClinicalRecord.objects.exclude(status=RecordStatus.NOT_DONE)
    if form_code:
        qs = qs.filter(form_code=form_code)
    # a participant's records next to each other: its context is read once per batch (a
    # re-run changes no data, so the context of the checks cannot change under it)
    ids = list(qs.order_by("participant_id", "pk").values_list("pk", flat=True))
    result = RecheckResult()
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        with transaction.atomic(), audit_reason("edit checks re-run"):
            # the participants' rows first, in one order, as every record write takes them
            participants = sorted(
                set(
                    ClinicalRecord.objects.filter(pk__in=chunk).values_list(
                        "participant_id", flat=True
                    )
                )
            )
            list(
                Participant.objects.select_for_update()
                .filter(pk__in=participants)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            records = (
                ClinicalRecord.objects.select_for_update(of=("self",))
                .select_related("participant", "definition", "updated_by")
                .filter(pk__in=chunk)
                .order_by("participant_id", "pk")
            )
            contexts: dict[tuple[int, int], tuple[Allocation, dict[str, Any]]] = {}
            queries: dict[int, list[DataQuery]] = {pk: [] for pk in chunk}
            for query in _open_check_queries(chunk):
                queries[query.record_id].append(query)
            for record in records:
                key = (record.trial_id, record.participant_id)
                if key not in contexts:
                    allocation = _allocation_of(record)
                    contexts[key] = (allocation, record_context(allocation=allocation))
                allocation, context = contexts[key]
                sync = _check_queries_sync(
                    record,
                    allocation=allocation,
                    by=None,
                    context=context,
                    open_queries=queries[record.pk],
                )
                result.records += 1
                result.opened += sync.opened
                result.closed += sync.closed
        if progress is not None:
            progress(min(start + batch, len(ids)), len(ids))
    return result


class RecheckBusy(Refusal):
    status_code = 409

    def __init__(self, run: RecheckRun):
        super().__init__(
            _("A re-check of these forms is already under way (%(done)s of %(total)s records).")
            % {"done": run.done, "total": run.total if run.total is not None else "?"},
            reasons=["recheck_running"],
        )


def recheck_request(*, user: User, form_code: str = "") -> RecheckRun:
    """A data manager asks for the edit checks to be re-run over every record of a form
    (``""``: every form) after a rule change; a Celery worker runs it
    (:func:`recheck_run`) once the request is committed. One run per form at a time."""
    from core.access import access_for

    if access_for(user).site_ids(REVIEWERS) is not None:  # every site's records
        raise NotAllowed(_("Only a sponsor-wide data manager re-runs the edit checks."))
    if form_code and form_code not in expected.FORM_CODES:
        raise RecordInvalid(_("Choose one of the clinical forms, or all forms."), field="form_code")
    with transaction.atomic():
        # one request at a time per form: the request rows of that form, locked
        busy = (
            RecheckRun.objects.select_for_update()
            .filter(
                form_code__in=[form_code, ""] if form_code else list(expected.FORM_CODES) + [""],
                status__in=[RecheckStatus.QUEUED, RecheckStatus.RUNNING],
            )
            .first()
        )
        if busy is not None:
            raise RecheckBusy(busy)
        run = RecheckRun.objects.create(form_code=form_code, requested_by=user)

        def enqueue() -> None:
            from crf.tasks import records_recheck as task

            task.delay(form_code=form_code or None, run_id=run.pk)

        transaction.on_commit(enqueue)
    return run


def recheck_run(*, run_id: int | None, form_code: str | None) -> RecheckResult:
    """Run a requested re-check (the Celery task's body), its progress written to its
    :class:`RecheckRun` after each batch; a failure is written there too and re-raised.
    A run already done is not repeated (a redelivered task does nothing)."""
    run = None
    if run_id is not None:
        run = RecheckRun.objects.filter(pk=run_id).first()
        if run is None or run.status == RecheckStatus.DONE:
            return RecheckResult()
        RecheckRun.objects.filter(pk=run.pk).update(
            status=RecheckStatus.RUNNING, started_at=timezone.now(), done=0
        )

    def progress(done: int, total: int) -> None:
        if run is not None:
            RecheckRun.objects.filter(pk=run.pk).update(done=done, total=total)

    try:
        result = records_recheck(form_code=form_code, progress=progress)
    except Exception as exc:
        if run is not None:
            RecheckRun.objects.filter(pk=run.pk).update(
                status=RecheckStatus.FAILED,
                finished_at=timezone.now(),
                error=f"{exc.__class__.__name__}: {exc}"[:500],
            )
        raise
    if run is not None:
        RecheckRun.objects.filter(pk=run.pk).update(
            status=RecheckStatus.DONE,
            finished_at=timezone.now(),
            done=result.records,
            total=result.records,
            opened=result.opened,
            closed=result.closed,
        )
    return result


# --- data review: e-signatures --------------------------------------------------------------
SIGNATURE_MEANING = gettext_lazy("I confirm that the data in this form are complete and accurate.")
CASEBOOK_MEANING = gettext_lazy(
    "I confirm that the data in this participant's casebook are complete and accurate."
)


class SignatureRefused(RecordError):
    code = "signature_refused"


class WrongPassword(SignatureRefused, NotAllowed):
    code = "wrong_password"
    field = "password"
    default_message = gettext_lazy("The password is not correct. Nothing was signed.")


def signed_content_sha256(records: list[ClinicalRecord]) -> str:
    """The SHA-256 of what a signature covers: per record its form, occurrence, definition
    code and version, status and data, in a canonical JSON form (sorted keys, records by
    form and occurrence), so the same content always gives the same hash."""
    import json

    content = [
        {
            "form": r.form_code,
            "occurrence": r.occurrence,
            "definition": [r.definition.code, r.definition.version],
            "status": r.status,
            "data": r.data,
        }
        for r in sorted(records, key=lambda r: (r.form_code, r.occurrence))
    ]
    raw = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _require_site_investigator(user: User, site_id: int) -> None:
    from core.access import access_for

    if not any(g.role == "investigator" and g.site_id == site_id for g in access_for(user).grants):
        raise NotAllowed(_("Only an investigator of the participant's site may sign."))


def _confirm_password(user: User, password: str, request: Any) -> None:
    """Re-entry of the password (21 CFR 11.200): through the authentication backends, so a
    wrong entry counts towards the login lockout (django-axes) like a failed sign-in."""
    from django.contrib.auth import authenticate

    confirmed = authenticate(request, username=user.get_username(), password=password or "")
    if getattr(request, "axes_locked_out", False):
        raise WrongPassword(_("Too many failed attempts: signing is locked for a while."))
    if confirmed is None or confirmed.pk != user.pk:
        raise WrongPassword()


def _printed_name(user: User) -> str:
    return (user.get_full_name() or user.get_username()).strip()


def record_sign(
    *, user: User, record: ClinicalRecord, password: str, request: Any, revision: int | None
) -> ESignature:
    """An investigator of the participant's site signs a completed record, re-entering the
    password; the signature keeps the meaning, printed name, time and the SHA-256 of the
    signed data. ``revision``: what the investigator saw (a changed record is refused).

    The password is checked before the signing transaction and outside it, so that a wrong
    entry stays counted towards the lockout (a refusal rolls back what its transaction
    wrote, django-axes' failed attempt included)."""
    site_id = (
        ClinicalRecord.objects.filter(pk=record.pk)
        .values_list("participant__site_id", flat=True)
        .get()
    )
    _require_site_investigator(user, site_id)
    _confirm_password(user, password, request)
    return _record_sign(user=user, record=record, revision=revision)


@top_level
def _record_sign(*, user: User, record: ClinicalRecord, revision: int | None) -> ESignature:
    record = _lock_record(record)
    _require_site_investigator(user, record.participant.site_id)
    if record.status != RecordStatus.COMPLETE:
        raise SignatureRefused(_("Only a completed form can be signed."), reasons=["not_complete"])
    _check_revision(record, revision)
    if ESignature.objects.filter(record=record, invalidated_at__isnull=True).exists():
        raise SignatureRefused(_("This form is already signed."), reasons=["already_signed"])
    with audit_reason("electronic signature"):
        return ESignature.objects.create(
            participant=record.participant,
            record=record,
            signed_by=user,
            printed_name=_printed_name(user),
            role="investigator",
            meaning=str(SIGNATURE_MEANING),
            sha256=signed_content_sha256([record]),
            revision=record.revision,
        )


def casebook_sign(*, user: User, allocation: Allocation, password: str, request: Any) -> ESignature:
    """Sign a participant's whole casebook: every record complete or not done (voided
    entries excluded), none a draft. The password is checked first, as for a record."""
    _require_site_investigator(user, allocation.participant.site_id)
    _confirm_password(user, password, request)
    return _casebook_sign(user=user, allocation=allocation)


@top_level
def _casebook_sign(*, user: User, allocation: Allocation) -> ESignature:
    _lock_participant(allocation.participant)
    records = list(
        ClinicalRecord.objects.select_related("definition")
        .filter(participant_id=allocation.participant_id, trial_id=allocation.trial_id)
        .exclude(status=RecordStatus.VOIDED)
    )
    if not records or any(r.status == RecordStatus.DRAFT for r in records):
        raise SignatureRefused(
            _("A casebook with drafts (or without forms) cannot be signed."),
            reasons=["casebook_incomplete"],
        )
    if ESignature.objects.filter(
        participant_id=allocation.participant_id, record__isnull=True, invalidated_at__isnull=True
    ).exists():
        raise SignatureRefused(_("This casebook is already signed."), reasons=["already_signed"])
    with audit_reason("electronic signature of the casebook"):
        return ESignature.objects.create(
            participant=allocation.participant,
            signed_by=user,
            printed_name=_printed_name(user),
            role="investigator",
            meaning=str(CASEBOOK_MEANING),
            sha256=signed_content_sha256(records),
        )


def _signatures_invalidate(record: ClinicalRecord, *, by: User) -> int:
    """A change of signed data: the record's valid signature and the participant's casebook
    signature are invalidated, saying by whom and when (inside the save's transaction)."""
    now = timezone.now()
    reason = _("changed on %(when)s by %(user)s") % {
        "when": formats.date_format(timezone.localtime(now), "DATETIME_FORMAT"),
        "user": str(by),
    }
    return ESignature.objects.filter(
        Q(record=record) | Q(participant_id=record.participant_id, record__isnull=True),
        invalidated_at__isnull=True,
    ).update(invalidated_at=now, invalidated_by=by, invalidated_reason=reason[:300])


# --- data review: locks ---------------------------------------------------------------------
class RecordLocked(RecordError):
    code = "locked"
    default_message = gettext_lazy(
        "These data are locked by the data manager and cannot change (ask for an unlock)."
    )


class LockError(RecordError):
    code = "lock_refused"


def _refuse_locked(*, trial_id: int, participant_id: int, record_id: int | None = None) -> None:
    """Every record write asks this inside its transaction (after its row locks): a lock of
    the trial, of the participant, or of this record refuses the write."""
    active = DataLock.objects.filter(trial_id=trial_id, unlocked_at__isnull=True).filter(
        Q(level=LockLevel.TRIAL)
        | Q(level=LockLevel.PARTICIPANT, participant_id=participant_id)
        | (Q(level=LockLevel.RECORD, record_id=record_id) if record_id else Q(pk__in=[]))
    )
    lock = active.select_related("locked_by").first()
    if lock is not None:
        raise RecordLocked(reasons=[f"locked_{lock.level}"])


@top_level
def data_lock(
    *,
    user: User,
    level: str,
    trial: Trial,
    participant: Participant | None = None,
    record: ClinicalRecord | None = None,
    reason: str = "",
) -> DataLock:
    """Lock a record, a participant's casebook, or (a sponsor-wide data manager) the whole
    trial. Locking what is already locked is refused."""
    from core.access import access_for

    if level not in LockLevel.values:
        raise LockError(_("Choose what to lock."), reasons=["level"])
    if record is not None:
        participant = record.participant
    if level == LockLevel.TRIAL:
        if access_for(user).site_ids(REVIEWERS) is not None:
            raise NotAllowed(_("Only a sponsor-wide data manager locks the whole trial."))
        participant = record = None
    elif participant is None or (level == LockLevel.RECORD and record is None):
        raise LockError(_("Say which participant or form to lock."), reasons=["target"])
    else:
        require_write(user, participant.site_id, roles=REVIEWERS)
        if level == LockLevel.PARTICIPANT:
            record = None
    if DataLock.objects.filter(
        level=level, trial=trial, participant=participant, record=record, unlocked_at__isnull=True
    ).exists():
        raise LockError(_("This is already locked."), reasons=["already_locked"])
    with audit_reason(f"{level} locked" + (f": {reason.strip()}" if reason.strip() else "")):
        return DataLock.objects.create(
            level=level,
            trial=trial,
            participant=participant,
            record=record,
            locked_by=user,
            lock_reason=(reason or "").strip()[:300],
        )


@top_level
def data_unlock(*, user: User, lock: DataLock, reason: str) -> DataLock:
    """Unlock, with a reason (audited)."""
    from core.access import access_for

    lock = (
        DataLock.objects.select_for_update(of=("self",))
        .select_related("participant")
        .get(pk=lock.pk)
    )
    if lock.participant is None:
        if access_for(user).site_ids(REVIEWERS) is not None:
            raise NotAllowed(_("Only a sponsor-wide data manager unlocks the whole trial."))
    else:
        require_write(user, lock.participant.site_id, roles=REVIEWERS)
    if lock.unlocked_at is not None:
        raise LockError(_("This lock was already lifted."), reasons=["not_locked"])
    reason = (reason or "").strip()
    if not reason:
        raise LockError(_("Give the reason for unlocking."), field="reason")
    lock.unlocked_by = user
    lock.unlocked_at = timezone.now()
    lock.unlock_reason = reason[:300]
    with audit_reason(f"unlocked: {reason}"):
        lock.save(update_fields=["unlocked_by", "unlocked_at", "unlock_reason"])
    return lock


# --- data review: source data verification -------------------------------------------------
@top_level
def record_verify(
    *, user: User, record: ClinicalRecord, revision: int | None, items: list[str] | None = None
) -> list[SourceVerification]:
    """A monitor (data manager of the site) marks items verified against the source: the
    definition's key items (``sdv``) when ``items`` is None, or the items named (``["*"]``:
    every answered item). Items already verified keep their mark; returns the new marks."""
    record = _lock_record(record)
    require_write(user, record.participant.site_id, roles=REVIEWERS)
    if record.status != RecordStatus.COMPLETE:
        raise RecordError(_("Only a completed form is verified."), reasons=["not_complete"])
    _check_revision(record, revision)
    definition = definition_of(record.definition)
    if items is None:
        wanted = list(definition.sdv)
    elif items == ["*"]:
        wanted = [
            i.code for i in definition.items if i.kind != "computed" and i.code in record.data
        ]
    else:
        unknown = [name for name in items if not definition.has_item(name)]
        if unknown:
            raise RecordInvalid(
                _("This form has no item %(items)s.") % {"items": ", ".join(unknown)},
                field="items",
            )
        wanted = list(dict.fromkeys(items))
    current = set(
        SourceVerification.objects.filter(record=record, cleared_at__isnull=True).values_list(
            "item", flat=True
        )
    )
    now = timezone.now()
    with audit_reason("source data verified"):
        return SourceVerification.objects.bulk_create(
            [
                SourceVerification(
                    record=record,
                    item=name,
                    verified_by=user,
                    verified_at=now,
                    revision=record.revision,
                )
                for name in wanted
                if name not in current
            ]
        )


def _verifications_clear(record: ClinicalRecord, before: Mapping[str, Any], *, by: User) -> int:
    """Clear the marks of the items whose value changed (inside the save)."""
    changed = {
        key for key in set(before) | set(record.data) if before.get(key) != record.data.get(key)
    }
    if not changed:
        return 0
    return SourceVerification.objects.filter(
        record=record, cleared_at__isnull=True, item__in=changed
    ).update(cleared_at=timezone.now(), cleared_by=by)
