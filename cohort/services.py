"""Writes for the PRESENT cohort: registration, identifying data, consent, withdrawal, death.

Every function is keyword-only, runs in one transaction (top-level services in their own
durable one, :func:`core.services.top_level`), checks write access with
:func:`core.access.require_write`, writes through audited (``track``ed) models and refuses
with a named :class:`core.refusals.Refusal` (nothing written). Cohort refusals are
:class:`~core.refusals.Invalid` (400) and name the field they belong to, so a form shows
them next to the field (``core.forms.add_refusal``) and the API answers 400
``{"errors": {field: [...]}}``. Nothing is ever deleted: a consent correction supersedes
the original record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cohort.models import (
    ConsentElement,
    ConsentFormVersion,
    ConsentMode,
    ConsentRecord,
    Death,
    DeathSource,
    Identity,
    IdentityAccess,
    Language,
    Participant,
    Withdrawal,
    WithdrawalScope,
)
from cohort.rules import format_study_number, free_text_mentions, normalise_hospital_number
from cohort.selectors import STOPS_QUESTIONNAIRES, STOPS_TRIAL
from core import hooks
from core.access import access_for, require_write
from core.audit import reason as audit_reason
from core.models import Site, User
from core.refusals import DateInFuture as DateInFuture  # the one rule's refusal, re-exported
from core.refusals import Invalid, NotAllowed, Refusal, date_in_future, not_future
from core.services import top_level

# --- named refusals --------------------------------------------------------------------------


class CohortError(Invalid):
    """A refused cohort write (400). ``field`` names the input the message belongs to."""

    code = "invalid"


class SiteNotWritable(CohortError):
    field = "site"
    code = "site_not_writable"


class DuplicateHospitalNumber(CohortError):
    field = "hospital_number"
    code = "duplicate_hospital_number"

    def __init__(self, message: str, *, existing_study_number: str):
        self.existing_study_number = existing_study_number
        super().__init__(message)


class DateBeforeRegistration(CohortError):
    code = "date_before_registration"


class DateContradictsRecords(CohortError):
    """A date that stored records contradict (a death before an allocation). ``reasons``
    holds the kinds of the conflicting records, ``records`` their descriptions."""

    code = "date_contradicts_records"

    def __init__(self, message: str, *, field: str, findings: list[hooks.Finding]):
        self.records = [f.text for f in findings]
        super().__init__(message, field=field, reasons=sorted({f.kind for f in findings}))


class ConsentFormNotEffective(CohortError):
    field = "form_version"
    code = "consent_form_not_effective"


class NoConsentAnswer(CohortError):
    code = "no_consent_answer"


class DuplicateConsent(CohortError):
    code = "duplicate_consent"


class ReasonRequired(CohortError):
    field = "reason"
    code = "reason_required"


class AlreadySuperseded(CohortError):
    code = "already_superseded"


class NothingToCorrect(CohortError):
    code = "nothing_to_correct"


class AlreadyWithdrawn(CohortError):
    field = "scope"
    code = "already_withdrawn"


class AlreadyDeceased(CohortError):
    code = "already_deceased"


class ParticipantDeceased(CohortError):
    code = "participant_deceased"


class IdentifyingDataInFreeText(CohortError):
    field = "reason"
    code = "identifying_data"


# --- helpers ---------------------------------------------------------------------------------


def _registration_day(participant: Participant) -> date:
    return timezone.localdate(participant.registered_at)


def _not_before_registration(value: date, *, participant: Participant, field: str) -> None:
    """Deaths and withdrawals happen to registered participants: never before the day of
    registration. (A consent may precede it: paper signed at the visit, entered later.)"""
    registered = _registration_day(participant)
    if value < registered:
        raise DateBeforeRegistration(
            _("The participant was registered on %(date)s; this date is earlier.")
            % {"date": registered.isoformat()},
            field=field,
        )


def _date_of_birth(participant: Participant) -> date | None:
    return (
        Identity.objects.filter(participant=participant)
        .values_list("date_of_birth", flat=True)
        .first()
    )


# What a withdrawal of each scope stops (the activities whose later records contradict it).
def _withdrawal_activities(scope: str) -> frozenset[str]:
    stops = set()
    if scope in STOPS_QUESTIONNAIRES:
        stops.add(hooks.QUESTIONNAIRES)
    if scope in STOPS_TRIAL:
        stops.add(hooks.TRIAL)
    return frozenset(stops)


DEATH_ACTIVITIES = frozenset({hooks.QUESTIONNAIRES, hooks.TRIAL, hooks.TREATMENT})


def _refuse_contradicted(
    *,
    participant: Participant,
    after: date,
    activities: frozenset[str],
    field: str,
    message: str,
    consents_too: bool = False,
) -> None:
    """Refuse ``after`` when stored records of the stopped ``activities`` are dated later:
    the cohort's own consents (for a death) and whatever other apps report through the
    ``participant_records_after`` hook. The message names every conflicting record."""
    findings: list[hooks.Finding] = []
    if consents_too:
        letters = {e.value: f"({chr(ord('a') + i)})" for i, e in enumerate(ConsentElement)}
        by_day: dict[date, list[str]] = {}
        for given_on, element in (
            ConsentRecord.objects.current()
            .filter(participant=participant, given_on__gt=after)
            .values_list("given_on", "element")
        ):
            by_day.setdefault(given_on, []).append(element)
        for day, elements in sorted(by_day.items()):
            findings.append(
                hooks.Finding(
                    kind="consent",
                    text=_("consent %(elements)s given on %(date)s")
                    % {
                        "elements": ", ".join(sorted(letters[e] for e in set(elements))),
                        "date": day.isoformat(),
                    },
                    on=day,
                )
            )
    findings += hooks.participant_records_after.collect(
        participant=participant, after=after, activities=activities
    )
    if findings:
        raise DateContradictsRecords(
            message % {"records": "; ".join(f.text for f in findings)},
            field=field,
            findings=findings,
        )


def _full_clean(instance: models.Model, *, exclude: list[str] | None = None) -> None:
    """The model's own rules, refused as :class:`CohortError` by field. (validate_unique and
    constraints are checked by the services themselves and the database.)"""
    try:
        instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise CohortError.from_validation_error(exc) from exc


def _check_life_dates(
    *, participant_id: int, born: date | None, diagnosed: date | None | Literal[False] = False
) -> None:
    """A date of birth after the diagnosis of bone metastases, after the death or after a
    consent is refused (``diagnosed=False``: read the stored diagnosis date)."""
    if born is None:
        return
    if diagnosed is False:
        diagnosed = (
            Participant.objects.filter(pk=participant_id)
            .values_list("bone_metastases_diagnosed_on", flat=True)
            .first()
        )
    if diagnosed and diagnosed < born:
        raise CohortError(
            _("The diagnosis cannot precede the date of birth."), field="date_of_birth"
        )
    died_on = Death.objects.filter(participant_id=participant_id).values_list("died_on", flat=True)
    first_consent = (
        ConsentRecord.objects.current()
        .filter(participant_id=participant_id)
        .order_by("given_on")
        .values_list("given_on", flat=True)
    )
    for later in (died_on.first(), first_consent.first()):
        if later is not None and later < born:
            raise CohortError(
                _("This date of birth is later than a date already recorded (%(date)s).")
                % {"date": later.isoformat()},
                field="date_of_birth",
            )


def _identifiers(participant: Participant) -> list[str]:
    identity = Identity.objects.filter(participant=participant).first()
    if identity is None:
        return []
    return [identity.family_name, identity.hospital_number, identity.email, identity.phone]


def _check_free_text(text: str, *, participant: Participant, field: str = "reason") -> None:
    """Free text (reasons) must not carry the participant's identifying data."""
    if text and free_text_mentions(text, _identifiers(participant)):
        raise IdentifyingDataInFreeText(
            _("Do not write identifying data (name, hospital number, contact details) here."),
            field=field,
        )


