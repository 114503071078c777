"""Nurse screens: participant list, registration, participant page (timeline and the
panels other apps provide), consent, consent correction, withdrawal, death, identity.

Views parse input, call one selector or service, and render. A form is shown only to
those who may write (``core.access.require_write``, the services' own check: 403
otherwise); a service refusal is shown on the form by ``core.forms.add_refusal``, next to
the field it names.
"""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from cohort import selectors, services
from cohort.forms import (
    ConsentCorrectionForm,
    ConsentForm,
    DeathCorrectionForm,
    DeathForm,
    IdentityForm,
    RegistrationForm,
    SearchForm,
    WithdrawalCorrectionForm,
    WithdrawalForm,
)
from cohort.models import IdentityAccess, Participant
from cohort.rules import DAY0_PLANNED_WARN_DAYS, day0_planned_too_far, search_safe_in_url
from core import hooks
from core.access import DATA_ENTRY, SITE_STAFF, access_for, acting_user, require_write
from core.forms import add_refusal
from core.models import User
from core.pagination import count_capped, keyset_page_or_first
from core.refusals import Refusal
from core.views import role_required

logger = logging.getLogger(__name__)

# Other apps add a panel (and timeline entries, and the control-arm "not informed"
# banner) to the participant page through the read hook ``core.hooks.participant_panels``:
# a subscriber ``participant_panel(*, user, participant) -> dict | None`` returns
# {"template": ..., "context": {...}, "timeline": [entry, ...], "banner": ..., "day0": [...]}
# where a timeline entry is {"on": aware datetime, or a date when only the date is known,
# "recorded_at": aware datetime the record was made, "text": str}
# (see cohort.selectors.participant_timeline).
NOT_INFORMED_BANNER = "cohort/_not_informed_banner.html"
PAGE_SIZE = 25


def _panels(*, user: User, participant: Participant) -> list[dict[str, Any]]:
    """Each app's panel. A panel that fails is logged and shown as unavailable (the
    participant page stays up) and its failure counts as "not informed" (fail safe)."""
    panels = []
    for name, call in hooks.participant_panels.each(user=user, participant=participant):
        try:
            panel = call()
        except Exception:  # noqa: BLE001 - another app's bug must not take the page down
            logger.exception("participant panel %s failed for %s", name, participant.study_number)
            panel = {
                "template": "cohort/_panel_unavailable.html",
                "context": {"provider": name.split(".")[0]},
                "banner": "not_informed",
            }
        if panel:
            panels.append(panel)
    return panels


def _not_informed(participant: Participant) -> bool:
    """Control-arm participant? When the check itself fails, assume yes (never disclose)."""
    try:
        return selectors.is_not_informed(participant)
    except Exception:  # noqa: BLE001
        logger.exception("not-informed check failed for %s", participant.study_number)
        return True


def _banner_template() -> str:
    return NOT_INFORMED_BANNER


def _participant_context(
    request: HttpRequest, participant: Participant, *, with_banner: bool = True
) -> dict[str, Any]:
    ctx: dict[str, Any] = {"participant": participant, "status": selectors.status_of(participant)}
    if with_banner and _not_informed(participant):
        ctx["not_informed_banner"] = _banner_template()
    return ctx


# --- list ------------------------------------------------------------------------------------


