"""Writes of the randomization app: screening, sequences, randomisation, corrections,
TwiCs offer/decision, control-arm disclosures and the start of treatment.

Every function is keyword-only, atomic, checks who may do it, and writes through
audited models. Refusals raise a :class:`RandomisationError` subclass (a
:class:`core.refusals.Refusal`) carrying machine-readable ``reasons``; nothing is written
when one is raised.

Check, then do: a service reads what it needs (``selectors``), judges it with a pure check
(``rules`` or a ``_check_*`` function over the facts read) and then makes a short write.
Services called by views, APIs, tasks and commands are ``@top_level``
(:func:`core.services.top_level`): their own ``atomic(durable=True)`` transaction;
``.nested(...)`` runs one inside a caller's transaction on purpose (demo seeding).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cohort.models import ConsentFormVersion, Participant
from core import hooks, refusals
from core.access import access_for, require_write
from core.audit import reason as audit_reason
from core.models import Role, User
from core.refusals import Refusal
from core.services import single_statement, top_level
from randomization import eligibility, lifecycle, rules
from randomization import sequences as seq
from randomization.models import (
    STRATIFICATION_FACTORS,
    Allocation,
    AllocationCorrection,
    AllocationStatus,
    AnswerSource,
    Arm,
    ControlDisclosure,
    CorrectionStatus,
    Criterion,
    Decision,
    Environment,
    InterventionOffer,
    Method,
    MinimisationDecision,
    Screening,
    ScreeningAnswer,
    Sequence,
    SequenceStatus,
    Slot,
    Stratum,
    Trial,
    Verdict,
)
from randomization.selectors import (
    Readiness,
    arm_specs,
    can_manage_sequences,
    current_environment,
    death_date,
    factor_levels,
    latest_screening,
    randomisation_readiness,
    recruitment_refusal,
    screening_evaluate,
)

if TYPE_CHECKING:  # pragma: no cover - django-stubs-ext is a development dependency
    from django_stubs_ext import StrOrPromise

# One field's errors: messages, or the ``ValidationError``\ s a shared rule refused with.
Messages = list["StrOrPromise | ValidationError"]
# The field errors a check collects before refusing (empty: valid).
FieldErrors = dict[str, Messages]


# --- errors ------------------------------------------------------------------------------------
class RandomisationError(Refusal):
    """A randomisation refusal: a conflict with the current state (409), with a message for
    people and reason codes for machines (:class:`core.refusals.Refusal`)."""


# A site or role that does not allow the write: the one access refusal (403).
NotAllowed = refusals.NotAllowed


class NotEligible(RandomisationError):
    default_message = _("The participant has no current eligible screening for this trial.")
    code = "not_eligible"


class NoRandomisationConsent(RandomisationError):
    default_message = _(
        "The participant's consent to randomisation is missing or withdrawn, or the participant has died."
    )
    code = "no_consent"


class AllocationCorrected(RandomisationError):
    default_message = _(
        "The participant was randomised in error and the allocation was corrected; "
        "they cannot be randomised again in this trial."
    )
    code = "corrected_in_error"


class RandomisationUnavailable(RandomisationError):
    """No active sequence or no free slot: the message says nothing about arms."""

    default_message = _(
        "Randomisation is not available for this trial at the moment. Contact the trial statistician."
    )
    code = "randomisation_unavailable"


class TrialNotRecruiting(RandomisationError):
    """The trial's status does not allow screening or randomising (``lifecycle``)."""

    default_message = _("The trial is closed to recruitment.")
    code = "trial_closed"
    by_reason = {
        "trial_in_setup": _(
            "The trial is in set-up: randomisation opens when the statistician activates the "
            "production sequence."
        ),
        "trial_closed": _("The trial is closed to recruitment."),
        "trial_ended": _("The trial is closed."),
    }

    @classmethod
    def for_reason(cls, reason: str) -> TrialNotRecruiting:
        return cls(cls.by_reason.get(reason), reasons=[reason])


TrialClosed = TrialNotRecruiting  # the name earlier callers use


class ScreeningInvalid(ValidationError):
    """The field errors of a screening (a ``ValidationError``). ``names_identifying``: a
    message named the date of birth, a display the caller logs (IdentityAccess)."""

    names_identifying: bool = False


class TrialStatusError(RandomisationError):
    code = "trial_status_refused"


class SequenceError(RandomisationError):
    code = "sequence_refused"


class CorrectionError(RandomisationError):
    code = "correction_refused"


class OfferError(RandomisationError):
    code = "offer_refused"


class DisclosureError(RandomisationError):
    code = "disclosure_refused"


class TreatmentStartError(RandomisationError):
    code = "treatment_start_refused"


# --- helpers -------------------------------------------------------------------------------------
def _require_site_write(user: User, participant: Participant) -> None:
    require_write(user, participant.site_id)


def _today() -> date:
    return timezone.localdate()


def _not_future(value: date | None, field: str) -> None:
    """The one rule (core.refusals.not_future), refused here as this module's other field
    errors are: a ``ValidationError`` ``{field: [message]}``."""
    refusal = refusals.date_in_future(value, field=field, today=_today())
    if refusal is not None:
        raise ValidationError(refusal.field_errors)


def _after_death(errors: FieldErrors, field: str, value: date | None, died_on: date | None) -> None:
    """A date after the recorded death contradicts it: refused, naming the date of death."""
    if value is not None and died_on is not None and value > died_on and field not in errors:
        errors[field] = [
            _("The participant died on %(date)s; this date lies after that.")
            % {"date": died_on.isoformat()}
        ]


def _future_error(value: date | None, field: str) -> Messages | None:
    """The error :func:`_not_future` gives ``value`` (None: not in the future), for checks
    that collect every field's error before refusing."""
    try:
        _not_future(value, field)
    except ValidationError as exc:
        return list(exc.error_dict[field] if hasattr(exc, "error_dict") else exc.error_list)
    return None


def _put(errors: FieldErrors, field: str, error: Messages | None) -> None:
    """``errors[field] = error`` when there is one."""
    if error:
        errors[field] = error