def _duplicate_message(study_number: str) -> str:
    return _(
        "This hospital record number is already registered at this site as %(study_number)s."
    ) % {"study_number": study_number}


def _next_study_number() -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('cohort_study_number_seq')")
        (n,) = cur.fetchone()
    return format_study_number(int(n))


# --- registration and identifying data ----------------------------------------------------------


def registration_refusals(
    *,
    by: User,
    site: Site | None,
    participant: Participant,
    identity: Identity,
    year_of_birth: int | None = None,
) -> Iterator[Refusal]:
    """Why registering ``participant`` / ``identity`` (unsaved) is refused, in the order a
    person fixes them; lazily, so the first costs only its own reads (access, a duplicate
    hospital record number). Writes nothing."""
    if site is None or not site.is_active:
        yield SiteNotWritable(_("Choose an active site."))
        return
    try:
        require_write(by, site.pk)
    except NotAllowed:
        yield SiteNotWritable(_("You may not register participants at this site."))
        return
    born, diagnosed = identity.date_of_birth, participant.bone_metastases_diagnosed_on
    for refusal in (
        date_in_future(born, field="date_of_birth"),
        date_in_future(diagnosed, field="bone_metastases_diagnosed_on"),
    ):
        if refusal is not None:
            yield refusal
    if year_of_birth is not None and born and year_of_birth != born.year:
        yield CohortError(
            _("The year of birth does not match the date of birth."), field="year_of_birth"
        )
    if born and born.year < 1900:
        yield CohortError(_("Enter a date of birth after 1900."), field="date_of_birth")
    if diagnosed and born and diagnosed < born:
        yield CohortError(
            _("The diagnosis cannot precede the date of birth."),
            field="bone_metastases_diagnosed_on",
        )
    errors: dict[str, list[str]] = {}
    for obj, exclude in ((participant, ["registered_by"]), (identity, ["participant", "site"])):
        try:
            _full_clean(obj, exclude=exclude)
        except Refusal as refusal:
            for key, msgs in refusal.field_errors.items():
                errors.setdefault(key, []).extend(msgs)
            if refusal.non_field_errors:
                errors.setdefault("__all__", []).extend(refusal.non_field_errors)
    if errors:
        yield CohortError(errors=errors)
    duplicate = _duplicate(site=site, hospital_number=identity.hospital_number)
    if duplicate is not None:
        yield duplicate


