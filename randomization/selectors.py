"""Reads for the randomization screens and API, with access control.

Concealment: sequences, slots and seeds are read only through the ``sequence_*``
functions here, which refuse everyone but a statistician holding the
``randomization.manage_sequences`` permission. No other read in this app touches
an unused slot.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Count, Field, OuterRef, Prefetch, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from cohort.models import Death, Identity, Participant
from cohort.selectors import randomisation_consent
from core.access import CLINICAL_READERS, access_for
from core.models import Role, Site, User
from randomization import eligibility, lifecycle, rules
from randomization import sequences as seq
from randomization.models import (
    Allocation,
    AllocationCorrection,
    AllocationStatus,
    CorrectionStatus,
    Criterion,
    Decision,
    Environment,
    Screening,
    ScreeningAnswer,
    Sequence,
    Slot,
    Trial,
)

if TYPE_CHECKING:  # pragma: no cover
    from core.hooks import Finding

SPONSOR_READERS = frozenset({Role.INVESTIGATOR, Role.DATA_MANAGER, Role.STATISTICIAN})


# --- installation and rights ------------------------------------------------------------------
def current_environment() -> str:
    """Which sequences this installation uses: ``RANDOMISATION_ENVIRONMENT`` when set,
    otherwise *test* with DEBUG on and *production* with DEBUG off. A test list can never
    allocate on a production system (DEBUG off) unless configured explicitly."""
    configured = getattr(settings, "RANDOMISATION_ENVIRONMENT", "") or ""
    if configured in Environment.values:
        return configured
    return Environment.TEST if settings.DEBUG else Environment.PRODUCTION


def can_manage_sequences(user: User) -> bool:
    """The statistician role *and* the sequence permission (granted per person)."""
    return bool(
        getattr(user, "is_authenticated", False)
        and access_for(user).has_role(Role.STATISTICIAN)
        and user.has_perm("randomization.manage_sequences")
    )


# --- trials and participants ----------------------------------------------------------------
def trial_list(*, user: User) -> QuerySet[Trial]:
    if not access_for(user).has_role(*CLINICAL_READERS):
        return Trial.objects.none()
    return Trial.objects.prefetch_related("arms").order_by("code")


def trial_get(*, user: User, code: str) -> Trial:
    trial = trial_list(user=user).filter(code__iexact=code).first()
    if trial is None:
        raise Http404
    return trial


def recruitment_refusal(trial: Trial) -> str | None:
    """Why nobody can be screened or randomised in ``trial`` now (``lifecycle``), or None.

    The status is read from the database, not from the caller's (possibly stale) object.
    """
    status = Trial.objects.filter(pk=trial.pk).values_list("status", flat=True).first()
    return lifecycle.recruitment_refusal(status or trial.status, current_environment())


def trial_for_status_change(*, user: User, code: str) -> Trial:
    """A trial whose lifecycle ``user`` may change (statistician or administrator), or 404."""
    if not access_for(user).has_role(Role.STATISTICIAN, Role.ADMINISTRATOR):
        raise Http404
    trial = Trial.objects.filter(code__iexact=code).first()
    if trial is None:
        raise Http404
    return trial


# --- screenings -----------------------------------------------------------------------------
def screening_list(*, user: User, trial: Trial) -> QuerySet[Screening]:
    return access_for(user).scope(
        Screening.objects.filter(trial=trial).select_related("participant", "screened_by", "site"),
        roles=CLINICAL_READERS,
    )


def screening_get(*, user: User, trial: Trial, pk: int) -> Screening:
    screening = (
        screening_list(user=user, trial=trial)
        .prefetch_related(
            Prefetch(
                "answers",
                queryset=ScreeningAnswer.objects.select_related("criterion").order_by(
                    "criterion__order"
                ),
            )
        )
        .filter(pk=pk)
        .first()
    )
    if screening is None:
        raise Http404
    return screening


def criteria_current(*, trial: Trial) -> list[Criterion]:
    return list(
        Criterion.objects.filter(trial=trial, protocol_version=trial.protocol_version).order_by(
            "order", "code"
        )
    )


def stored_facts(*, participant: Participant, on: date) -> eligibility.StoredFacts:
    """What the system holds about ``participant`` that derived criteria are answered from.

    The date of birth is read here only to compute the age on the screening date; it is never
    stored with the screening nor shown by it (identifying data stay in the cohort's Identity).
    """
    date_of_birth = (
        Identity.objects.filter(participant=participant)
        .values_list("date_of_birth", flat=True)
        .first()
    )
    consent = randomisation_consent(participant, on)
    return eligibility.StoredFacts(
        date_of_birth=date_of_birth,
        primary_tumour=participant.primary_tumour or None,
        consent_reasons=tuple(consent.reasons),
        died_on=death_date(participant_id=participant.pk),
    )


@dataclass(frozen=True)
class ScreeningDraft:
    """Typed answers combined with the derived ones, and the verdict they get (no write)."""

    criteria: list[Criterion]
    answers: dict[str, str]
    derived: dict[str, eligibility.Derived]
    contradictions: list[eligibility.Contradiction]
    verdict: eligibility.EligibilityVerdict
    facts: eligibility.StoredFacts


def screening_evaluate(
    *, trial: Trial, participant: Participant, answers: dict[str, str], on: date | None = None
) -> ScreeningDraft:
    """Derive what the stored data decide, merge the typed answers, and judge (no write)."""
    day = on or timezone.localdate()
    criteria = criteria_current(trial=trial)
    facts = stored_facts(participant=participant, on=day)
    merged, derived, contradictions = eligibility.merge_answers(
        [
            eligibility.DerivableSpec(
                code=c.code, derived_from=c.derived_from, params=c.derivation_params or {}
            )
            for c in criteria
            if c.derived_from
        ],
        answers,
        facts,
        day,
    )
    result = eligibility.verdict(
        [eligibility.CriterionSpec(code=c.code, kind=c.kind) for c in criteria],
        merged,
        facts.consent_reasons or (),
    )
    return ScreeningDraft(
        criteria=criteria,
        answers=merged,
        derived=derived,
        contradictions=contradictions,
        verdict=result,
        facts=facts,
    )


def screening_verdict(
    *, trial: Trial, participant: Participant, answers: dict[str, str], on: date | None = None
) -> eligibility.EligibilityVerdict:
    """The verdict the given answers would get (no write): used for the live verdict."""
    return screening_evaluate(trial=trial, participant=participant, answers=answers, on=on).verdict


def latest_screening(*, trial: Trial, participant: Participant) -> Screening | None:
    """The participant's latest screening for ``trial``, with the trial's current row (its
    status as stored now) and ``allocation_pk``: the participant's allocation in the trial,
    if any (one query)."""
    return (
        Screening.objects.filter(trial=trial, participant=participant)
        .select_related("trial")
        .annotate(
            allocation_pk=Subquery(
                Allocation.objects.filter(
                    trial=OuterRef("trial_id"), participant=OuterRef("participant_id")
                ).values("pk")[:1]
            )
        )
        .order_by("-recorded_at", "-pk")
        .first()
    )


@dataclass(frozen=True)
class Readiness:
    """Why (not) a participant can be randomised now; no write, no lock."""

    screening: Screening | None
    screening_reasons: list[str]
    consent_reasons: list[str]
    trial_refusal: str | None = None

    @property
    def trial_closed(self) -> bool:
        return self.trial_refusal is not None

    @property
    def reasons(self) -> list[str]:
        return rules.readiness_reasons(
            self.trial_refusal, self.screening_reasons, self.consent_reasons
        )

    @property
    def ready(self) -> bool:
        return not self.reasons


_UNREAD: Any = object()


def randomisation_readiness(
    *, trial: Trial, participant: Participant, latest: Screening | None = _UNREAD
) -> Readiness:
    """Everything randomising needs to know before any lock, in three queries (the latest
    screening with the trial's status and any allocation; the consent records; withdrawals).
    ``latest``: the :func:`latest_screening` already read, if the caller has it."""
    screening = (
        latest_screening(trial=trial, participant=participant) if latest is _UNREAD else latest
    )
    status = screening.trial.status if screening is not None else None
    if status is None:  # not screened: the status is read on its own
        status = Trial.objects.filter(pk=trial.pk).values_list("status", flat=True).first()
    consent = randomisation_consent(participant, timezone.localdate())
    return Readiness(
        screening=screening,
        screening_reasons=rules.screening_reasons(
            screened=screening is not None,
            protocol_version=getattr(screening, "protocol_version", None),
            current_protocol=trial.protocol_version,
            eligible=screening is not None and screening.is_eligible,
            reasons=getattr(screening, "reasons", None) or [],
        ),
        consent_reasons=list(consent.reasons),
        trial_refusal=lifecycle.recruitment_refusal(status or trial.status, current_environment()),
    )


def death_date(*, participant_id: int) -> date | None:
    """The recorded date of death, or None."""
    return (
        Death.objects.filter(participant_id=participant_id)
        .values_list("died_on", flat=True)
        .first()
    )


# --- sequence set-up inputs -------------------------------------------------------------------
def arm_specs(trial: Trial) -> list[seq.ArmSpec]:
    """The trial's arms and ratio weights, intervention first."""
    return [
        seq.ArmSpec(code=a.code, ratio=a.ratio)
        for a in trial.arms.order_by("-is_intervention", "code")
    ]


def factor_levels(factors: list[str]) -> dict[str, list[str]]:
    """Every possible level of each factor (active sites; the participant field's choices)."""
    levels: dict[str, list[str]] = {}
    for factor in factors:
        if factor == "site":
            levels[factor] = list(
                Site.objects.filter(is_active=True).values_list("code", flat=True)
            )
        else:
            field = Participant._meta.get_field(factor)
            if not isinstance(field, Field) or field.choices is None:  # pragma: no cover
                raise TypeError(f"Participant.{factor} is not a field with choices")
            levels[factor] = [str(v) for v, _label in field.choices]
    return levels


# --- allocations ----------------------------------------------------------------------------
def allocation_list(*, user: User, trial: Trial) -> QuerySet[Allocation]:
    return access_for(user).scope(
        Allocation.objects.filter(trial=trial).select_related(
            "participant", "arm", "randomised_by", "site", "offer", "trial"
        ),
        roles=CLINICAL_READERS,
    )


def allocation_overview(*, user: User, trial: Trial) -> QuerySet[Allocation]:
    """The trial overview's allocations at the user's sites, newest first (keyset pages:
    ``("-randomised_at", "-pk")``, served by the indexes alloc_recent / alloc_site_recent),
    with only the relations the table shows."""
    return (
        allocation_list(user=user, trial=trial)
        .select_related(None)
        .select_related("participant", "arm", "site", "offer")
        .order_by("-randomised_at", "-pk")
    )


def screening_recent(*, user: User, trial: Trial, limit: int) -> list[Screening]:
    """The ``limit`` newest screenings at the user's sites (the trial overview's list)."""
    return list(
        screening_list(user=user, trial=trial)
        .select_related(None)
        .select_related("participant", "screened_by", "site")
        .order_by("-recorded_at", "-pk")[:limit]
    )


def allocation_get(*, user: User, trial: Trial, trial_number: str) -> Allocation:
    allocation = (
        allocation_list(user=user, trial=trial)
        .filter(trial_number=(trial_number or "").strip().upper())
        .first()
    )
    if allocation is None:
        raise Http404
    return allocation


def allocation_for_participant(*, trial: Trial, participant: Participant) -> Allocation | None:
    return (
        Allocation.objects.select_related("arm", "trial")
        .filter(trial=trial, participant=participant)
        .first()
    )


def arm_counts(*, user: User, trial: Trial) -> list[dict[str, Any]] | None:
    """Active allocations by arm, for sponsor-wide roles only (``None`` for site staff)."""
    if access_for(user).site_ids(SPONSOR_READERS) is not None:
        return None
    # counted from the partial index alloc_active_arm alone (an index-only scan)
    counts = dict(
        Allocation.objects.filter(trial=trial, status=AllocationStatus.ACTIVE)
        .order_by()
        .values_list("arm")
        .annotate(n=Count("*"))
    )
    return [
        {"code": arm.code, "name": arm.name, "n": counts.get(arm.pk, 0)}
        for arm in sorted(trial.arms.all(), key=lambda a: (not a.is_intervention, a.code))
    ]


def day0_help(allocation: Allocation) -> str:
    """Which date is day 0 for this participant (SPEC.md §3.4)."""
    if not allocation.arm.is_intervention:
        return _("Control arm: day 0 is the date of surgery.")
    offer = getattr(allocation, "offer", None)
    if offer is not None and offer.decision == Decision.REFUSED:
        return _(
            "Intervention offered and refused: day 0 is the date of the first standard-of-care treatment."
        )
    return _("Intervention arm: day 0 is the date of SBRT (surgery follows the same or next day).")


# --- corrections ------------------------------------------------------------------------------
def corrections_visible(*, user: User, trial: Trial) -> QuerySet[AllocationCorrection]:
    """Corrections the user may see: investigators at their sites, statisticians everywhere."""
    access = access_for(user)
    if not access.has_role(Role.INVESTIGATOR, Role.STATISTICIAN):
        return AllocationCorrection.objects.none()
    return access.scope(
        AllocationCorrection.objects.filter(allocation__trial=trial)
        .select_related("allocation", "allocation__participant", "proposed_by", "decided_by")
        .order_by("-proposed_at", "-pk"),  # newest first, a keyset page at a time
        site_field="allocation__site",
        roles={Role.INVESTIGATOR, Role.STATISTICIAN},
    )


def corrections_open_count(*, user: User, trial: Trial) -> int:
    return (
        corrections_visible(user=user, trial=trial).filter(status=CorrectionStatus.PROPOSED).count()
    )


# --- sequences: statistician with the sequence permission only ------------------------------
def _require_sequence_rights(user: User) -> None:
    if not can_manage_sequences(user):
        raise PermissionDenied


def sequence_list(*, user: User, trial: Trial) -> QuerySet[Sequence]:
    _require_sequence_rights(user)
    return (
        Sequence.objects.filter(trial=trial)
        .select_related("generated_by", "activated_by", "retired_by")
        .annotate(n_slots=Count("slots", distinct=True))
    )


def sequence_get(*, user: User, trial: Trial, pk: int) -> Sequence:
    sequence = sequence_list(user=user, trial=trial).filter(pk=pk).first()
    if sequence is None:
        raise Http404
    return sequence


def sequence_slots(*, user: User, sequence: Sequence) -> QuerySet[Slot]:
    _require_sequence_rights(user)
    return (
        Slot.objects.filter(sequence=sequence)
        .select_related("arm", "allocation")
        .order_by("stratum", "position")
    )


def sequence_balance(*, user: User, sequence: Sequence) -> list[dict[str, Any]]:
    """Per stratum: size, used, and the arm counts of the whole list (statistician only)."""
    _require_sequence_rights(user)
    counts: dict[str, Counter[str]] = {}
    for key, arm in Slot.objects.filter(sequence=sequence).values_list("stratum", "arm__code"):
        counts.setdefault(key, Counter())[arm] += 1
    rows = []
    for stratum in sequence.strata.order_by("key"):
        rows.append(
            {
                "key": stratum.key,
                "size": stratum.size,
                "used": stratum.used,
                "arms": dict(counts.get(stratum.key, {})),
            }
        )
    return rows


# --- participant page extension point and the not-informed flag ------------------------------
def control_allocations() -> QuerySet[Allocation]:
    """Control-arm allocations: their participants are never told about the trial
    (subscribed to ``core.hooks.not_informed_records``)."""
    return Allocation.objects.filter(arm__is_intervention=False)


def is_not_informed(participant: Participant) -> bool:
    """True when the participant is a control in any trial: never tell them about it."""
    return control_allocations().filter(participant=participant).exists()


def participant_panel(*, user: User, participant: Participant) -> dict[str, Any] | None:
    """The randomization panel of the cohort participant page (``core.hooks.participant_panels``)."""
    access = access_for(user)
    if not access.can_read_site(participant.site_id):
        return None
    allocations = list(
        Allocation.objects.filter(participant=participant)
        .select_related("trial", "arm", "offer")
        .order_by("randomised_at")
    )
    screenings = list(
        Screening.objects.filter(participant=participant)
        .select_related("trial")
        .order_by("-recorded_at")[:20]
    )
    # No screening offer for a deceased participant (the death row is usually joined already).
    try:
        deceased = participant.death is not None
    except ObjectDoesNotExist:
        deceased = False
    # ... nor for a trial that is not recruiting (its status, on this installation).
    environment = current_environment()
    trials = (
        []
        if deceased
        else [
            t
            for t in Trial.objects.order_by("code")
            if lifecycle.recruitment_refusal(t.status, environment) is None
        ]
    )
    not_informed = any(not a.arm.is_intervention for a in allocations)
    # Timeline entries: {"on": moment or date, "recorded_at": when recorded, "text": ...}.
    timeline: list[dict[str, Any]] = []
    for s in screenings:
        timeline.append(
            {
                "on": s.screened_on,
                "recorded_at": s.recorded_at,
                "text": _("Screened for %(trial)s: %(verdict)s")
                % {"trial": s.trial.code, "verdict": s.get_verdict_display()},
            }
        )
    for a in allocations:
        timeline.append(
            {
                "on": a.randomised_at,
                "recorded_at": a.randomised_at,
                "text": _("Randomised in %(trial)s as %(number)s: %(arm)s")
                % {"trial": a.trial.code, "number": a.trial_number, "arm": a.arm.name},
            }
        )
        offer = getattr(a, "offer", None)
        if offer is not None and offer.decided_on:
            timeline.append(
                {
                    "on": offer.decided_on,  # a date: the decision's time is not known
                    "recorded_at": offer.recorded_at,
                    "text": _("Intervention %(decision)s (%(trial)s)")
                    % {"decision": offer.get_decision_display().lower(), "trial": a.trial.code},
                }
            )
    return {
        "template": "randomization/_participant_panel.html",
        "context": {
            "participant": participant,
            "allocations": allocations,
            "screenings": screenings[:5],
            "trials": [t for t in trials if t.pk not in {a.trial_id for a in allocations}],
            "can_write": access.can_write_site(participant.site_id),
            "not_informed": not_informed,
        },
        "timeline": timeline,
        "banner": "not_informed" if not_informed else None,
        # Day 0 per allocation, for the cohort page's day-0 card.
        "day0": [
            {
                "trial": a.trial.code,
                "planned": a.treatment_start_planned,
                "actual": a.treatment_start_actual,
            }
            for a in allocations
        ],
    }


# --- hook subscribers (registered in randomization/apps.py) ---------------------------------
def participant_records_after(
    *, participant: Participant, after: date, activities: frozenset[str]
) -> list[Finding]:
    """``core.hooks.participant_records_after``: allocations randomised, intervention decisions
    taken (trial) and treatments started (treatment) after ``after``, named for the nurse."""
    from core import hooks

    findings: list[Finding] = []
    wants_trial = hooks.TRIAL in activities
    wants_treatment = hooks.TREATMENT in activities
    if not (wants_trial or wants_treatment):
        return findings
    allocations = (
        Allocation.objects.filter(participant=participant)
        .select_related("trial", "offer")
        .order_by("randomised_at", "pk")
    )
    for a in allocations:
        randomised_on = timezone.localdate(a.randomised_at)
        if wants_trial and randomised_on > after:
            findings.append(
                hooks.Finding(
                    kind="allocation",
                    text=_("allocation %(number)s in %(trial)s, randomised on %(date)s")
                    % {"number": a.trial_number, "trial": a.trial.code, "date": randomised_on},
                    on=randomised_on,
                )
            )
        offer = getattr(a, "offer", None)
        if wants_trial and offer is not None and offer.decided_on and offer.decided_on > after:
            findings.append(
                hooks.Finding(
                    kind="offer_decision",
                    text=_("intervention decision for %(number)s on %(date)s")
                    % {"number": a.trial_number, "date": offer.decided_on},
                    on=offer.decided_on,
                )
            )
        started = a.treatment_start_actual
        if wants_treatment and started and started > after:
            findings.append(
                hooks.Finding(
                    kind="treatment_started",
                    text=_("start of treatment (day 0) of %(number)s on %(date)s")
                    % {"number": a.trial_number, "date": started},
                    on=started,
                )
            )
    return findings