def participant_levels(participant: Participant, factors: list[str]) -> dict[str, str]:
    """The participant's level of each stratification/minimisation factor."""
    levels = {}
    for factor in factors:
        if factor == "site":
            levels[factor] = participant.site.code
        else:
            levels[factor] = str(getattr(participant, factor))
    return levels


# --- screening -------------------------------------------------------------------------------
def contradiction_message(
    criterion: Criterion,
    contradiction: eligibility.Contradiction,
    *,
    date_of_birth: date | None = None,
) -> str:
    """'Date of birth 2010-01-01: 16 years old on the screening date. The stored data answer
    “No”, not “Yes”.' The date of birth is named only when ``date_of_birth`` is passed (site
    staff of the participant's site)."""
    from randomization.models import Answer
    from randomization.reasons import basis_text

    basis = basis_text(
        criterion.derived_from, contradiction.derived.basis, date_of_birth=date_of_birth
    )
    return _("%(basis)s. The stored data answer “%(stored)s”, not “%(typed)s”.") % {
        "basis": basis,
        "stored": Answer(contradiction.derived.answer).label,
        "typed": Answer(contradiction.typed).label
        if contradiction.typed in Answer.values
        else contradiction.typed,
    }


@top_level
def screening_record(
    *,
    by: User,
    trial: Trial,
    participant: Participant,
    screened_on: date,
    answers: dict[str, str],
) -> Screening:
    """Record one screening of ``participant`` against the trial's current criteria.

    Criteria the stored data decide (``Criterion.derived_from``: age from the date of birth,
    multiple myeloma from the primary tumour, consent from the consent records, death) are
    answered by the system and need no answer; a typed answer that contradicts them is refused,
    naming the stored value. Every other criterion must be answered yes / no / unknown. The
    verdict and its reasons are derived, never entered. Earlier screenings stay as they were.
    """
    _require_site_write(by, participant)
    refusal = recruitment_refusal(trial)
    if refusal:
        raise TrialNotRecruiting.for_reason(refusal)
    _not_future(screened_on, "screened_on")
    draft = screening_evaluate(
        trial=trial, participant=participant, answers=answers, on=screened_on
    )
    criteria = draft.criteria
    codes = {c.code for c in criteria}
    errors: FieldErrors = {}
    died_on = draft.facts.died_on
    if died_on is not None and screened_on > died_on:
        errors["screened_on"] = [
            _("The participant died on %(date)s; a screening cannot be dated after that.")
            % {"date": died_on.isoformat()}
        ]
    unknown_codes = sorted(set(answers) - codes)
    if unknown_codes:
        errors["answers"] = [
            _("Unknown criteria for protocol version %(v)s: %(codes)s")
            % {"v": trial.protocol_version, "codes": ", ".join(unknown_codes)}
        ]
    for c in criteria:
        value = answers.get(c.code)
        if c.code in draft.derived and value in (None, ""):
            continue
        if value not in eligibility.ANSWERS:
            errors.setdefault(c.code, []).append(_("Answer yes, no or unknown."))
    date_of_birth = None
    if draft.contradictions:
        by_code = {c.code: c for c in criteria}
        date_of_birth = (
            draft.facts.date_of_birth
            if access_for(by).can_see_identifying(participant.site_id)
            else None
        )
        for contradiction in draft.contradictions:
            if contradiction.typed not in eligibility.ANSWERS:
                continue  # already refused as an invalid answer
            errors.setdefault(contradiction.code, []).append(
                contradiction_message(
                    by_code[contradiction.code], contradiction, date_of_birth=date_of_birth
                )
            )
    if errors:
        invalid = ScreeningInvalid(errors)
        # The message named the date of birth: the caller logs that display (IdentityAccess).
        invalid.names_identifying = bool(draft.contradictions) and date_of_birth is not None
        raise invalid
    result = draft.verdict
    screening = Screening.objects.create(
        trial=trial,
        participant=participant,
        site_id=participant.site_id,
        protocol_version=trial.protocol_version,
        screened_on=screened_on,
        screened_by=by,
        verdict=Verdict.ELIGIBLE if result.eligible else Verdict.INELIGIBLE,
        reasons=result.reasons,
    )
    ScreeningAnswer.objects.bulk_create(
        [
            ScreeningAnswer(
                screening=screening,
                criterion=c,
                answer=draft.answers[c.code],
                source=AnswerSource.DERIVED if c.code in draft.derived else AnswerSource.ENTERED,
                basis=draft.derived[c.code].basis if c.code in draft.derived else {},
            )
            for c in criteria
        ]
    )
    return screening


# --- sequences ----------------------------------------------------------------------------------
def _check_sequence(
    *,
    method: str,
    environment: str,
    factors: list[str],
    probability: Decimal | float | str,
    arms: list[seq.ArmSpec],
    block_sizes: list[int],
    length: int,
) -> tuple[FieldErrors, Decimal]:
    """The field errors of a sequence configuration (empty: valid) and its probability,
    rounded to three decimals."""
    errors: FieldErrors = {}
    if method not in Method.values:
        errors["method"] = [_("Choose a method.")]
    if environment not in Environment.values:
        errors["environment"] = [_("Choose test or production.")]
    unknown = [f for f in factors if f not in STRATIFICATION_FACTORS]
    if unknown or len(set(factors)) != len(factors):
        errors["factors"] = [_("Unknown or repeated factor.")]
    elif method == Method.PERMUTED_BLOCKS and "site" not in factors:
        errors["factors"] = [_("Permuted blocks are always stratified by site.")]
    elif method == Method.MINIMISATION and not factors:
        errors["factors"] = [_("Minimisation needs at least one factor.")]
    try:
        rounded = Decimal(str(probability)).quantize(Decimal("0.001"))
    except ArithmeticError:
        rounded = Decimal("0")
    if not Decimal("0.5") < rounded <= Decimal("1"):
        errors["probability"] = [_("Enter a probability above 0.5 and at most 1.")]
    if method == Method.PERMUTED_BLOCKS:
        try:
            seq.validate(arms, block_sizes)
        except ValueError:
            errors["block_sizes"] = [
                _("Each block size must be a multiple of %(n)s (the sum of the arm ratios).")
                % {"n": sum(a.ratio for a in arms)}
            ]
    if length < 1 or length > 10000:
        errors["slots_per_stratum"] = [_("Enter a number from 1 to 10000.")]
    return errors, rounded