@top_level
def participant_register(
    *,
    by: User,
    site: Site,
    sex: str,
    primary_tumour: str,
    referring_department: str,
    given_name: str,
    family_name: str,
    date_of_birth: date,
    hospital_number: str,
    bone_metastases_diagnosed_on: date | None = None,
    year_of_birth: int | None = None,
    email: str = "",
    phone: str = "",
    preferred_language: str = Language.DUTCH,
) -> Participant:
    """Register a cohort participant at ``site``; the study number comes from the sequence.

    ``year_of_birth`` (clinical) is derived from the date of birth (identifying) so
    the two can never disagree; when given it must match. Refused with the first of
    :func:`registration_refusals`; nothing is written then.
    """
    identity = Identity(
        site=site,
        given_name=(given_name or "").strip(),
        family_name=(family_name or "").strip(),
        date_of_birth=date_of_birth,
        hospital_number=normalise_hospital_number(hospital_number),
        email=(email or "").strip(),
        phone=(phone or "").strip(),
        preferred_language=preferred_language,
    )
    participant = Participant(
        study_number="PRE-00000",  # placeholder for validation; the sequence gives the number
        site=site,
        sex=sex,
        # None (no date of birth at all) is refused by full_clean below, before any write;
        # the stub types an unsaved instance's field as if it had been validated already.
        year_of_birth=date_of_birth.year if date_of_birth else year_of_birth,  # type: ignore[misc]
        primary_tumour=primary_tumour,
        bone_metastases_diagnosed_on=bone_metastases_diagnosed_on,
        referring_department=referring_department,
        registered_by=by,
    )
    refusals = registration_refusals(
        by=by, site=site, participant=participant, identity=identity, year_of_birth=year_of_birth
    )
    refusal = next(refusals, None)
    if refusal is not None:
        raise refusal
    participant.study_number = _next_study_number()
    participant.save()
    identity.participant = participant
    try:
        with transaction.atomic():
            identity.save()
    except IntegrityError:
        # Two registrations of the same hospital number raced; the unique constraint won.
        _refuse_duplicate(site=site, hospital_number=identity.hospital_number)
        raise
    return participant