@role_required(*SITE_STAFF)
def participant_list(request: HttpRequest) -> HttpResponse:
    """Own sites' participants: search, status filter, pagination.

    The search form is POSTed so a hospital record number never lands in a URL: an exact
    match at the user's own site opens the participant page; a study-number search
    redirects to a bookmarkable ``?q=`` list.
    """
    user = acting_user(request)
    if request.method == "POST":
        form = SearchForm(request.POST)
        if not form.is_valid():
            return _list_response(request, form, search=None, status=None)
        q, status = form.cleaned_data["q"].strip(), form.cleaned_data["status"]
        if not search_safe_in_url(q):
            match = selectors.participant_by_hospital_number(user=user, hospital_number=q)
            if match is not None:
                return redirect("cohort:participant_detail", study_number=match.study_number)
            return _list_response(
                request, form, search=q, status=status or None, match_hospital_number=True
            )
        params = {key: value for key, value in (("q", q), ("status", status)) if value}
        url = reverse("cohort:participant_list")
        return redirect(f"{url}?{urlencode(params)}" if params else url)
    form = SearchForm(request.GET or None)
    search = status = None
    if form.is_bound and form.is_valid():
        search = form.cleaned_data["q"] or None
        status = form.cleaned_data["status"] or None
        if search and not search_safe_in_url(search):
            # a hospital record number typed into the address: never searched from a URL
            form.add_error("q", _("Search by hospital record number with the search box."))
            search = None
    return _list_response(request, form, search=search, status=status)


def _list_response(
    request: HttpRequest,
    form: forms.Form,
    *,
    search: str | None,
    status: str | None,
    match_hospital_number: bool = False,
) -> HttpResponse:
    user = acting_user(request)
    qs = selectors.participant_list(
        user=user,
        search=search,
        status=status,
        match_hospital_number=match_hospital_number,
    )
    # a keyset page and a capped count: the cost of a page does not grow with the cohort
    page = keyset_page_or_first(qs, cursor=request.GET.get("cursor"), size=PAGE_SIZE)
    access = access_for(user)
    identifying_sites = access.identifying_site_ids()
    not_informed = selectors.participants_not_informed(page.object_list)
    rows = []
    shown = []
    for p in page.object_list:
        identity = None
        if p.site_id in identifying_sites:
            identity = getattr(p, "identity", None)
            if identity is not None:
                shown.append(p)
        rows.append(
            {
                "p": p,
                "status": selectors.status_of(p),
                "identity": identity,
                "not_informed": p.pk in not_informed,
            }
        )
    services.identity_access_log(user=user, participants=shown, context=IdentityAccess.Context.LIST)
    query = request.GET.copy()
    query.pop("cursor", None)
    return render(
        request,
        "cohort/participant_list.html",
        {
            "form": form,
            "page": page,
            "found": count_capped(qs),
            "rows": rows,
            "show_identity": bool(identifying_sites),
            "can_register": access.writable_sites().exists(),
            "query": query.urlencode(),
        },
    )


# --- registration -----------------------------------------------------------------------------