@top_level
def sequence_generate(
    *,
    by: User,
    trial: Trial,
    method: str,
    environment: str,
    factors: list[str],
    block_sizes: list[int] | None = None,
    slots_per_stratum: int | None = None,
    probability: Decimal | float | str = Decimal("0.8"),
) -> Sequence:
    """Generate and store a sealed sequence (not live until activated).

    Permuted blocks: one list per stratum (site plus optional factors), each covering at
    least ``slots_per_stratum`` positions (default: the trial's target size).
    Minimisation: only the configuration and the seed; arms are chosen at randomisation.
    """
    if not can_manage_sequences(by):
        raise NotAllowed()
    arms = arm_specs(trial)
    block_sizes = sorted(set(block_sizes or []))
    length = slots_per_stratum or trial.target_size
    errors, probability = _check_sequence(
        method=method,
        environment=environment,
        factors=factors,
        probability=probability,
        arms=arms,
        block_sizes=block_sizes,
        length=length,
    )
    if errors:
        raise ValidationError(errors)

    # The lists (permuted blocks) are drawn first; the sequence is then written sealed.
    seed = seq.new_seed()
    lists = (
        seq.generate(
            seed=seed,
            strata=seq.all_strata(factor_levels(factors), factors),
            arms=arms,
            block_sizes=block_sizes,
            length=length,
        )
        if method == Method.PERMUTED_BLOCKS
        else {}
    )
    return _sequence_store(
        by=by,
        trial=trial,
        method=method,
        environment=environment,
        factors=factors,
        block_sizes=block_sizes,
        length=length,
        probability=probability,
        arms=arms,
        seed=seed,
        lists=lists,
    )


def _sequence_store(
    *,
    by: User,
    trial: Trial,
    method: str,
    environment: str,
    factors: list[str],
    block_sizes: list[int],
    length: int,
    probability: Decimal,
    arms: list[seq.ArmSpec],
    seed: str,
    lists: dict[str, list[seq.SlotSpec]],
) -> Sequence:
    """The write of :func:`sequence_generate`: the sequence with its fingerprint (computed
    before the insert, so no row is ever unsealed), its slots and its strata."""
    blocks = method == Method.PERMUTED_BLOCKS
    sequence = Sequence.objects.create(
        trial=trial,
        method=method,
        environment=environment,
        block_sizes=block_sizes if blocks else [],
        factors=factors,
        slots_per_stratum=length if blocks else 0,
        probability=probability,
        arms=[[a.code, a.ratio] for a in arms],
        seed=seed,
        fingerprint=seq.fingerprint(
            method=method,
            arms=arms,
            block_sizes=block_sizes if blocks else [],
            factors=factors,
            probability=str(probability),
            seed=seed,
            slots=[(key, s.position, s.arm) for key, slots in lists.items() for s in slots],
        ),
        generated_by=by,
    )
    if not blocks:
        # One lock row for the whole trial: minimisation looks at every earlier allocation.
        Stratum.objects.create(sequence=sequence, key="all", size=10**9)
        return sequence
    arm_ids = dict(trial.arms.values_list("code", "pk"))
    Slot.objects.bulk_create(
        [
            Slot(
                sequence=sequence,
                stratum=key,
                position=s.position,
                block=s.block,
                block_size=s.block_size,
                arm_id=arm_ids[s.arm],
            )
            for key, slots in lists.items()
            for s in slots
        ],
        batch_size=2000,
    )
    Stratum.objects.bulk_create(
        [Stratum(sequence=sequence, key=k, size=len(v)) for k, v in lists.items()]
    )
    return sequence


def sequence_fingerprint_recompute(*, sequence: Sequence) -> str:
    """The fingerprint recomputed from the stored configuration, seed and slots."""
    triples = list(sequence.slots.values_list("stratum", "position", "arm__code"))
    return seq.fingerprint(
        method=sequence.method,
        arms=[seq.ArmSpec(code=c, ratio=r) for c, r in sequence.arms],
        block_sizes=sequence.block_sizes,
        factors=sequence.factors,
        probability=str(sequence.probability),
        seed=sequence.seed,
        slots=triples,
    )


@top_level
def sequence_activate(*, by: User, sequence: Sequence) -> Sequence:
    """Go live: the sequence becomes the one used for its trial in its environment."""
    if not can_manage_sequences(by):
        raise NotAllowed()
    sequence = Sequence.objects.select_for_update().get(pk=sequence.pk)
    if sequence.status != SequenceStatus.GENERATED:
        raise SequenceError(_("Only a generated sequence can be activated."))
    if Sequence.objects.filter(
        trial=sequence.trial_id, environment=sequence.environment, status=SequenceStatus.ACTIVE
    ).exists():
        raise SequenceError(
            _("Another sequence is active for this trial and environment; retire it first.")
        )
    if sequence_fingerprint_recompute(sequence=sequence) != sequence.fingerprint:
        raise SequenceError(_("The stored list does not match its fingerprint."))
    sequence.status = SequenceStatus.ACTIVE
    sequence.activated_by = by
    sequence.activated_at = timezone.now()
    with audit_reason("sequence go-live"):
        sequence.save(update_fields=["status", "activated_by", "activated_at"])
    # A production list going live opens recruitment (set-up → recruiting).
    trial = Trial.objects.select_for_update().get(pk=sequence.trial_id)
    status = lifecycle.status_after_activation(trial.status, sequence.environment)
    if status != trial.status:
        trial.status = status
        with audit_reason("recruitment opened: production sequence go-live"):
            trial.save(update_fields=["status"])
    return sequence