def _duplicate(
    *, site: Site, hospital_number: str, exclude_pk: int | None = None
) -> DuplicateHospitalNumber | None:
    existing = Identity.objects.filter(site=site, hospital_number=hospital_number)
    if exclude_pk is not None:
        existing = existing.exclude(pk=exclude_pk)
    found = existing.select_related("participant").first()
    if found is None:
        return None
    return DuplicateHospitalNumber(
        _duplicate_message(found.participant.study_number),
        existing_study_number=found.participant.study_number,
    )


def _refuse_duplicate(*, site: Site, hospital_number: str, exclude_pk: int | None = None) -> None:
    refusal = _duplicate(site=site, hospital_number=hospital_number, exclude_pk=exclude_pk)
    if refusal is not None:
        raise refusal


IDENTITY_FIELDS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "hospital_number",
    "email",
    "phone",
    "preferred_language",
)
CLINICAL_FIELDS = (
    "sex",
    "primary_tumour",
    "bone_metastases_diagnosed_on",
    "referring_department",
)


@top_level
def identity_update(
    *, by: User, identity: Identity, reason: str, changes: Mapping[str, Any]
) -> Identity:
    """Change identifying data (own site's staff only), with a reason for change."""
    require_write(by, identity.site_id)
    if not access_for(by).can_see_identifying(identity.site_id):
        raise NotAllowed(_("You may not change this participant's identifying data."))
    if not (reason or "").strip():
        raise ReasonRequired(_("A reason for change is required."))
    unknown = set(changes) - set(IDENTITY_FIELDS)
    if unknown:
        raise CohortError(_("This field cannot be changed."), field=sorted(unknown)[0])
    identity = Identity.objects.select_for_update().get(pk=identity.pk)
    for key, value in changes.items():
        if key == "hospital_number":
            value = normalise_hospital_number(value)
        elif isinstance(value, str):
            value = value.strip()
        setattr(identity, key, value)
    not_future(identity.date_of_birth, field="date_of_birth")
    _check_life_dates(participant_id=identity.participant_id, born=identity.date_of_birth)
    _full_clean(identity, exclude=["participant", "site"])
    _refuse_duplicate(
        site=identity.site, hospital_number=identity.hospital_number, exclude_pk=identity.pk
    )
    participant = Participant.objects.select_for_update().get(pk=identity.participant_id)
    with audit_reason(reason.strip()):
        identity.save()
        if participant.year_of_birth != identity.date_of_birth.year:
            participant.year_of_birth = identity.date_of_birth.year
            participant.save(update_fields=["year_of_birth"])
    return identity


@top_level
def participant_update(
    *,
    by: User,
    participant: Participant,
    reason: str,
    changes: Mapping[str, Any],
    identity_changes: Mapping[str, Any] | None = None,
) -> Participant:
    """Change clinical attributes (and, for the participant's own site staff, identifying
    data) with a reason. Site, study number and registration data can never be changed."""
    require_write(by, participant.site_id)
    if not (reason or "").strip():
        raise ReasonRequired(_("A reason for change is required."))
    unknown = set(changes) - set(CLINICAL_FIELDS)
    if unknown:
        raise CohortError(_("This field cannot be changed."), field=sorted(unknown)[0])
    participant = Participant.objects.select_for_update().get(pk=participant.pk)
    if changes:
        for key, value in changes.items():
            setattr(participant, key, value)
        not_future(participant.bone_metastases_diagnosed_on, field="bone_metastases_diagnosed_on")
        born = _date_of_birth(participant)
        diagnosed = participant.bone_metastases_diagnosed_on
        if born is not None and diagnosed is not None and diagnosed < born:
            raise CohortError(
                _("The diagnosis cannot precede the date of birth."),
                field="bone_metastases_diagnosed_on",
            )
        _full_clean(participant, exclude=["registered_by"])
        with audit_reason(reason.strip()):
            participant.save()
    if identity_changes:
        identity = Identity.objects.filter(participant=participant).first()
        if identity is None:
            raise NotAllowed(_("You may not change this participant's identifying data."))
        identity_update.nested(by=by, identity=identity, reason=reason, changes=identity_changes)
        participant.refresh_from_db()
    return participant


@top_level
def identity_access_log(
    *, user: User, participants: list[Participant], context: str
) -> list[IdentityAccess]:
    """Record that ``user`` was shown the identifying data of ``participants``."""
    if not participants:
        return []
    now = timezone.now()
    return IdentityAccess.objects.bulk_create(
        [IdentityAccess(user=user, participant=p, at=now, context=context) for p in participants]
    )


