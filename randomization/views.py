"""Screens: trial list and overview, screening with a live verdict, randomisation with a
confirmation step, the allocation, the TwiCs offer/decision, the start of treatment,
control-arm disclosures, two-person corrections, and the statistician's sequence screens.

Views parse input, call one selector or service, and render; a service refusal is shown
on the form (``core.forms.add_refusal``) or as a notice, an access refusal is the 403 page.
Sequence screens are for a statistician holding the sequence permission; everyone else gets
the same 403 page.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from cohort import selectors as cohort_selectors
from cohort.models import Participant
from core.access import CLINICAL_READERS, DATA_ENTRY, access_for, acting_user, require_write
from core.forms import add_refusal, refusal_notice
from core.models import Role, User
from core.pagination import keyset_page_or_first
from core.refusals import Refusal
from core.views import role_required
from randomization import reasons as reason_text
from randomization import selectors, services
from randomization.forms import (
    ConfirmForm,
    CorrectionDecideForm,
    CorrectionForm,
    DecisionForm,
    DisclosureForm,
    LookupForm,
    RetireForm,
    ScreeningForm,
    SequenceForm,
    TreatmentStartForm,
    TrialStatusForm,
)
from randomization.models import (
    Allocation,
    AllocationStatus,
    Answer,
    Decision,
    Environment,
    SequenceStatus,
    Trial,
    TrialStatus,
)

CORRECTIONS_PAGE_SIZE = 50
# The trial overview: allocations a page at a time (previous / next), the newest screenings
OVERVIEW_ALLOCATIONS_PAGE_SIZE = 25
OVERVIEW_SCREENINGS = 25


def _participant_url(participant: Participant) -> str | None:
    try:
        return reverse("cohort:participant_detail", args=[participant.study_number])
    except NoReverseMatch:
        return None


def _criteria_text(trial: Trial) -> dict[str, str]:
    return {c.code: c.text for c in selectors.criteria_current(trial=trial)}


def _banner(participant: Participant) -> bool:
    return selectors.is_not_informed(participant)


# --- trials ----------------------------------------------------------------------------------
@role_required(*CLINICAL_READERS)
def trial_list(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    trials = list(selectors.trial_list(user=user))
    if len(trials) == 1:
        return redirect("randomization:trial_overview", code=trials[0].code)
    return render(request, "randomization/trial_list.html", {"trials": trials})


@role_required(*CLINICAL_READERS)
def trial_overview(request: HttpRequest, code: str) -> HttpResponse:
    """Allocations (a keyset page, newest first) and the newest screenings at the user's
    sites; counts by arm for sponsor roles."""
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    access = access_for(user)
    allocations = keyset_page_or_first(
        selectors.allocation_overview(user=user, trial=trial),
        cursor=request.GET.get("cursor"),
        size=OVERVIEW_ALLOCATIONS_PAGE_SIZE,
    )
    screenings = selectors.screening_recent(user=user, trial=trial, limit=OVERVIEW_SCREENINGS)
    return render(
        request,
        "randomization/trial_overview.html",
        {
            "trial": trial,
            "screenings": screenings,
            "allocations": allocations,
            "arm_counts": selectors.arm_counts(user=user, trial=trial),
            "lookup": LookupForm(),
            "can_write": access.has_role(*DATA_ENTRY),
            "can_manage_sequences": selectors.can_manage_sequences(user),
            "can_correct": access.has_role(Role.INVESTIGATOR, Role.STATISTICIAN),
            "open_corrections": selectors.corrections_open_count(user=user, trial=trial),
            "environment": selectors.current_environment(),
            "recruitment_refusal": selectors.recruitment_refusal(trial),
            "status_form": TrialStatusForm(current=trial.status)
            if services.can_change_trial_status(user)
            else None,
        },
    )


@role_required(Role.STATISTICIAN, Role.ADMINISTRATOR)
def trial_status(request: HttpRequest, code: str) -> HttpResponse:
    """Close recruitment, reopen it, or close the trial (with a reason, audited)."""
    user = acting_user(request)
    trial = selectors.trial_for_status_change(user=user, code=code)
    if request.method != "POST":
        return render(
            request,
            "randomization/trial_status.html",
            {
                "trial": trial,
                "status_form": TrialStatusForm(current=trial.status),
                "environment": selectors.current_environment(),
                "recruitment_refusal": selectors.recruitment_refusal(trial),
            },
        )
    form = TrialStatusForm(request.POST, current=trial.status)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
    else:
        try:
            trial = services.trial_status_change(
                by=user,
                trial=trial,
                status=form.cleaned_data["status"],
                reason=form.cleaned_data["reason"],
            )
        except (ValidationError, Refusal) as exc:
            messages.error(request, refusal_notice(exc))
        else:
            messages.success(
                request,
                _("Trial status: %(status)s.") % {"status": TrialStatus(trial.status).label},
            )
    if not access_for(user).has_role(*CLINICAL_READERS):
        return redirect("randomization:trial_status", code=trial.code)
    return redirect("randomization:trial_overview", code=trial.code)


@role_required(*DATA_ENTRY)
def screening_lookup(request: HttpRequest, code: str) -> HttpResponse:
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    form = LookupForm(request.GET or None)
    if form.is_valid():
        try:
            participant = cohort_selectors.participant_get(
                user=user, study_number=form.cleaned_data["participant"]
            )
        except Http404:
            form.add_error("participant", _("No participant with this study number at your sites."))
        else:
            return redirect(
                "randomization:screening_create",
                code=trial.code,
                study_number=participant.study_number,
            )
    return render(request, "randomization/screening_lookup.html", {"trial": trial, "lookup": form})


# --- screening ---------------------------------------------------------------------------------
def _screening_context(
    request: HttpRequest, trial: Trial, participant: Participant, form: ScreeningForm
) -> dict[str, Any]:
    return {
        "trial": trial,
        "participant": participant,
        "participant_url": _participant_url(participant),
        "form": form,
        "not_informed": _banner(participant),
        "allocation": selectors.allocation_for_participant(trial=trial, participant=participant),
    }


def _screening_date(request: HttpRequest) -> date:
    raw = (request.POST.get("screened_on") or "").strip()
    try:
        return date.fromisoformat(raw) if raw else timezone.localdate()
    except ValueError:
        return timezone.localdate()


def _derived(trial: Trial, participant: Participant, on: date) -> dict[str, dict[str, Any]]:
    """The criteria the stored data answer on ``on``, for display: the answer and its basis
    (the age, never the date of birth)."""
    draft = selectors.screening_evaluate(trial=trial, participant=participant, answers={}, on=on)
    by_code = {c.code: c for c in draft.criteria}
    return {
        code: {
            "answer": d.answer,
            "label": Answer(d.answer).label,
            "basis": reason_text.basis_text(by_code[code].derived_from, d.basis),
        }
        for code, d in draft.derived.items()
    }


def _log_identifying(
    request: HttpRequest, participant: Participant, exc: Exception, context: str
) -> None:
    user = acting_user(request)
    if getattr(exc, "names_identifying", False):
        from cohort.services import identity_access_log

        identity_access_log(user=user, participants=[participant], context=context)


@role_required(*DATA_ENTRY)
def screening_create(request: HttpRequest, code: str, study_number: str) -> HttpResponse:
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    participant = cohort_selectors.participant_get(user=user, study_number=study_number)
    require_write(user, participant.site_id)
    criteria = selectors.criteria_current(trial=trial)
    derived = _derived(trial, participant, _screening_date(request))
    if request.method == "POST":
        form = ScreeningForm(request.POST, criteria=criteria, derived=derived)
        if form.is_valid():
            try:
                screening = services.screening_record(
                    by=user,
                    trial=trial,
                    participant=participant,
                    screened_on=form.cleaned_data["screened_on"],
                    answers=form.answers(),
                )
            except (ValidationError, Refusal) as exc:
                _log_identifying(request, participant, exc, "form")
                add_refusal(form, exc)
            else:
                if screening.is_eligible:
                    messages.success(request, _("Screening saved: eligible."))
                    return redirect(
                        "randomization:randomise",
                        code=trial.code,
                        study_number=participant.study_number,
                    )
                messages.warning(request, _("Screening saved: not eligible."))
                return redirect("randomization:screening_detail", code=trial.code, pk=screening.pk)
    else:
        form = ScreeningForm(
            criteria=criteria,
            derived=derived,
            initial={"screened_on": timezone.localdate().isoformat()},
        )
    ctx = _screening_context(request, trial, participant, form)
    ctx["verdict"] = _live_verdict(trial, participant, form, _screening_date(request))
    ctx["trial_refusal"] = reason_text.describe(
        [r for r in [selectors.recruitment_refusal(trial)] if r]
    )
    return render(request, "randomization/screening_form.html", ctx)


def _live_verdict(
    trial: Trial, participant: Participant, form: ScreeningForm, on: date | None = None
) -> dict[str, Any]:
    answers = {k: v for k, v in form.answers().items() if k not in form.derived}
    result = selectors.screening_verdict(
        trial=trial, participant=participant, answers=answers, on=on
    )
    text = _criteria_text(trial)
    unanswered = [r for r in result.reasons if r.startswith("unanswered:")]
    others = [r for r in result.reasons if not r.startswith("unanswered:")]
    return {
        "eligible": result.eligible,
        "complete": not unanswered,
        "reasons": reason_text.describe(others, text),
        "unanswered": len(unanswered),
    }


@role_required(*DATA_ENTRY)
@require_POST
def screening_verdict(request: HttpRequest, code: str, study_number: str) -> HttpResponse:
    """htmx: the verdict the answers so far would get (writes nothing)."""
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    participant = cohort_selectors.participant_get(user=user, study_number=study_number)
    require_write(user, participant.site_id)
    on = _screening_date(request)
    derived = _derived(trial, participant, on)
    form = ScreeningForm(
        request.POST, criteria=selectors.criteria_current(trial=trial), derived=derived
    )
    # The derived answers follow the screening date (out-of-band swaps of their rows).
    return render(
        request,
        "randomization/_verdict.html",
        {"verdict": _live_verdict(trial, participant, form, on), "derived_oob": derived},
    )


@role_required(*CLINICAL_READERS)
def screening_detail(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    screening = selectors.screening_get(user=user, trial=trial, pk=pk)
    text = {a.criterion.code: a.criterion.text for a in screening.answers.all()}
    return render(
        request,
        "randomization/screening_detail.html",
        {
            "trial": trial,
            "screening": screening,
            "participant": screening.participant,
            "participant_url": _participant_url(screening.participant),
            "reasons": reason_text.describe(screening.reasons, text),
            "not_informed": _banner(screening.participant),
            "can_write": access_for(user).can_write_site(screening.site_id),
        },
    )


# --- randomise -------------------------------------------------------------------------------------
@role_required(*DATA_ENTRY)
def randomise(request: HttpRequest, code: str, study_number: str) -> HttpResponse:
    """Confirmation step with the eligibility summary; POST randomises (idempotent)."""
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    participant = cohort_selectors.participant_get(user=user, study_number=study_number)
    require_write(user, participant.site_id)
    existing = selectors.allocation_for_participant(trial=trial, participant=participant)
    if existing is not None and existing.status == AllocationStatus.ACTIVE:
        return redirect(
            "randomization:allocation_detail", code=trial.code, trial_number=existing.trial_number
        )
    form = ConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.allocation_randomise(
                by=user,
                trial=trial,
                participant=participant,
                request_id=request.POST.get("request_id", ""),
            )
        except Refusal as exc:
            add_refusal(form, exc)
        else:
            if result.created:
                messages.success(request, _("Randomised."))
            return redirect(
                "randomization:allocation_detail",
                code=trial.code,
                trial_number=result.allocation.trial_number,
            )
    readiness = selectors.randomisation_readiness(trial=trial, participant=participant)
    answers = []
    if readiness.screening is not None:
        answers = list(
            readiness.screening.answers.select_related("criterion").order_by("criterion__order")
        )
    return render(
        request,
        "randomization/randomise_confirm.html",
        {
            "trial": trial,
            "participant": participant,
            "participant_url": _participant_url(participant),
            "readiness": readiness,
            "blockers": reason_text.describe(readiness.reasons, _criteria_text(trial)),
            "answers": answers,
            "form": form,
            "existing": existing,
            "not_informed": _banner(participant),
        },
    )


# --- allocation and what follows ---------------------------------------------------------------------
def _allocation_context(
    request: HttpRequest, trial: Trial, allocation: Allocation, **extra: Any
) -> dict[str, Any]:
    user = acting_user(request)
    access = access_for(user)
    ctx: dict[str, Any] = {
        "trial": trial,
        "allocation": allocation,
        "participant": allocation.participant,
        "participant_url": _participant_url(allocation.participant),
        "not_informed": _banner(allocation.participant),
        "offer": getattr(allocation, "offer", None),
        "day0_help": selectors.day0_help(allocation),
        "can_write": access.can_write_site(allocation.site_id)
        and allocation.status == AllocationStatus.ACTIVE,
        "can_correct": access.has_role(Role.STATISTICIAN)
        or access.can_write_site(allocation.site_id, roles={Role.INVESTIGATOR}),
        "disclosures": list(allocation.disclosures.select_related("recorded_by")),
        "corrections": list(allocation.corrections.select_related("proposed_by", "decided_by")),
    }
    ctx.update(extra)
    return ctx


@role_required(*CLINICAL_READERS)
def allocation_detail(request: HttpRequest, code: str, trial_number: str) -> HttpResponse:
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    allocation = selectors.allocation_get(user=user, trial=trial, trial_number=trial_number)
    return render(
        request,
        "randomization/allocation_detail.html",
        _allocation_context(request, trial, allocation),
    )


@role_required(*DATA_ENTRY)
def offer_decision(request: HttpRequest, code: str, trial_number: str) -> HttpResponse:
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    allocation = selectors.allocation_get(user=user, trial=trial, trial_number=trial_number)
    offer = getattr(allocation, "offer", None)
    initial = {"offered_on": timezone.localdate().isoformat(), "decision": Decision.PENDING}
    if offer is not None:
        initial = {
            "offered_on": offer.offered_on.isoformat(),
            "decision": offer.decision,
            "decided_on": offer.decided_on.isoformat() if offer.decided_on else "",
            "refusal_reason": offer.refusal_reason,
            "consent_form_version": offer.consent_form_version_id,
            "consent_date": offer.consent_date.isoformat() if offer.consent_date else "",
        }
    form = DecisionForm(request.POST or None, initial=initial, trial_code=trial.code)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.offer_decision_record(
                by=user,
                allocation=allocation,
                offered_on=d["offered_on"],
                decision=d["decision"],
                decided_on=d.get("decided_on"),
                refusal_reason=d.get("refusal_reason") or "",
                consent_form_version=d.get("consent_form_version"),
                consent_date=d.get("consent_date"),
                reason=d.get("reason") or "",
            )
        except (ValidationError, Refusal) as exc:
            add_refusal(form, exc)
        else:
            messages.success(request, _("Offer and decision saved."))
            return redirect(
                "randomization:allocation_detail", code=trial.code, trial_number=trial_number
            )
    return render(
        request,
        "randomization/offer_form.html",
        _allocation_context(request, trial, allocation, form=form),
    )


@role_required(*DATA_ENTRY)
def treatment_start(request: HttpRequest, code: str, trial_number: str) -> HttpResponse:
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    allocation = selectors.allocation_get(user=user, trial=trial, trial_number=trial_number)
    initial = {
        "planned": allocation.treatment_start_planned.isoformat()
        if allocation.treatment_start_planned
        else "",
        "actual": allocation.treatment_start_actual.isoformat()
        if allocation.treatment_start_actual
        else "",
    }
    form = TreatmentStartForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.treatment_start_set(
                by=user,
                allocation=allocation,
                planned=form.cleaned_data.get("planned"),
                actual=form.cleaned_data.get("actual"),
                reason=form.cleaned_data.get("reason") or "",
            )
        except (ValidationError, Refusal) as exc:
            add_refusal(form, exc)
        else:
            messages.success(request, _("Start of treatment saved."))
            return redirect(
                "randomization:allocation_detail", code=trial.code, trial_number=trial_number
            )
    return render(
        request,
        "randomization/treatment_start_form.html",
        _allocation_context(request, trial, allocation, form=form),
    )


@role_required(*DATA_ENTRY)
def disclosure_create(request: HttpRequest, code: str, trial_number: str) -> HttpResponse:
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    allocation = selectors.allocation_get(user=user, trial=trial, trial_number=trial_number)
    form = DisclosureForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.disclosure_record(by=user, allocation=allocation, **form.cleaned_data)
        except (ValidationError, Refusal) as exc:
            add_refusal(form, exc)
        else:
            messages.success(request, _("Protocol deviation recorded."))
            return redirect(
                "randomization:allocation_detail", code=trial.code, trial_number=trial_number
            )
    return render(
        request,
        "randomization/disclosure_form.html",
        _allocation_context(request, trial, allocation, form=form),
    )


# --- corrections ---------------------------------------------------------------------------------------
@role_required(Role.INVESTIGATOR, Role.STATISTICIAN)
def correction_propose(request: HttpRequest, code: str, trial_number: str) -> HttpResponse:
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    allocation = selectors.allocation_get(user=user, trial=trial, trial_number=trial_number)
    form = CorrectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.correction_propose(
                by=user, allocation=allocation, reason=form.cleaned_data["reason"]
            )
        except (ValidationError, Refusal) as exc:
            add_refusal(form, exc)
        else:
            messages.success(request, _("Correction proposed; a second person must confirm it."))
            return redirect("randomization:correction_list", code=trial.code)
    return render(
        request,
        "randomization/correction_form.html",
        _allocation_context(request, trial, allocation, form=form),
    )


@role_required(Role.INVESTIGATOR, Role.STATISTICIAN)
def correction_list(request: HttpRequest, code: str) -> HttpResponse:
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    page = keyset_page_or_first(
        selectors.corrections_visible(user=user, trial=trial),
        cursor=request.GET.get("cursor"),
        size=CORRECTIONS_PAGE_SIZE,
    )
    return render(
        request,
        "randomization/correction_list.html",
        {
            "trial": trial,
            "corrections": page.object_list,
            "page": page,
            "decide_form": CorrectionDecideForm(),
        },
    )


@role_required(Role.INVESTIGATOR, Role.STATISTICIAN)
@require_POST
def correction_decide(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    user = acting_user(request)
    trial = selectors.trial_get(user=user, code=code)
    correction = selectors.corrections_visible(user=user, trial=trial).filter(pk=pk).first()
    if correction is None:
        raise PermissionDenied
    form = CorrectionDecideForm(request.POST)
    if form.is_valid():
        try:
            services.correction_decide(
                by=user,
                correction=correction,
                confirm=form.cleaned_data["confirm"],
                note=form.cleaned_data.get("note") or "",
            )
        except (ValidationError, Refusal) as exc:
            messages.error(request, refusal_notice(exc))
        else:
            messages.success(request, _("Decision on the correction saved."))
    else:
        messages.error(request, _("Invalid input."))
    return redirect("randomization:correction_list", code=trial.code)


# --- sequences (statistician with the sequence permission) --------------------------------------------
def _require_sequence_rights(user: User) -> None:
    if not selectors.can_manage_sequences(user):
        raise PermissionDenied


@role_required(Role.STATISTICIAN)
def sequence_list(request: HttpRequest, code: str) -> HttpResponse:
    user = acting_user(request)
    _require_sequence_rights(user)
    trial = selectors.trial_get(user=user, code=code)
    return render(
        request,
        "randomization/sequence_list.html",
        {
            "trial": trial,
            "sequences": list(selectors.sequence_list(user=user, trial=trial)),
            "environment": selectors.current_environment(),
        },
    )


@role_required(Role.STATISTICIAN)
def sequence_generate(request: HttpRequest, code: str) -> HttpResponse:
    user = acting_user(request)
    _require_sequence_rights(user)
    trial = selectors.trial_get(user=user, code=code)
    env = selectors.current_environment()
    form = SequenceForm(
        request.POST or None,
        initial={"environment": env},
        environment_label=Environment(env).label,
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            sequence = services.sequence_generate(
                by=user,
                trial=trial,
                method=d["method"],
                environment=d["environment"],
                factors=list(d["factors"]),
                block_sizes=d["block_sizes"],
                slots_per_stratum=d.get("slots_per_stratum"),
                probability=d["probability"],
            )
        except (ValidationError, Refusal) as exc:
            add_refusal(form, exc)
        else:
            messages.success(
                request, _("Sequence generated. Check the fingerprint, then activate.")
            )
            return redirect("randomization:sequence_detail", code=trial.code, pk=sequence.pk)
    return render(request, "randomization/sequence_form.html", {"trial": trial, "form": form})


@role_required(Role.STATISTICIAN)
def sequence_detail(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    user = acting_user(request)
    _require_sequence_rights(user)
    trial = selectors.trial_get(user=user, code=code)
    sequence = selectors.sequence_get(user=user, trial=trial, pk=pk)
    show_slots = request.GET.get("slots") == "1"
    return render(
        request,
        "randomization/sequence_detail.html",
        {
            "trial": trial,
            "sequence": sequence,
            "balance": selectors.sequence_balance(user=user, sequence=sequence),
            "slots": list(selectors.sequence_slots(user=user, sequence=sequence))
            if show_slots
            else None,
            "verified": services.sequence_fingerprint_recompute(sequence=sequence)
            == sequence.fingerprint
            if request.GET.get("verify") == "1"
            else None,
            "retire_form": RetireForm(),
            "is_generated": sequence.status == SequenceStatus.GENERATED,
            "is_active": sequence.status == SequenceStatus.ACTIVE,
            "environment": selectors.current_environment(),
        },
    )


@role_required(Role.STATISTICIAN)
@require_POST
def sequence_activate(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    user = acting_user(request)
    _require_sequence_rights(user)
    trial = selectors.trial_get(user=user, code=code)
    sequence = selectors.sequence_get(user=user, trial=trial, pk=pk)
    try:
        services.sequence_activate(by=user, sequence=sequence)
    except Refusal as exc:
        messages.error(request, refusal_notice(exc))
    else:
        messages.success(request, _("Sequence activated (live)."))
    return redirect("randomization:sequence_detail", code=trial.code, pk=pk)


@role_required(Role.STATISTICIAN)
@require_POST
def sequence_retire(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    user = acting_user(request)
    _require_sequence_rights(user)
    trial = selectors.trial_get(user=user, code=code)
    sequence = selectors.sequence_get(user=user, trial=trial, pk=pk)
    form = RetireForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give a reason for retiring."))
    else:
        try:
            services.sequence_retire(by=user, sequence=sequence, reason=form.cleaned_data["reason"])
        except (ValidationError, Refusal) as exc:
            messages.error(request, refusal_notice(exc))
        else:
            messages.success(request, _("Sequence retired."))
    return redirect("randomization:sequence_detail", code=trial.code, pk=pk)