@top_level
def sequence_retire(*, by: User, sequence: Sequence, reason: str) -> Sequence:
    if not can_manage_sequences(by):
        raise NotAllowed()
    if not reason.strip():
        raise ValidationError({"reason": [_("Give a reason.")]})
    sequence = Sequence.objects.select_for_update().get(pk=sequence.pk)
    if sequence.status == SequenceStatus.RETIRED:
        raise SequenceError(_("The sequence is already retired."))
    sequence.status = SequenceStatus.RETIRED
    sequence.retired_by = by
    sequence.retired_at = timezone.now()
    with audit_reason(reason):
        sequence.save(update_fields=["status", "retired_by", "retired_at"])
    return sequence


# --- trial status (lifecycle) --------------------------------------------------------------------
TRIAL_STATUS_ROLES = (Role.STATISTICIAN, Role.ADMINISTRATOR)

TRIAL_STATUS_REFUSALS = {
    "unknown_status": _("Choose a trial status."),
    "same_status": _("The trial already has this status."),
    "recruiting_needs_go_live": _(
        "Recruitment opens when a production sequence is activated, not by hand."
    ),
    "transition_not_allowed": _("This status change does not follow the trial lifecycle."),
    "no_active_production_sequence": _(
        "Recruitment can reopen only while a production sequence is active."
    ),
}


def can_change_trial_status(user: User) -> bool:
    """Statisticians and administrators close (and reopen) recruitment."""
    return bool(
        getattr(user, "is_authenticated", False) and access_for(user).has_role(*TRIAL_STATUS_ROLES)
    )


@top_level
def trial_status_change(*, by: User, trial: Trial, status: str, reason: str) -> Trial:
    """Move the trial along its lifecycle by hand (closed to recruitment, reopened, closed),
    with a reason that enters the audit trail. Set-up → recruiting happens only when a
    production sequence is activated (:func:`sequence_activate`)."""
    if not can_change_trial_status(by):
        raise NotAllowed()
    if not (reason or "").strip():
        raise ValidationError({"reason": [_("Give the reason for the status change.")]})
    trial = Trial.objects.select_for_update().get(pk=trial.pk)
    production_active = Sequence.objects.filter(
        trial=trial, environment=Environment.PRODUCTION, status=SequenceStatus.ACTIVE
    ).exists()
    refusal = lifecycle.transition_refusal(
        trial.status, status, production_sequence_active=production_active
    )
    if refusal:
        raise TrialStatusError(TRIAL_STATUS_REFUSALS[refusal], reasons=[refusal])
    previous = trial.status
    trial.status = status
    with audit_reason(f"trial status {previous} → {status}: {reason.strip()}"):
        trial.save(update_fields=["status"])
    return trial


# --- randomisation ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Randomised:
    allocation: Allocation
    created: bool


def _existing(trial: Trial, participant: Participant) -> Allocation | None:
    return (
        Allocation.objects.select_related("arm", "trial")
        .filter(trial=trial, participant=participant)
        .first()
    )


def _return_existing(existing: Allocation | None) -> Randomised:
    if existing is None:  # pragma: no cover - an allocation is never deleted
        raise RandomisationUnavailable()
    if existing.status == AllocationStatus.CORRECTED_IN_ERROR:
        raise AllocationCorrected()
    return Randomised(allocation=existing, created=False)


def _check_randomisation(readiness: Readiness) -> RandomisationError | None:
    """The refusal the readiness facts call for (None: the participant may be randomised)."""
    if readiness.trial_refusal:
        return TrialNotRecruiting.for_reason(readiness.trial_refusal)
    if readiness.consent_reasons:
        return NoRandomisationConsent(reasons=readiness.consent_reasons)
    if readiness.screening_reasons:
        return NotEligible(reasons=readiness.screening_reasons)
    return None