# --- consent ---------------------------------------------------------------------------------


def _check_consent_inputs(
    *,
    participant: Participant,
    given_on: date,
    form_version: ConsentFormVersion,
    mode: str,
) -> None:
    if given_on is None:
        raise CohortError(_("This field is required."), field="given_on")
    not_future(given_on, field="given_on")
    if form_version is None:
        raise ConsentFormNotEffective(_("This field is required."))
    if not form_version.is_effective_on(given_on):
        raise ConsentFormNotEffective(
            _("Consent form %(form)s is not in effect on %(date)s.")
            % {"form": str(form_version), "date": given_on.isoformat()}
        )
    if mode not in ConsentMode.values:
        raise CohortError(_("Choose paper or electronic."), field="mode")
    born = _date_of_birth(participant)
    if born is not None and given_on < born:
        raise CohortError(_("This date precedes the date of birth."), field="given_on")
    death = Death.objects.filter(participant=participant).first()
    if death is not None and given_on > death.died_on:
        raise ParticipantDeceased(
            _("The participant died on %(date)s.") % {"date": death.died_on.isoformat()},
            field="given_on",
        )


@top_level
def consent_record(
    *,
    by: User,
    participant: Participant,
    element: str,
    answer: bool,
    given_on: date,
    form_version: ConsentFormVersion,
    mode: str,
) -> ConsentRecord:
    """Record one answer to one consent element, taken by ``by``."""
    records = consents_record.nested(
        by=by,
        participant=participant,
        answers={element: answer},
        given_on=given_on,
        form_version=form_version,
        mode=mode,
    )
    return records[0]


@top_level
def consents_record(
    *,
    by: User,
    participant: Participant,
    answers: Mapping[str, bool | None],
    given_on: date,
    form_version: ConsentFormVersion,
    mode: str,
) -> list[ConsentRecord]:
    """Record the answers of one consent conversation (one form version, date and mode);
    elements answered ``None`` were not asked. At least one answer is required."""
    require_write(by, participant.site_id)
    unknown = set(answers) - set(ConsentElement.values)
    if unknown:
        raise CohortError(_("Unknown consent element."), field="element")
    given = {k: v for k, v in answers.items() if v is not None}
    if not given:
        raise NoConsentAnswer(_("Answer at least one consent element."))
    _check_consent_inputs(
        participant=participant, given_on=given_on, form_version=form_version, mode=mode
    )
    Participant.objects.select_for_update().filter(pk=participant.pk).first()
    existing = set(
        ConsentRecord.objects.current()
        .filter(participant=participant, given_on=given_on, form_version=form_version)
        .values_list("element", "answer")
    )
    records = []
    for element in ConsentElement.values:  # fixed order: (a), (b), (c), (d)
        if element not in given:
            continue
        answer = bool(given[element])
        if (element, answer) in existing:
            raise DuplicateConsent(
                _("This answer is already recorded for %(element)s on this date.")
                % {"element": ConsentElement(element).label},
                field="element" if len(given) == 1 else "non_field_errors",
            )
        record = ConsentRecord(
            participant=participant,
            element=element,
            answer=answer,
            given_on=given_on,
            form_version=form_version,
            mode=mode,
            taken_by=by,
        )
        _full_clean(record, exclude=["participant", "taken_by", "form_version"])
        record.save()
        records.append(record)
    return records


