"""Reads for the randomization screens and API, with access control.

Concealment: sequences, slots and seeds are read only through the ``sequence_*``
functions here, which refuse everyone but a statistician holding the
``randomization.manage_sequences`` permission. No other read in this app touches
an unused slot.
"""

from __future__ import annotations

from collections import Counter

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from cohort.models import Participant
from core.access import CLINICAL_READERS, access_for
from core.models import Role
from randomization.lifecycle import recruitment_refusal
from randomization.models import (
    Allocation,
    AllocationCorrection,
    AllocationStatus,
    CorrectionStatus,
    Criterion,
    Decision,
    Screening,
    ScreeningAnswer,
    Sequence,
    Slot,
    Trial,
)
from randomization.services import can_manage_sequences, current_environment

SPONSOR_READERS = frozenset({Role.INVESTIGATOR, Role.DATA_MANAGER, Role.STATISTICIAN})


# --- trials and participants ----------------------------------------------------------------
def trial_list(*, user) -> QuerySet[Trial]:
    if not access_for(user).has_role(*CLINICAL_READERS):
        return Trial.objects.none()
    return Trial.objects.prefetch_related("arms").order_by("code")


def trial_get(*, user, code: str) -> Trial:
    trial = trial_list(user=user).filter(code__iexact=code).first()
    if trial is None:
        raise Http404
    return trial


def trial_for_status_change(*, user, code: str) -> Trial:
    """A trial whose lifecycle ``user`` may change (statistician or administrator), or 404."""
    if not access_for(user).has_role(Role.STATISTICIAN, Role.ADMINISTRATOR):
        raise Http404
    trial = Trial.objects.filter(code__iexact=code).first()
    if trial is None:
        raise Http404
    return trial


# --- screenings -----------------------------------------------------------------------------
def screening_list(*, user, trial: Trial) -> QuerySet[Screening]:
    return access_for(user).scope(
        Screening.objects.filter(trial=trial).select_related("participant", "screened_by", "site"),
        roles=CLINICAL_READERS,
    )


def screening_get(*, user, trial: Trial, pk: int) -> Screening:
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


# --- allocations ----------------------------------------------------------------------------
def allocation_list(*, user, trial: Trial) -> QuerySet[Allocation]:
    return access_for(user).scope(
        Allocation.objects.filter(trial=trial).select_related(
            "participant", "arm", "randomised_by", "site", "offer", "trial"
        ),
        roles=CLINICAL_READERS,
    )


def allocation_get(*, user, trial: Trial, trial_number: str) -> Allocation:
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


def arm_counts(*, user, trial: Trial) -> list[dict] | None:
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
def corrections_visible(*, user, trial: Trial) -> QuerySet[AllocationCorrection]:
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


def corrections_open_count(*, user, trial: Trial) -> int:
    return (
        corrections_visible(user=user, trial=trial).filter(status=CorrectionStatus.PROPOSED).count()
    )


# --- sequences: statistician with the sequence permission only ------------------------------
def _require_sequence_rights(user) -> None:
    if not can_manage_sequences(user):
        raise PermissionDenied


def sequence_list(*, user, trial: Trial) -> QuerySet[Sequence]:
    _require_sequence_rights(user)
    return (
        Sequence.objects.filter(trial=trial)
        .select_related("generated_by", "activated_by", "retired_by")
        .annotate(n_slots=Count("slots", distinct=True))
    )


def sequence_get(*, user, trial: Trial, pk: int) -> Sequence:
    sequence = sequence_list(user=user, trial=trial).filter(pk=pk).first()
    if sequence is None:
        raise Http404
    return sequence


def sequence_slots(*, user, sequence: Sequence) -> QuerySet[Slot]:
    _require_sequence_rights(user)
    return (
        Slot.objects.filter(sequence=sequence)
        .select_related("arm", "allocation")
        .order_by("stratum", "position")
    )


def sequence_balance(*, user, sequence: Sequence) -> list[dict]:
    """Per stratum: size, used, and the arm counts of the whole list (statistician only)."""
    _require_sequence_rights(user)
    counts: dict[str, Counter] = {}
    for stratum, arm in Slot.objects.filter(sequence=sequence).values_list("stratum", "arm__code"):
        counts.setdefault(stratum, Counter())[arm] += 1
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


def participant_panel(*, user, participant: Participant) -> dict | None:
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
            if recruitment_refusal(t.status, environment) is None
        ]
    )
    not_informed = any(not a.arm.is_intervention for a in allocations)
    # Timeline entries: {"on": moment or date, "recorded_at": when recorded, "text": ...}.
    timeline: list[dict] = []
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
def participant_records_after(*, participant: Participant, after, activities) -> list:
    """``core.hooks.participant_records_after``: allocations randomised, intervention decisions
    taken (trial) and treatments started (treatment) after ``after``, named for the nurse."""
    from core import hooks

    findings = []
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