def _minimised_arm(
    *, sequence: Sequence, draw_index: int, levels: dict[str, str]
) -> seq.MinimisationResult:
    """Pocock–Simon under the sequence's lock: the earlier active allocations of the
    sequence counted by arm and factor level in one aggregate query."""
    paths = {
        f: "participant__site__code" if f == "site" else f"participant__{f}"
        for f in sequence.factors
    }
    rows = (
        Allocation.objects.filter(sequence=sequence, status=AllocationStatus.ACTIVE)
        .values("arm__code", *paths.values())
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts = rules.minimisation_counts(
        ({**row, **{f: row[path] for f, path in paths.items()}} for row in rows),
        sequence.factors,
        arm="arm__code",
        count="n",
    )
    return seq.minimise(
        arms=[seq.ArmSpec(code=c, ratio=r) for c, r in sequence.arms],
        counts=counts,
        levels=levels,
        probability=float(sequence.probability),
        draw=seq.minimisation_draw(sequence.seed, draw_index),
    )


_ALLOCATION_COLUMNS = (
    "trial_id",
    "participant_id",
    "site_id",
    "arm_id",
    "trial_number",
    "sequence_id",
    "stratum",
    "slot_id",
    "screening_id",
    "randomised_at",
    "randomised_by_id",
    "request_id",
    "status",
)


def _allocation_insert_sql(*, arm_from: str, slot_from: str, source: str) -> str:
    """``INSERT`` of one allocation from a CTE row ``numbered`` (the trial's next number) and
    ``arm_from``/``slot_from`` (SQL expressions); the trial number is formatted as
    :func:`rules.trial_number` formats it (``tests/randomization/test_randomise_sql.py``)."""
    digits = rules.TRIAL_NUMBER_DIGITS
    number = (
        f"numbered.code || '-' || lpad(numbered.issued::text, "
        f"greatest({digits}, length(numbered.issued::text)), '0')"
    )
    values = (
        "numbered.id",
        "%(participant)s",
        "%(site)s",
        arm_from,
        number,
        "%(sequence)s",
        "%(key)s",
        slot_from,
        "%(screening)s",
        "%(now)s",
        "%(by)s",
        "%(request_id)s",
        "%(status)s",
    )
    return (
        # table and column names from the models, values as parameters
        f"INSERT INTO {Allocation._meta.db_table} ({', '.join(_ALLOCATION_COLUMNS)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM {source} "
        "RETURNING id, arm_id, slot_id, trial_number"
    )


# The trial's next number, under the trial row's lock, only while it recruits.
_NUMBERED = f"""
    numbered AS (
        UPDATE {Trial._meta.db_table} AS trial SET numbers_issued = trial.numbers_issued + 1
        WHERE trial.id = %(trial)s AND trial.status = ANY(%(open_statuses)s)
        RETURNING trial.id, trial.code, trial.numbers_issued AS issued
    )"""  # noqa: S608 - the table name from the model, values as parameters

# The stratum's next position and the slot there (None under minimisation).
_CLAIMED = f"""
    claimed AS (
        UPDATE {Stratum._meta.db_table} AS stratum SET used = stratum.used + 1
        FROM numbered
        WHERE stratum.sequence_id = %(sequence)s AND stratum.key = %(key)s
        AND stratum.used < stratum.size
        RETURNING stratum.used AS position, (
            SELECT slot.id FROM {Slot._meta.db_table} AS slot
            WHERE slot.sequence_id = stratum.sequence_id AND slot.stratum = stratum.key
            AND slot.position = stratum.used
        ) AS slot_id, (
            SELECT slot.arm_id FROM {Slot._meta.db_table} AS slot
            WHERE slot.sequence_id = stratum.sequence_id AND slot.stratum = stratum.key
            AND slot.position = stratum.used
        ) AS arm_id
    )"""  # noqa: S608 - table names from the models, values as parameters

# Permuted blocks: number, slot and allocation in ONE statement. Outside a transaction the
# database commits it on its own, so the trial row is locked for the statement and its
# commit only: no round trip to Python (and, in a threaded server, no wait for the
# interpreter lock) while other requests queue behind it. All or nothing: an exhausted
# stratum leaves the arm empty and the insert fails its NOT NULL, a parallel request for
# the same participant fails the insert's unique constraint; either undoes the number and
# the slot with it (no gap, no skipped slot).
_RANDOMISE_BLOCKS = (
    f"WITH {_NUMBERED}, {_CLAIMED}, allocated AS ("
    + _allocation_insert_sql(
        arm_from="claimed.arm_id",
        slot_from="claimed.slot_id",
        source="numbered LEFT JOIN claimed ON true",
    )
    + ") SELECT allocated.id, allocated.arm_id, allocated.slot_id, allocated.trial_number "
    "FROM allocated"
)

# Minimisation, first statement: the number and the stratum's next position (the arm is
# decided in Python from the counts, under both locks); second statement: the allocation.
_MINIMISATION_CLAIM = (
    f"WITH {_NUMBERED}, {_CLAIMED} SELECT claimed.position, numbered.issued "  # noqa: S608
    "FROM numbered LEFT JOIN claimed ON true"
)
_MINIMISATION_INSERT = (
    "WITH numbered AS (SELECT %(trial)s::bigint AS id, %(code)s::text AS code, "
    "%(issued)s::integer AS issued) "
    + _allocation_insert_sql(arm_from="%(arm)s", slot_from="NULL", source="numbered")
)


def _constraint(error: IntegrityError) -> str:
    cause = error.__cause__
    diag = getattr(cause, "diag", None)
    return (getattr(diag, "constraint_name", None) or getattr(diag, "column_name", None)) or ""


def _refused_write(trial: Trial, participant: Participant, error: IntegrityError) -> Randomised:
    """What a refused allocation statement means: nothing was written (the statement is
    all or nothing); a parallel request got there first (return its allocation), or the
    stratum has no slot left."""
    constraint = _constraint(error)
    if constraint == "allocation_once_per_participant":
        return _return_existing(_existing(trial, participant))
    if constraint == "arm_id":  # NOT NULL: no slot (left) in the stratum
        raise RandomisationUnavailable(reasons=["sequence_exhausted"]) from None
    raise error


def _nothing_claimed(trial: Trial, sequence: Sequence, key: str) -> RandomisationError:
    """Why the statement wrote nothing: the trial stopped recruiting meanwhile, or the
    stratum is missing or used up."""
    status = Trial.objects.filter(pk=trial.pk).values_list("status", flat=True).first()
    refusal_code = lifecycle.recruitment_refusal(status or "", current_environment())
    if refusal_code:
        return TrialNotRecruiting.for_reason(refusal_code)
    exists = Stratum.objects.filter(sequence=sequence, key=key).exists()
    return RandomisationUnavailable(reasons=["sequence_exhausted" if exists else "no_stratum"])


def _statement_alone() -> contextlib.AbstractContextManager[Any]:
    """Outside a transaction: nothing (the statement commits itself). Inside the caller's
    transaction (``.nested``, a test): a savepoint, so that a refused statement leaves the
    caller's transaction usable."""
    return transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()


def _allocate(
    *,
    by: User,
    trial: Trial,
    participant: Participant,
    screening: Screening,
    sequence: Sequence,
    key: str,
    levels: dict[str, str],
    arms: list[Arm],
    request_id: str | None,
) -> Randomised:
    """The write of :func:`allocation_randomise`: the trial row's lock first (its next
    number), then the stratum's (its next slot), then the allocation."""
    params: dict[str, Any] = {
        "trial": trial.pk,
        "open_statuses": lifecycle.recruiting_statuses(current_environment()),
        "sequence": sequence.pk,
        "key": key,
        "participant": participant.pk,
        "site": participant.site_id,
        "screening": screening.pk,
        "now": timezone.now(),
        "by": by.pk,
        "request_id": (request_id or "")[:64],
        "status": AllocationStatus.ACTIVE,
    }
    decision = None
    try:
        if sequence.method == Method.MINIMISATION:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(_MINIMISATION_CLAIM, params)
                    claim = cursor.fetchone()
                if claim is None:
                    raise _nothing_claimed(trial, sequence, key)
                position, issued = claim
                if position is None:
                    raise RandomisationUnavailable(reasons=["sequence_exhausted"])
                decision = _minimised_arm(sequence=sequence, draw_index=position - 1, levels=levels)
                arm_pk = next(a.pk for a in arms if a.code == decision.chosen)
                with connection.cursor() as cursor:
                    cursor.execute(
                        _MINIMISATION_INSERT,
                        {**params, "code": trial.code, "issued": issued, "arm": arm_pk},
                    )
                    row = cursor.fetchone()
                _store_decision(row[0], decision, levels, sequence)
        else:
            with _statement_alone(), connection.cursor() as cursor:
                cursor.execute(_RANDOMISE_BLOCKS, params)
                row = cursor.fetchone()
            if row is None:
                raise _nothing_claimed(trial, sequence, key)
    except IntegrityError as error:
        return _refused_write(trial, participant, error)
    allocation_pk, arm_pk, slot_pk, trial_number = row
    allocation = Allocation(
        pk=allocation_pk,
        trial=trial,
        participant=participant,
        site_id=participant.site_id,
        arm=next(a for a in arms if a.pk == arm_pk),
        trial_number=trial_number,
        sequence=sequence,
        stratum=key,
        slot_id=slot_pk,
        screening=screening,
        randomised_at=params["now"],
        randomised_by=by,
        request_id=params["request_id"],
        status=AllocationStatus.ACTIVE,
    )
    allocation._state.adding = False
    return Randomised(allocation=allocation, created=True)


def _store_decision(
    allocation_pk: int, decision: seq.MinimisationResult, levels: dict[str, str], sequence: Sequence
) -> None:
    MinimisationDecision.objects.create(
        allocation_id=allocation_pk,
        levels=levels,
        imbalance=decision.imbalance,
        preferred=decision.preferred,
        probability=sequence.probability,
        draw=decision.draw,
        chosen=decision.chosen,
    )


@single_statement
def allocation_randomise(
    *, by: User, trial: Trial, participant: Participant, request_id: str | None = None
) -> Randomised:
    """Randomise ``participant`` in ``trial``; idempotent.

    Requires a current eligible screening and randomisation consent. Every read and check
    comes first, without a lock and outside a transaction. Then the write, all or nothing:
    the trial's next gapless number under the trial row's lock (only while the trial
    recruits: a trial closed meanwhile refuses), the stratum's next slot under its row's
    lock (always in this order: no deadlock), the allocation with who and when. Under
    permuted blocks that is one statement the database commits on its own; under
    minimisation the arm is decided between two statements of one transaction, from the
    counts read under the locks. The same participant again returns the existing
    allocation (``created=False``), also when a parallel request got there first (the
    unique constraint on one allocation per participant refuses the second insert, which
    undoes its number and slot). Unique constraints (one allocation per participant per
    trial, one use per slot, unique trial number) back the locks up.
    """
    _require_site_write(by, participant)
    # No lock: the latest screening with the trial's status and any allocation (a repeat
    # ends here), consent, and the active sequence.
    latest = latest_screening(trial=trial, participant=participant)
    if getattr(latest, "allocation_pk", None) is not None:
        return _return_existing(_existing(trial, participant))
    readiness = randomisation_readiness(trial=trial, participant=participant, latest=latest)
    refusal = _check_randomisation(readiness)
    if refusal is not None:
        raise refusal
    screening = readiness.screening
    if screening is None:  # pragma: no cover - not being screened is a screening reason
        raise NotEligible()
    sequence = Sequence.objects.filter(
        trial=trial, environment=current_environment(), status=SequenceStatus.ACTIVE
    ).first()
    if sequence is None:
        raise RandomisationUnavailable(reasons=["no_active_sequence"])
    arms = list(trial.arms.all())  # prefetched by trial_get
    levels = participant_levels(participant, sequence.factors)
    key = (
        "all"
        if sequence.method == Method.MINIMISATION
        else seq.stratum_key(sequence.factors, levels)
    )
    with audit_reason("randomisation"):
        return _allocate(
            by=by,
            trial=trial,
            participant=participant,
            screening=screening,
            sequence=sequence,
            key=key,
            levels=levels,
            arms=arms,
            request_id=request_id,
        )


# --- corrections (two persons) -------------------------------------------------------------------
CORRECTION_ROLES = (Role.INVESTIGATOR, Role.STATISTICIAN)


def _correction_roles(user: User, allocation: Allocation) -> list[str]:
    """The correction roles ``user`` holds for this allocation: investigator at its site,
    statistician (sponsor-wide)."""
    access = access_for(user)
    roles: list[str] = []
    if access.can_write_site(allocation.site_id, roles={Role.INVESTIGATOR}):
        roles.append(Role.INVESTIGATOR)
    if access.has_role(Role.STATISTICIAN):
        roles.append(Role.STATISTICIAN)
    return roles


@top_level
def correction_propose(*, by: User, allocation: Allocation, reason: str) -> AllocationCorrection:
    """Propose marking ``allocation`` as randomised in error (investigator or statistician)."""
    roles = _correction_roles(by, allocation)
    if not roles:
        raise NotAllowed()
    if not (reason or "").strip():
        raise ValidationError({"reason": [_("Give the reason for the correction.")]})
    allocation = Allocation.objects.select_for_update().get(pk=allocation.pk)
    if allocation.status != AllocationStatus.ACTIVE:
        raise CorrectionError(_("This allocation has already been corrected."))
    if allocation.corrections.filter(status=CorrectionStatus.PROPOSED).exists():
        raise CorrectionError(
            _("A correction of this allocation is already waiting for confirmation.")
        )
    with audit_reason(reason):
        return AllocationCorrection.objects.create(
            allocation=allocation, reason=reason.strip(), proposed_by=by, proposed_role=roles[0]
        )


@top_level
def correction_decide(
    *, by: User, correction: AllocationCorrection, confirm: bool, note: str = ""
) -> AllocationCorrection:
    """Confirm (or reject) a proposed correction: a different person with a different role.

    On confirmation the allocation is marked *randomised in error*; nothing else about it
    changes and its slot stays used.
    """
    correction = AllocationCorrection.objects.select_for_update().get(pk=correction.pk)
    allocation = Allocation.objects.select_for_update().get(pk=correction.allocation_id)
    if correction.status != CorrectionStatus.PROPOSED:
        raise CorrectionError(_("This correction has already been decided."))
    if by.pk == correction.proposed_by_id:
        raise CorrectionError(
            _("A correction must be confirmed by someone other than the proposer."),
            reasons=["same_person"],
        )
    roles = [r for r in _correction_roles(by, allocation) if r != correction.proposed_role]
    if not roles:
        raise CorrectionError(
            _("A correction must be confirmed by someone with a different role than the proposer."),
            reasons=["same_role"],
        )
    if not confirm and not note.strip():
        raise ValidationError({"note": [_("Give the reason for rejecting.")]})
    correction.status = CorrectionStatus.CONFIRMED if confirm else CorrectionStatus.REJECTED
    correction.decided_by = by
    correction.decided_role = roles[0]
    correction.decided_at = timezone.now()
    correction.decision_note = note.strip()
    with audit_reason(f"correction {correction.status}: {correction.reason}"):
        correction.save(
            update_fields=["status", "decided_by", "decided_role", "decided_at", "decision_note"]
        )
        if confirm:
            allocation.status = AllocationStatus.CORRECTED_IN_ERROR
            allocation.save(update_fields=["status"])
            hooks.allocation_changed.fire(allocation=allocation)
    return correction


# --- TwiCs: offer, decision, disclosure -------------------------------------------------------------
def _require_active_allocation(
    by: User, allocation: Allocation, error: type[RandomisationError] = RandomisationError
) -> None:
    if not access_for(by).can_write_site(allocation.site_id):
        raise NotAllowed()
    if allocation.status != AllocationStatus.ACTIVE:
        raise error(
            _("This allocation was corrected (randomised in error)."),
            reasons=["corrected_in_error"],
        )


def _before(value: date | None, earliest: date | None, message: StrOrPromise) -> Messages | None:
    """``[message]`` when ``value`` lies before ``earliest``."""
    if value is not None and earliest is not None and value < earliest:
        return [message]
    return None


def _check_offer_decision(
    *,
    randomised_on: date,
    died_on: date | None,
    offered_on: date,
    decision: str,
    decided_on: date | None,
    refusal_reason: str,
    consent_form_version: ConsentFormVersion | None,
    consent_date: date | None,
) -> tuple[FieldErrors, dict[str, Any]]:
    """The field errors of an offer and decision (empty: valid) and the values to store: a
    pending decision keeps no decision date, reason or consent; a refusal no consent; an
    acceptance no reason for refusing."""
    if decision == Decision.PENDING:
        decided_on, refusal_reason, consent_form_version, consent_date = None, "", None, None
    elif decision == Decision.REFUSED:
        consent_form_version, consent_date = None, None
    elif decision == Decision.ACCEPTED:
        refusal_reason = ""
    errors: FieldErrors = {}
    _put(
        errors,
        "offered_on",
        _future_error(offered_on, "offered_on")
        or _before(offered_on, randomised_on, _("The offer cannot precede randomisation.")),
    )
    if decision not in Decision.values:
        errors["decision"] = [_("Choose pending, accepted or refused.")]
    if decision != Decision.PENDING:
        if decided_on is None:
            errors["decided_on"] = [_("Enter the date of the decision.")]
        else:
            _put(
                errors,
                "decided_on",
                _before(decided_on, offered_on, _("The decision cannot precede the offer."))
                or _future_error(decided_on, "decided_on"),
            )
    if decision == Decision.REFUSED and not refusal_reason.strip():
        errors["refusal_reason"] = [_("Give the reason for refusing (or 'not given').")]
    if decision == Decision.ACCEPTED:
        _check_trial_consent(errors, offered_on, consent_form_version, consent_date)
    _after_death(errors, "offered_on", offered_on, died_on)
    _after_death(errors, "decided_on", decided_on, died_on)
    _after_death(errors, "consent_date", consent_date, died_on)
    values = {
        "offered_on": offered_on,
        "decision": decision,
        "decided_on": decided_on,
        "refusal_reason": refusal_reason.strip(),
        "consent_form_version": consent_form_version,
        "consent_date": consent_date,
    }
    return errors, values


def _check_trial_consent(
    errors: FieldErrors,
    offered_on: date,
    consent_form_version: ConsentFormVersion | None,
    consent_date: date | None,
) -> None:
    """An acceptance names the trial consent form version in effect on the consent date,
    which lies between the offer and today."""
    if consent_form_version is None:
        errors["consent_form_version"] = [_("Choose the trial consent form version.")]
    if consent_date is None:
        errors["consent_date"] = [_("Enter the date of trial consent.")]
        return
    dated = _future_error(consent_date, "consent_date") or _before(
        consent_date, offered_on, _("Trial consent cannot precede the offer.")
    )
    if dated:
        errors["consent_date"] = dated
    elif consent_form_version is not None and not consent_form_version.is_effective_on(
        consent_date
    ):
        errors["consent_form_version"] = [
            _("This form version was not in effect on the consent date.")
        ]


def _offer_snapshot(values: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    cfv = values["consent_form_version"]
    return tuple(
        (k, cfv.pk if k == "consent_form_version" and cfv is not None else v)
        for k, v in values.items()
    )


@top_level
def offer_decision_record(
    *,
    by: User,
    allocation: Allocation,
    offered_on: date,
    decision: str,
    decided_on: date | None = None,
    refusal_reason: str = "",
    consent_form_version: ConsentFormVersion | None = None,
    consent_date: date | None = None,
    reason: str = "",
) -> InterventionOffer:
    """Record (or update, with a reason) the offer of the intervention and the decision.

    Intervention arm only. Accepting needs the trial consent form version and date;
    refusing needs a reason. Refusers stay in the intervention arm.
    """
    # Lock the allocation (only its row: not the arm joined in, which every allocation of the
    # arm shares): concurrent saves of the same offer queue instead of colliding.
    allocation = (
        Allocation.objects.select_for_update(of=("self",))
        .select_related("arm")
        .get(pk=allocation.pk)
    )
    _require_active_allocation(by, allocation, OfferError)
    if not allocation.arm.is_intervention:
        raise OfferError(
            _("Only participants in the intervention arm are offered the intervention."),
            reasons=["not_intervention_arm"],
        )
    errors, values = _check_offer_decision(
        randomised_on=timezone.localdate(allocation.randomised_at),
        died_on=death_date(participant_id=allocation.participant_id),
        offered_on=offered_on,
        decision=decision,
        decided_on=decided_on,
        refusal_reason=refusal_reason,
        consent_form_version=consent_form_version,
        consent_date=consent_date,
    )
    if errors:
        raise ValidationError(errors)

    offer = InterventionOffer.objects.select_for_update().filter(allocation=allocation).first()
    if offer is None:
        with audit_reason(reason or None):
            offer = InterventionOffer.objects.create(
                allocation=allocation, offered_by=by, recorded_by=by, **values
            )
            hooks.allocation_changed.fire(allocation=allocation)
        return offer
    if _offer_snapshot({k: getattr(offer, k) for k in values}) == _offer_snapshot(values):
        return offer
    if offer.decision != Decision.PENDING and not reason.strip():
        raise ValidationError({"reason": [_("Give a reason for changing a recorded decision.")]})
    for k, v in values.items():
        setattr(offer, k, v)
    offer.recorded_by = by
    offer.recorded_at = timezone.now()
    with audit_reason(reason or None):
        offer.save()
        hooks.allocation_changed.fire(allocation=allocation)
    return offer


def _check_disclosure(
    *, randomised_on: date, died_on: date | None, disclosed_on: date, description: str
) -> FieldErrors:
    errors: FieldErrors = {}
    _put(
        errors,
        "disclosed_on",
        _future_error(disclosed_on, "disclosed_on")
        or _before(
            disclosed_on,
            randomised_on,
            _("A disclosure of the allocation cannot precede randomisation."),
        ),
    )
    _after_death(errors, "disclosed_on", disclosed_on, died_on)
    if not description.strip():
        errors["description"] = [_("Describe what happened.")]
    return errors


@top_level
def disclosure_record(
    *, by: User, allocation: Allocation, disclosed_on: date, description: str
) -> ControlDisclosure:
    """Record an accidental disclosure to a control-arm participant (a protocol deviation)."""
    if not access_for(by).can_write_site(allocation.site_id):
        raise NotAllowed()
    if allocation.arm.is_intervention:
        raise DisclosureError(
            _("Disclosures are recorded for control-arm participants only."),
            reasons=["not_control_arm"],
        )
    errors = _check_disclosure(
        randomised_on=timezone.localdate(allocation.randomised_at),
        died_on=death_date(participant_id=allocation.participant_id),
        disclosed_on=disclosed_on,
        description=description,
    )
    if errors:
        raise ValidationError(errors)
    with audit_reason("protocol deviation: control-arm disclosure"):
        disclosure = ControlDisclosure.objects.create(
            allocation=allocation,
            disclosed_on=disclosed_on,
            description=description.strip(),
            recorded_by=by,
        )
        hooks.deviation_reported.fire(
            allocation=allocation,
            by=by,
            occurred_on=disclosed_on,
            deviation_type="control_arm_disclosure",
            description=disclosure.description,
        )
    return disclosure


# --- start of treatment (day 0) --------------------------------------------------------------------
def _check_treatment_start(
    *, randomised_on: date, died_on: date | None, planned: date | None, actual: date | None
) -> FieldErrors:
    errors: FieldErrors = {}
    if planned is None and actual is None:
        errors["planned"] = [_("Enter a planned or an actual date.")]
    precede = _("Day 0 cannot precede randomisation.")
    _put(errors, "planned", _before(planned, randomised_on, precede))
    _put(
        errors,
        "actual",
        _before(actual, randomised_on, precede) or _future_error(actual, "actual"),
    )
    _after_death(errors, "planned", planned, died_on)
    _after_death(errors, "actual", actual, died_on)
    return errors


@top_level
def treatment_start_set(
    *,
    by: User,
    allocation: Allocation,
    planned: date | None = None,
    actual: date | None = None,
    reason: str = "",
) -> Allocation:
    """Record the planned and/or actual start of treatment (day 0, SPEC.md §3.4) and
    (re-)anchor the follow-up schedule on it: on the actual date once known, otherwise on
    the planned date. Changing a recorded date needs a reason."""
    allocation = (
        # Only the allocation's row: the joined trial row is the randomiser's lock.
        Allocation.objects.select_for_update(of=("self",))
        .select_related("participant", "trial", "arm")
        .get(pk=allocation.pk)
    )
    _require_active_allocation(by, allocation, TreatmentStartError)
    errors = _check_treatment_start(
        randomised_on=timezone.localdate(allocation.randomised_at),
        died_on=death_date(participant_id=allocation.participant_id),
        planned=planned,
        actual=actual,
    )
    if errors:
        raise ValidationError(errors)
    new_planned = planned if planned is not None else allocation.treatment_start_planned
    new_actual = actual if actual is not None else allocation.treatment_start_actual
    overwrites = allocation.treatment_start_planned not in (
        None,
        new_planned,
    ) or allocation.treatment_start_actual not in (None, new_actual)
    if overwrites and not reason.strip():
        raise ValidationError({"reason": [_("Give a reason for changing a recorded date.")]})
    if (new_planned, new_actual) == (
        allocation.treatment_start_planned,
        allocation.treatment_start_actual,
    ):
        return allocation
    allocation.treatment_start_planned = new_planned
    allocation.treatment_start_actual = new_actual
    with audit_reason(reason.strip() or "start of treatment recorded"):
        allocation.save(update_fields=["treatment_start_planned", "treatment_start_actual"])
        hooks.treatment_started.fire(
            participant=allocation.participant,
            trial=allocation.trial,
            day0=new_actual or new_planned,
            is_actual=new_actual is not None,
        )
    return allocation