@top_level
def consent_correct(
    *,
    record: ConsentRecord,
    by: User,
    reason: str,
    answer: bool | None = None,
    given_on: date | None = None,
    form_version: ConsentFormVersion | None = None,
    mode: str | None = None,
) -> ConsentRecord:
    """Correct a consent record: a new record with the corrected values replaces it;
    the original stays, pointing at its replacement (``superseded_by``), and both
    writes carry the reason in the audit trail."""
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired(_("A reason for the correction is required."))
    participant = record.participant
    require_write(by, participant.site_id)
    original = ConsentRecord.objects.select_for_update().get(pk=record.pk)
    if original.superseded_by_id is not None:
        raise AlreadySuperseded(_("This record has already been corrected."))
    new_answer = original.answer if answer is None else bool(answer)
    new_given_on = given_on or original.given_on
    new_form_version = form_version or original.form_version
    new_mode = mode or original.mode
    if (original.answer, original.given_on, original.form_version, original.mode) == (
        new_answer,
        new_given_on,
        new_form_version,
        new_mode,
    ):
        raise NothingToCorrect(_("The correction changes nothing."))
    _check_consent_inputs(
        participant=participant,
        given_on=new_given_on,
        form_version=new_form_version,
        mode=new_mode,
    )
    _check_free_text(reason, participant=participant)
    corrected = ConsentRecord(
        participant=participant,
        element=original.element,
        taken_by=original.taken_by,
        correction_reason=reason,
        answer=new_answer,
        given_on=new_given_on,
        form_version=new_form_version,
        mode=new_mode,
    )
    _full_clean(corrected, exclude=["participant", "taken_by", "form_version"])
    with audit_reason(reason):
        corrected.save()
        original.superseded_by = corrected
        original.save(update_fields=["superseded_by"])
    return corrected


# --- withdrawal and death --------------------------------------------------------------------


def _cancel_questionnaires(*, participant: Participant, reason: str) -> None:
    """Questionnaire contact stops now: the apps that send subscribe to the hook."""
    hooks.contact_stopped.fire(participant=participant, reason=reason)


@top_level
def withdrawal_record(
    *,
    by: User,
    participant: Participant,
    scope: str,
    effective_on: date,
    reason: str = "",
) -> Withdrawal:
    """Record a scoped withdrawal. A scope that stops questionnaires cancels every
    pending questionnaire in the same transaction."""
    require_write(by, participant.site_id)
    if scope not in WithdrawalScope.values:
        raise CohortError(_("Choose a withdrawal scope."), field="scope")
    if effective_on is None:
        raise CohortError(_("This field is required."), field="effective_on")
    not_future(effective_on, field="effective_on")
    _not_before_registration(effective_on, participant=participant, field="effective_on")
    reason = (reason or "").strip()
    _check_free_text(reason, participant=participant)
    Participant.objects.select_for_update().filter(pk=participant.pk).first()
    if Withdrawal.objects.filter(participant=participant, scope=scope).exists():
        raise AlreadyWithdrawn(_("This withdrawal has already been recorded."))
    _refuse_withdrawal_contradicted(participant=participant, scope=scope, effective_on=effective_on)
    withdrawal = Withdrawal(
        participant=participant,
        scope=scope,
        effective_on=effective_on,
        reason=reason,
        recorded_by=by,
    )
    _full_clean(withdrawal, exclude=["participant", "recorded_by"])
    with audit_reason(reason or None):
        withdrawal.save()
        if scope in STOPS_QUESTIONNAIRES:
            _cancel_questionnaires(participant=participant, reason=f"withdrawal:{scope}")
    return withdrawal


def _refuse_withdrawal_contradicted(
    *, participant: Participant, scope: str, effective_on: date
) -> None:
    _refuse_contradicted(
        participant=participant,
        after=effective_on,
        activities=_withdrawal_activities(scope),
        field="effective_on",
        message=_("Records after this date contradict the withdrawal: %(records)s."),
    )


def _refuse_death_contradicted(*, participant: Participant, died_on: date) -> None:
    _refuse_contradicted(
        participant=participant,
        after=died_on,
        activities=DEATH_ACTIVITIES,
        field="died_on",
        message=_("Records after this date contradict the date of death: %(records)s."),
        consents_too=True,
    )


@top_level
def death_record(*, by: User, participant: Participant, died_on: date, source: str) -> Death:
    """Record a death: every patient contact stops at once (pending questionnaires are
    cancelled in the same transaction)."""
    require_write(by, participant.site_id)
    if died_on is None:
        raise CohortError(_("This field is required."), field="died_on")
    not_future(died_on, field="died_on")
    if source not in DeathSource.values:
        raise CohortError(_("Choose the source of this information."), field="source")
    identity = Identity.objects.filter(participant=participant).only("date_of_birth").first()
    if identity is not None and died_on < identity.date_of_birth:
        raise CohortError(_("The date of death precedes the date of birth."), field="died_on")
    _not_before_registration(died_on, participant=participant, field="died_on")
    Participant.objects.select_for_update().filter(pk=participant.pk).first()
    if Death.objects.filter(participant=participant).exists():
        raise AlreadyDeceased(_("A death is already recorded for this participant."))
    _refuse_death_contradicted(participant=participant, died_on=died_on)
    death = Death(participant=participant, died_on=died_on, source=source, recorded_by=by)
    _full_clean(death, exclude=["participant", "recorded_by"])
    death.save()
    _cancel_questionnaires(participant=participant, reason="death")
    return death


