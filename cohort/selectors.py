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

from django.utils import timezone

from cohort.models import ConsentElement, ConsentRecord, Participant, Withdrawal, WithdrawalScope

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
    """The latest non-superseded answer per element given on or before ``at``."""
    day = _as_date(at)
    latest: dict[str, ConsentRecord] = {}
    records = (
        ConsentRecord.objects.current()
        .filter(participant=participant, given_on__lte=day)
        .order_by("element", "-given_on", "-recorded_at", "-pk")
    )
    for record in records:
        latest.setdefault(record.element, record)
    return latest


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


def _load_death(participant: Participant):
    from cohort.models import Death

    return Death.objects.filter(participant=participant).first()


@dataclass(frozen=True)
class ContactDecision:
    allowed: bool
    reasons: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.allowed


def questionnaire_contact(
    participant: Participant, at: date | datetime | None = None
) -> ContactDecision:
    """Why (not) a questionnaire may be sent: consent (a)+(b) yes, no questionnaire-stopping
    withdrawal, not dead — all judged on the date of ``at`` (Europe/Amsterdam)."""
    day = _as_date(at)
    reasons = []
    consents = current_consents(participant, day)
    for element in (ConsentElement.COHORT, ConsentElement.PROMS):
        record = consents.get(element)
        if record is None or not record.answer:
            reasons.append(f"consent_{element}_missing")
    if _withdrawn_scopes(participant, day) & STOPS_QUESTIONNAIRES:
        reasons.append("withdrawn_questionnaires")
    if _dead_on(participant, day):
        reasons.append("deceased")
    return ContactDecision(allowed=not reasons, reasons=reasons)


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
    day = _as_date(at)
    reasons = []
    consents = current_consents(participant, day)
    for element in (
        ConsentElement.COHORT,
        ConsentElement.RANDOMISATION_OFFER,
        ConsentElement.CONTROL_UNINFORMED,
    ):
        record = consents.get(element)
        if record is None or not record.answer:
            reasons.append(f"consent_{element}_missing")
    if _withdrawn_scopes(participant, day) & STOPS_TRIAL:
        reasons.append("withdrawn_trial")
    if _dead_on(participant, day):
        reasons.append("deceased")
    return ContactDecision(allowed=not reasons, reasons=reasons)


def twics_randomisation_consent(
    participant: Participant, at: date | datetime | None = None
) -> bool:
    return randomisation_consent(participant, at).allowed