@role_required(*DATA_ENTRY)
def participant_register(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    sites = selectors.site_staff_sites(user=user)
    if not sites.exists():
        raise PermissionDenied
    form = RegistrationForm(request.POST or None, sites=sites)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            participant = services.participant_register(by=user, **data)
        except Refusal as exc:
            add_refusal(form, exc)
        else:
            messages.success(
                request,
                _("Participant registered as %(study_number)s.")
                % {"study_number": participant.study_number},
            )
            return redirect("cohort:participant_detail", study_number=participant.study_number)
    return render(request, "cohort/participant_register.html", {"form": form})


# --- participant page ------------------------------------------------------------------------


@role_required(*SITE_STAFF)
def participant_detail(request: HttpRequest, study_number: str) -> HttpResponse:
    user = acting_user(request)
    participant = selectors.participant_get(user=user, study_number=study_number)
    identity = selectors.identity_visible(user=user, participant=participant)
    if identity is not None:
        services.identity_access_log(
            user=user, participants=[participant], context=IdentityAccess.Context.PAGE
        )
    consents = selectors.participant_consents(participant=participant)
    withdrawals = selectors.participant_withdrawals(participant=participant)
    panels = _panels(user=user, participant=participant)
    extra = [item for panel in panels for item in panel.get("timeline") or []]
    today = timezone.localdate()
    day0 = [
        {
            **row,
            "far_ahead": day0_planned_too_far(
                planned=row.get("planned"), actual=row.get("actual"), today=today
            ),
        }
        for panel in panels
        for row in panel.get("day0") or []
    ]
    ctx = _participant_context(request, participant, with_banner=False)
    if any(panel.get("banner") == "not_informed" for panel in panels) or _not_informed(participant):
        ctx["not_informed_banner"] = _banner_template()
    access = access_for(user)
    ctx.update(
        {
            "identity": identity,
            "consents": consents,
            "summary": selectors.consent_summary(consents),
            "withdrawals": withdrawals,
            "timeline": selectors.participant_timeline(
                participant=participant, consents=consents, withdrawals=withdrawals, extra=extra
            ),
            "panels": [
                render_to_string(
                    p["template"],
                    {**(p.get("context") or {}), "participant": participant},
                    request=request,
                )
                for p in panels
                if p.get("template")
            ],
            "can_write": access.can_write_site(participant.site_id),
            "day0": day0,
            "day0_warn_days": DAY0_PLANNED_WARN_DAYS,
        }
    )
    return render(request, "cohort/participant_detail.html", ctx)


# --- consent ---------------------------------------------------------------------------------


@role_required(*DATA_ENTRY)
def consent_create(request: HttpRequest, study_number: str) -> HttpResponse:
    user = acting_user(request)
    participant = selectors.participant_get(user=user, study_number=study_number)
    require_write(user, participant.site_id)
    identity = selectors.identity_visible(user=user, participant=participant)
    suggested = selectors.consent_form_version_suggested(
        language=identity.preferred_language if identity else None
    )
    form = ConsentForm(
        request.POST or None,
        form_versions=selectors.consent_form_versions(),
        initial={"form_version": suggested.pk if suggested else None, "mode": "paper"},
    )
    if request.method == "POST" and form.is_valid():
        try:
            records = services.consents_record(
                by=user,
                participant=participant,
                answers=form.answers(),
                given_on=form.cleaned_data["given_on"],
                form_version=form.cleaned_data["form_version"],
                mode=form.cleaned_data["mode"],
            )
        except Refusal as exc:
            add_refusal(form, exc)
        else:
            messages.success(request, _("%(n)d consent answers recorded.") % {"n": len(records)})
            return redirect("cohort:participant_detail", study_number=participant.study_number)
    ctx = _participant_context(request, participant)
    ctx["form"] = form
    return render(request, "cohort/consent_form.html", ctx)


@role_required(*DATA_ENTRY)
def consent_correct(request: HttpRequest, study_number: str, pk: int) -> HttpResponse:
    user = acting_user(request)
    participant = selectors.participant_get(user=user, study_number=study_number)
    require_write(user, participant.site_id)
    record = selectors.consent_record_get(participant=participant, pk=pk)
    initial = {
        "answer": "yes" if record.answer else "no",
        "given_on": record.given_on,
        "form_version": record.form_version_id,
        "mode": record.mode,
    }
    form = ConsentCorrectionForm(
        request.POST or None, initial=initial, form_versions=selectors.consent_form_versions()
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.consent_correct(
                record=record,
                by=user,
                reason=form.cleaned_data["reason"],
                answer=form.cleaned_data["answer"] == "yes",
                given_on=form.cleaned_data["given_on"],
                form_version=form.cleaned_data["form_version"],
                mode=form.cleaned_data["mode"],
            )
        except Refusal as exc:
            add_refusal(form, exc)
        else:
            messages.success(request, _("The consent record has been corrected."))
            return redirect("cohort:participant_detail", study_number=participant.study_number)
    ctx = _participant_context(request, participant)
    ctx.update({"form": form, "record": record})
    return render(request, "cohort/consent_correct.html", ctx)


# --- withdrawal and death ----------------------------------------------------------------------


@role_required(*DATA_ENTRY)
def withdrawal_create(request: HttpRequest, study_number: str) -> HttpResponse:
    user = acting_user(request)
    participant = selectors.participant_get(user=user, study_number=study_number)
    require_write(user, participant.site_id)
    form = WithdrawalForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.withdrawal_record(by=user, participant=participant, **form.cleaned_data)
        except Refusal as exc:
            add_refusal(form, exc)
        else:
            messages.success(request, _("The withdrawal has been recorded."))
            return redirect("cohort:participant_detail", study_number=participant.study_number)
    ctx = _participant_context(request, participant)
    ctx.update(
        {"form": form, "withdrawals": selectors.participant_withdrawals(participant=participant)}
    )
    return render(request, "cohort/withdrawal_form.html", ctx)


@role_required(*DATA_ENTRY)
def death_create(request: HttpRequest, study_number: str) -> HttpResponse:
    user = acting_user(request)
    participant = selectors.participant_get(user=user, study_number=study_number)
    require_write(user, participant.site_id)
    form = DeathForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.death_record(
                by=user,
                participant=participant,
                died_on=form.cleaned_data["died_on"],
                source=form.cleaned_data["source"],
            )
        except Refusal as exc:
            add_refusal(form, exc)
        else:
            messages.success(
                request, _("The death has been recorded. All patient contact has stopped.")
            )
            return redirect("cohort:participant_detail", study_number=participant.study_number)
    ctx = _participant_context(request, participant)
    ctx["form"] = form
    return render(request, "cohort/death_form.html", ctx)


@role_required(*DATA_ENTRY)
def withdrawal_correct(request: HttpRequest, study_number: str, pk: int) -> HttpResponse:
    user = acting_user(request)
    participant = selectors.participant_get(user=user, study_number=study_number)
    require_write(user, participant.site_id)
    withdrawal = selectors.withdrawal_get(participant=participant, pk=pk)
    form = WithdrawalCorrectionForm(
        request.POST or None, initial={"effective_on": withdrawal.effective_on}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.withdrawal_correct(withdrawal=withdrawal, by=user, **form.cleaned_data)
        except Refusal as exc:
            add_refusal(form, exc)
        else:
            messages.success(request, _("The withdrawal has been corrected."))
            return redirect("cohort:participant_detail", study_number=participant.study_number)
    ctx = _participant_context(request, participant)
    ctx.update({"form": form, "record_text": str(withdrawal.get_scope_display())})
    return render(request, "cohort/record_correct.html", ctx)


@role_required(*DATA_ENTRY)
def death_correct(request: HttpRequest, study_number: str) -> HttpResponse:
    user = acting_user(request)
    participant = selectors.participant_get(user=user, study_number=study_number)
    require_write(user, participant.site_id)
    death = selectors.death_get(participant=participant)
    form = DeathCorrectionForm(
        request.POST or None, initial={"died_on": death.died_on, "source": death.source}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.death_correct(death=death, by=user, **form.cleaned_data)
        except Refusal as exc:
            add_refusal(form, exc)
        else:
            messages.success(request, _("The death record has been corrected."))
            return redirect("cohort:participant_detail", study_number=participant.study_number)
    ctx = _participant_context(request, participant)
    ctx.update({"form": form, "record_text": _("Deceased")})
    return render(request, "cohort/record_correct.html", ctx)


@role_required(*DATA_ENTRY)
def identity_edit(request: HttpRequest, study_number: str) -> HttpResponse:
    user = acting_user(request)
    participant = selectors.participant_get(user=user, study_number=study_number)
    require_write(user, participant.site_id)
    identity = selectors.identity_visible(user=user, participant=participant)
    if identity is None:
        raise PermissionDenied
    services.identity_access_log(
        user=user, participants=[participant], context=IdentityAccess.Context.FORM
    )
    initial = {name: getattr(identity, name) for name in services.IDENTITY_FIELDS}
    form = IdentityForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = {
            k: v for k, v in form.cleaned_data.items() if k != "reason" and initial.get(k) != v
        }
        try:
            services.identity_update(
                by=user,
                identity=identity,
                reason=form.cleaned_data["reason"],
                changes=changes,
            )
        except Refusal as exc:
            add_refusal(form, exc)
        else:
            messages.success(request, _("The identifying data has been updated."))
            return redirect("cohort:participant_detail", study_number=participant.study_number)
    ctx = _participant_context(request, participant)
    ctx["form"] = form
    return render(request, "cohort/identity_form.html", ctx)