@top_level
def withdrawal_correct(
    *, withdrawal: Withdrawal, by: User, reason: str, effective_on: date
) -> Withdrawal:
    """Correct the date of a withdrawal (a data-entry error), with a reason. The scope is
    never changed: record another withdrawal instead. Nothing cancelled is restored."""
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired(_("A reason for change is required."))
    participant = withdrawal.participant
    require_write(by, participant.site_id)
    not_future(effective_on, field="effective_on")
    _not_before_registration(effective_on, participant=participant, field="effective_on")
    _check_free_text(reason, participant=participant)
    current = Withdrawal.objects.select_for_update().get(pk=withdrawal.pk)
    if current.effective_on == effective_on:
        raise NothingToCorrect(_("The correction changes nothing."))
    _refuse_withdrawal_contradicted(
        participant=participant, scope=current.scope, effective_on=effective_on
    )
    current.effective_on = effective_on
    _full_clean(current, exclude=["participant", "recorded_by"])
    with audit_reason(reason):
        current.save(update_fields=["effective_on"])
    return current


@top_level
def death_correct(
    *,
    death: Death,
    by: User,
    reason: str,
    died_on: date | None = None,
    source: str | None = None,
) -> Death:
    """Correct the date or source of a recorded death, with a reason (old and new values
    stay in the audit trail)."""
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired(_("A reason for change is required."))
    participant = death.participant
    require_write(by, participant.site_id)
    current = Death.objects.select_for_update().get(pk=death.pk)
    new_died_on = died_on or current.died_on
    new_source = source or current.source
    if (new_died_on, new_source) == (current.died_on, current.source):
        raise NothingToCorrect(_("The correction changes nothing."))
    not_future(new_died_on, field="died_on")
    if new_source not in DeathSource.values:
        raise CohortError(_("Choose the source of this information."), field="source")
    identity = Identity.objects.filter(participant=participant).only("date_of_birth").first()
    if identity is not None and new_died_on < identity.date_of_birth:
        raise CohortError(_("The date of death precedes the date of birth."), field="died_on")
    _not_before_registration(new_died_on, participant=participant, field="died_on")
    _check_free_text(reason, participant=participant)
    if new_died_on != current.died_on:
        _refuse_death_contradicted(participant=participant, died_on=new_died_on)
    current.died_on, current.source = new_died_on, new_source
    _full_clean(current, exclude=["participant", "recorded_by"])
    with audit_reason(reason):
        current.save(update_fields=["died_on", "source"])
    return current


# --- configuration ---------------------------------------------------------------------------


@top_level
def consent_form_version_create(
    *,
    code: str,
    version: str,
    language: str,
    effective_from: date,
    effective_to: date | None = None,
) -> ConsentFormVersion:
    form = ConsentFormVersion(
        code=code,
        version=version,
        language=language,
        effective_from=effective_from,
        effective_to=effective_to,
    )
    try:
        form.full_clean()
    except ValidationError as exc:
        raise CohortError.from_validation_error(exc) from exc
    form.save()
    return form


@top_level
def consent_form_version_end(
    *, form_version: ConsentFormVersion, effective_to: date, reason: str
) -> ConsentFormVersion:
    """Close a consent form version's effective period (with a reason)."""
    if not (reason or "").strip():
        raise ReasonRequired(_("A reason for change is required."))
    form = ConsentFormVersion.objects.select_for_update().get(pk=form_version.pk)
    form.effective_to = effective_to
    try:
        form.full_clean()
    except ValidationError as exc:
        raise CohortError.from_validation_error(exc) from exc
    with audit_reason(reason.strip()):
        form.save(update_fields=["effective_to"])
    return form
