"""Data review screens (issue 12): the query worklist and threads, e-signatures, locks,
source data verification, a record's history and re-running the edit checks.

Every screen reads through crf.selectors and writes through one crf.services call. Object
routes look the object up first, scoped to the user's sites (another site's participant,
record, query or lock is a 404, never a 403), then check the role the step needs at that
site (403). State-changing POSTs redirect back (PRG) with a message; a refusal of the
service (wrong state, missing reason, stale revision) says why and changes nothing. The
pages work without JavaScript; htmx polls the re-check's progress.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from core.access import DATA_ENTRY, SITE_STAFF, access_for, acting_user
from core.forms import refusal_notice
from core.models import Role, User
from core.pagination import keyset_page_or_first
from core.refusals import Refusal
from core.views import role_required
from crf import instruments, selectors, services
from crf.models import (
    ClinicalRecord,
    DataLock,
    DataQuery,
    LockLevel,
    RecheckRun,
    RecheckStatus,
    RecordStatus,
)
from crf.review_forms import (
    QueryFilterForm,
    QueryRaiseForm,
    QueryStepForm,
    ReasonForm,
    RecheckForm,
    SignForm,
    VerifyForm,
    form_choices,
)

REVIEWERS = services.REVIEWERS  # monitors: data managers of the site (or sponsor-wide)
PAGE_SIZE = 50


# --- helpers ---------------------------------------------------------------------------------
def _language() -> str:
    return translation.get_language() or "nl"


def _may(user: User, site_id: int, roles: frozenset[str] | set[str]) -> bool:
    """``user`` holds one of ``roles`` at ``site_id`` (or sponsor-wide)."""
    return access_for(user).can_write_site(site_id, roles)


def _require(user: User, site_id: int, roles: frozenset[str] | set[str]) -> None:
    if not _may(user, site_id, roles):
        raise PermissionDenied


def _is_site_investigator(user: User, site_id: int) -> bool:
    """Signing: an investigator *of the participant's site* (crf.services' own rule)."""
    return any(
        g.role == Role.INVESTIGATOR and g.site_id == site_id for g in access_for(user).grants
    )


def _record(
    request: HttpRequest, study_number: str, form_code: str, occurrence: str
) -> tuple[User, Any, Any, ClinicalRecord]:
    """The record of a form screen the user may read; 404 when not visible or not started."""
    user = acting_user(request)
    participant, allocation, record = selectors.form_screen(
        user=user, study_number=study_number, form_code=form_code, occurrence=occurrence
    )
    if record is None:
        raise Http404
    return user, participant, allocation, record


def screen_url(record: ClinicalRecord, study_number: str, anchor: str = "review") -> str:
    url = reverse("crf:form_screen", args=[study_number, record.form_code, record.occurrence])
    return f"{url}#{anchor}" if anchor else url


def _refused(request: HttpRequest, exc: Refusal) -> None:
    """A refusal as an error message (an access refusal is raised again: 403)."""
    messages.error(request, refusal_notice(exc))


def _form_errors(form: Any) -> str:
    return " ".join(str(m) for errors in form.errors.values() for m in errors)


def _posted_revision(request: HttpRequest) -> int | None:
    raw = request.POST.get("_revision", "")
    return int(raw) if raw.isdigit() else None


def _items(form_code: str) -> list[tuple[str, str]]:
    language = _language()
    return [
        (item.code, item.label(language))
        for item in instruments.load(form_code).items
        if item.kind != "computed"
    ]


def _next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


# --- the review block of the form screen -----------------------------------------------------
def form_review(
    request: HttpRequest, *, participant: Any, trial_id: int, record: ClinicalRecord | None
) -> dict[str, Any]:
    """The context of ``crf/review/_record_review.html`` on the form screen (crf.views):
    the record's review state and what the user may do with it."""
    user = acting_user(request)
    site_id = participant.site_id
    review = selectors.record_review(
        record=record, participant_id=participant.pk, trial_id=trial_id, language=_language()
    )
    is_reviewer = _may(user, site_id, REVIEWERS)
    context: dict[str, Any] = {
        "review": review,
        "is_reviewer": is_reviewer,
        "can_answer": _may(user, site_id, DATA_ENTRY),
        "can_sign": record is not None
        and record.status == RecordStatus.COMPLETE
        and review.signature is None
        and _is_site_investigator(user, site_id),
        "can_history": is_reviewer and record is not None,
        "sponsor_wide_reviewer": access_for(user).site_ids(REVIEWERS) is None,
    }
    if record is not None:
        args = [participant.study_number, record.form_code, record.occurrence]
        context["review_urls"] = {
            "raise": reverse("crf:review_query_raise", args=args),
            "sign": reverse("crf:review_record_sign", args=args),
            "verify": reverse("crf:review_record_verify", args=args),
            "lock": reverse("crf:review_record_lock", args=args),
            "history": reverse("crf:review_record_history", args=args),
            "casebook_lock": reverse(
                "crf:review_participant_lock", args=[participant.study_number]
            ),
            "casebook_sign": reverse("crf:review_casebook_sign", args=[participant.study_number]),
            "here": screen_url(record, participant.study_number),
        }
        labels = dict(_items(record.form_code))
        for q in review.queries:
            q.item_label = labels.get(q.item.split("-")[0], q.item)  # type: ignore[attr-defined]
        if is_reviewer:
            items = _items(record.form_code)
            context["raise_form"] = QueryRaiseForm(items=items)
            context["verify_items"] = items
    return context


# --- 1. the query worklist -------------------------------------------------------------------
@role_required(*SITE_STAFF)
def query_worklist(request: HttpRequest) -> HttpResponse:
    """The queries at your sites: unresolved first by default, filtered by status, form,
    raiser and (for users of more than one site) site; each row with its age in days and a
    link to the record's form screen."""
    user = acting_user(request)
    access = access_for(user)
    language = _language()
    site_ids = access.site_ids(SITE_STAFF)
    sites = None
    if site_ids is None or len(site_ids) > 1:
        sites = [(s.pk, s.name) for s in access.visible_sites().order_by("name")]
    raisers = [
        (u.pk, u.get_full_name() or u.get_username()) for u in selectors.query_raisers(user=user)
    ]
    filter_form = QueryFilterForm(
        request.GET or None, language=language, raisers=raisers, sites=sites
    )
    filters = filter_form.filters()
    qs = selectors.query_worklist(user=user, **filters)
    page = keyset_page_or_first(qs, cursor=request.GET.get("cursor"), size=PAGE_SIZE)
    titles = dict(form_choices(language))
    rows = [
        {
            "query": q,
            "form_title": titles.get(q.record.form_code, q.record.form_code),
            "age_days": q.age.days,
            "url": screen_url(q.record, q.record.participant.study_number, f"query-{q.pk}"),
        }
        for q in page.object_list
    ]
    query = urlencode(
        {
            key: str(value)
            for key, value in request.GET.items()
            if key != "cursor" and key in filter_form.fields and value
        }
    )
    return render(
        request,
        "crf/review/query_worklist.html",
        {"filter_form": filter_form, "page": page, "rows": rows, "query": query},
    )


# --- 2. query threads ------------------------------------------------------------------------
@role_required(*SITE_STAFF)
@require_http_methods(["POST"])
def query_raise(
    request: HttpRequest, study_number: str, form_code: str, occurrence: str
) -> HttpResponse:
    """A monitor raises a query on an item or the whole record (text, optional suggested
    value)."""
    user, participant, _allocation, record = _record(request, study_number, form_code, occurrence)
    _require(user, participant.site_id, REVIEWERS)
    form = QueryRaiseForm(request.POST, items=_items(record.form_code))
    if not form.is_valid():
        messages.error(
            request, _("The query was not raised: %(why)s") % {"why": _form_errors(form)}
        )
        return redirect(screen_url(record, study_number))
    data = form.cleaned_data
    try:
        query = services.query_raise(
            user=user,
            record=record,
            item=data["item"],
            text=data["text"],
            suggested_value=data["suggested_value"].strip() or None,
        )
    except Refusal as exc:
        _refused(request, exc)
        return redirect(screen_url(record, study_number))
    messages.success(request, _("Query raised."))
    return redirect(screen_url(record, study_number, f"query-{query.pk}"))


def _query_step(request: HttpRequest, pk: int, roles: frozenset[str] | set[str], step: Any) -> Any:
    user = acting_user(request)
    query = selectors.query_for_review(user=user, pk=pk)
    record = query.record
    _require(user, record.participant.site_id, roles)
    form = QueryStepForm(request.POST)
    text = form.cleaned_data["text"] if form.is_valid() else request.POST.get("text", "")
    try:
        step(user=user, query=query, text=text)
    except Refusal as exc:
        _refused(request, exc)
        return None, query
    return True, query


def _after_step(request: HttpRequest, query: DataQuery, done: bool | None, message: str) -> Any:
    if done:
        messages.success(request, message)
    return redirect(
        screen_url(query.record, query.record.participant.study_number, f"query-{query.pk}")
    )


@role_required(*SITE_STAFF)
@require_http_methods(["POST"])
def query_answer(request: HttpRequest, pk: int) -> HttpResponse:
    """The site's nurse or investigator answers an open query (a data change is made on the
    form itself, with its reason for change; the answer changes no data)."""
    done, query = _query_step(request, pk, DATA_ENTRY, services.query_answer)
    return _after_step(request, query, done, _("Answer sent."))


@role_required(*SITE_STAFF)
@require_http_methods(["POST"])
def query_close(request: HttpRequest, pk: int) -> HttpResponse:
    """A monitor closes an open or answered query."""
    done, query = _query_step(request, pk, REVIEWERS, services.query_close)
    return _after_step(request, query, done, _("Query closed."))


@role_required(*SITE_STAFF)
@require_http_methods(["POST"])
def query_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    """A monitor re-opens a closed query, saying why."""
    done, query = _query_step(request, pk, REVIEWERS, services.query_reopen)
    return _after_step(request, query, done, _("Query re-opened."))


# --- 3. signing ------------------------------------------------------------------------------
@role_required(Role.INVESTIGATOR)
def sign_list(request: HttpRequest) -> HttpResponse:
    """The investigator's completed forms without a valid signature, oldest first."""
    user = acting_user(request)
    language = _language()
    page = keyset_page_or_first(
        selectors.records_to_sign(user=user), cursor=request.GET.get("cursor"), size=PAGE_SIZE
    )
    titles = dict(form_choices(language))
    rows = [
        {
            "record": r,
            "form_title": titles.get(r.form_code, r.form_code),
            "sign_url": reverse(
                "crf:review_record_sign",
                args=[r.participant.study_number, r.form_code, r.occurrence],
            ),
            "casebook_url": reverse("crf:review_casebook_sign", args=[r.participant.study_number]),
        }
        for r in page.object_list
    ]
    return render(request, "crf/review/sign_list.html", {"page": page, "rows": rows, "query": ""})


def _record_values(record: ClinicalRecord) -> list[tuple[str, str]]:
    """The record's items as label and shown value (the signing screen's summary)."""
    from crf.definition_store import definition_of

    language = _language()
    shown = []
    for item in definition_of(record.definition).items:
        value = record.data.get(item.code)
        if value in (None, "", []):
            continue
        if isinstance(value, bool):
            text = _("yes") if value else _("no")
        elif item.choices and not isinstance(value, list):
            text = item.choice_label(value, language) or str(value)
        elif item.kind == "date" and isinstance(value, str):
            text = _display_date(value)
        elif isinstance(value, list):
            text = ", ".join(
                (item.choice_label(v, language) or str(v)) if not isinstance(v, dict) else "…"
                for v in value
            )
        else:
            text = str(value)
        shown.append((item.label(language), text))
    return shown


def _display_date(value: str) -> str:
    from datetime import date

    try:
        return date.fromisoformat(value).strftime("%d-%m-%Y")
    except ValueError:
        return value


def _signer_context(user: User) -> dict[str, Any]:
    return {
        "printed_name": (user.get_full_name() or user.get_username()).strip(),
        "now": timezone.now(),
    }


@role_required(*SITE_STAFF)
@require_http_methods(["GET", "POST"])
def record_sign(
    request: HttpRequest, study_number: str, form_code: str, occurrence: str
) -> HttpResponse:
    """An investigator of the participant's site signs one completed form: the meaning of
    the signature, the printed name, the date and time, and the password re-entered. A
    wrong password signs nothing (and counts towards the login lockout)."""
    user, participant, _allocation, record = _record(request, study_number, form_code, occurrence)
    if not _is_site_investigator(user, participant.site_id):
        raise PermissionDenied
    form = SignForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            services.record_sign(
                user=user,
                record=record,
                password=form.cleaned_data["password"],
                request=request,
                revision=_posted_revision(request),
            )
        except services.WrongPassword as exc:
            form.add_error("password", str(exc.message))
            status = 400
        except Refusal as exc:
            if isinstance(exc, PermissionDenied):
                raise
            form.add_error(None, refusal_notice(exc))
            status = 409
        else:
            messages.success(request, _("The form is signed."))
            return redirect(screen_url(record, study_number))
    review = selectors.record_review(
        record=record,
        participant_id=participant.pk,
        trial_id=record.trial_id,
        language=_language(),
    )
    return render(
        request,
        "crf/review/sign.html",
        {
            "participant": participant,
            "record": record,
            "title": instruments.load(record.form_code).title.in_language(_language()),
            "values": _record_values(record),
            "meaning": services.SIGNATURE_MEANING,
            "form": form,
            "signature": review.signature,
            "signable": record.status == RecordStatus.COMPLETE and review.signature is None,
            "screen_url": screen_url(record, study_number, ""),
            **_signer_context(user),
        },
        status=status,
    )


@role_required(*SITE_STAFF)
@require_http_methods(["GET", "POST"])
def casebook_sign(request: HttpRequest, study_number: str) -> HttpResponse:
    """An investigator of the participant's site signs the whole casebook (every form
    complete or not done; no drafts), with the password re-entered."""
    user = acting_user(request)
    participant, allocation = selectors.participant_allocation(user=user, study_number=study_number)
    if not _is_site_investigator(user, participant.site_id):
        raise PermissionDenied
    form = SignForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            services.casebook_sign(
                user=user,
                allocation=allocation,
                password=form.cleaned_data["password"],
                request=request,
            )
        except services.WrongPassword as exc:
            form.add_error("password", str(exc.message))
            status = 400
        except Refusal as exc:
            if isinstance(exc, PermissionDenied):
                raise
            form.add_error(None, refusal_notice(exc))
            status = 409
        else:
            messages.success(request, _("The casebook is signed."))
            return redirect("cohort:participant_detail", study_number=study_number)
    language = _language()
    titles = dict(form_choices(language))
    records: list[dict[str, Any]] = [
        {
            "record": r,
            "form_title": titles.get(r.form_code, r.form_code),
            "url": screen_url(r, study_number, ""),
        }
        for r in selectors.casebook_records(allocation=allocation)
    ]
    review = selectors.record_review(
        record=None, participant_id=participant.pk, trial_id=allocation.trial_id
    )
    return render(
        request,
        "crf/review/casebook_sign.html",
        {
            "participant": participant,
            "records": records,
            "meaning": services.CASEBOOK_MEANING,
            "form": form,
            "signature": review.casebook_signature,
            "signable": bool(records)
            and review.casebook_signature is None
            and not any(r["record"].status == RecordStatus.DRAFT for r in records),
            **_signer_context(user),
        },
        status=status,
    )


# --- 4. locks --------------------------------------------------------------------------------
@role_required(*SITE_STAFF)
@require_http_methods(["POST"])
def record_lock(
    request: HttpRequest, study_number: str, form_code: str, occurrence: str
) -> HttpResponse:
    """A monitor locks one form (read-only for every write path until unlocked)."""
    user, participant, allocation, record = _record(request, study_number, form_code, occurrence)
    _require(user, participant.site_id, REVIEWERS)
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.data_lock(
            user=user, level=LockLevel.RECORD, trial=allocation.trial, record=record, reason=reason
        )
    except Refusal as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("The form is locked."))
    return redirect(screen_url(record, study_number))


def _lock_casebook(request: HttpRequest, user: User, study_number: str, reason: str) -> None:
    participant, allocation = selectors.participant_allocation(user=user, study_number=study_number)
    _require(user, participant.site_id, REVIEWERS)
    try:
        services.data_lock(
            user=user,
            level=LockLevel.PARTICIPANT,
            trial=allocation.trial,
            participant=participant,
            reason=reason,
        )
    except Refusal as exc:
        _refused(request, exc)
    else:
        messages.success(
            request, _("The casebook of %(sn)s is locked.") % {"sn": participant.study_number}
        )


@role_required(*SITE_STAFF)
@require_http_methods(["POST"])
def participant_lock(request: HttpRequest, study_number: str) -> HttpResponse:
    """A monitor locks a participant's casebook (every form of the participant)."""
    user = acting_user(request)
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    _lock_casebook(request, user, study_number, reason)
    return redirect(_next(request, reverse("crf:review_locks")))


@role_required(Role.DATA_MANAGER)
@require_http_methods(["GET", "POST"])
def locks(request: HttpRequest) -> HttpResponse:
    """The active and lifted locks at your sites (and the whole-trial locks); a
    sponsor-wide data manager locks the whole trial here (POST)."""
    from randomization.models import Trial

    user = acting_user(request)
    sponsor_wide = access_for(user).site_ids(REVIEWERS) is None
    if request.method == "POST":
        form = ReasonForm(request.POST)
        reason = form.cleaned_data["reason"] if form.is_valid() else ""
        if request.POST.get("level") == LockLevel.PARTICIPANT:
            try:
                _lock_casebook(request, user, request.POST.get("study_number", "").strip(), reason)
            except Http404:
                messages.error(
                    request, _("No randomised participant with this study number at your sites.")
                )
            return redirect("crf:review_locks")
        if not sponsor_wide:
            raise PermissionDenied
        trial = Trial.objects.filter(pk=request.POST.get("trial") or 0).first()
        if trial is None:
            messages.error(request, _("Choose the trial to lock."))
            return redirect("crf:review_locks")
        try:
            services.data_lock(user=user, level=LockLevel.TRIAL, trial=trial, reason=reason)
        except Refusal as exc:
            _refused(request, exc)
        else:
            messages.success(request, _("The whole trial is locked."))
        return redirect("crf:review_locks")
    return render(
        request,
        "crf/review/locks.html",
        {
            "active": selectors.data_locks(user=user),
            "lifted": selectors.data_locks(user=user, active=False, limit=50),
            "sponsor_wide": sponsor_wide,
            "trials": list(Trial.objects.order_by("code")) if sponsor_wide else [],
        },
    )


@role_required(*SITE_STAFF)
@require_http_methods(["POST"])
def unlock(request: HttpRequest, pk: int) -> HttpResponse:
    """A monitor lifts a lock, with a reason (a lock of the whole trial: a sponsor-wide
    data manager)."""
    from django.db.models import Q

    from core.access import site_q

    user = acting_user(request)
    lock = (
        DataLock.objects.filter(pk=pk)
        .filter(
            site_q(user, site_field="participant__site", roles=SITE_STAFF)
            | Q(participant__isnull=True)
        )
        .select_related("participant", "record")
        .first()
    )
    if lock is None:
        raise Http404
    if lock.participant is None:
        if access_for(user).site_ids(REVIEWERS) is not None:
            raise PermissionDenied
    else:
        _require(user, lock.participant.site_id, REVIEWERS)
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.data_unlock(user=user, lock=lock, reason=reason)
    except Refusal as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("Unlocked."))
    if lock.record is not None and lock.participant is not None:
        default = screen_url(lock.record, lock.participant.study_number)
    else:
        default = reverse("crf:review_locks")
    return redirect(_next(request, default))


# --- 5. source data verification -------------------------------------------------------------
@role_required(*SITE_STAFF)
@require_http_methods(["POST"])
def record_verify(
    request: HttpRequest, study_number: str, form_code: str, occurrence: str
) -> HttpResponse:
    """A monitor marks a completed form's key items (or every answered item, or the items
    ticked) verified against the source, at the revision shown."""
    user, participant, _allocation, record = _record(request, study_number, form_code, occurrence)
    _require(user, participant.site_id, REVIEWERS)
    form = VerifyForm(request.POST, items=_items(record.form_code))
    if not form.is_valid():
        messages.error(request, _("Nothing verified: %(why)s") % {"why": _form_errors(form)})
        return redirect(screen_url(record, study_number))
    chosen = form.chosen()
    if chosen == []:
        messages.error(request, _("Nothing verified: tick the items you checked."))
        return redirect(screen_url(record, study_number))
    try:
        marks = services.record_verify(
            user=user, record=record, revision=_posted_revision(request), items=chosen
        )
    except Refusal as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("%(n)s items marked verified.") % {"n": len(marks)})
    return redirect(screen_url(record, study_number))


@role_required(Role.DATA_MANAGER)
def sdv_progress(request: HttpRequest) -> HttpResponse:
    """Per site and form: the completed forms and how many have every key item verified."""
    user = acting_user(request)
    titles = dict(form_choices(_language()))
    rows = [
        {
            **row,
            "form_title": titles.get(row["form_code"], row["form_code"]),
            "percent": round(100 * row["verified"] / row["complete"]) if row["complete"] else 0,
        }
        for row in selectors.sdv_progress(user=user)
    ]
    return render(request, "crf/review/sdv_progress.html", {"rows": rows})


# --- 6. a record's history -------------------------------------------------------------------
@role_required(*SITE_STAFF)
def record_history(
    request: HttpRequest, study_number: str, form_code: str, occurrence: str
) -> HttpResponse:
    """Everything that happened to one form, oldest first, for a monitor: its changes item
    by item with the reason, signatures and their invalidation, verifications and query
    steps."""
    user, participant, _allocation, record = _record(request, study_number, form_code, occurrence)
    _require(user, participant.site_id, REVIEWERS)
    language = _language()
    definition = instruments.load(record.form_code)
    labels = {item.code: item.label(language) for item in definition.items}
    entries = [
        {
            "entry": e,
            "changes": [
                (
                    labels.get(key.removeprefix("data.").split(".")[0], key.removeprefix("data."))
                    if key.startswith("data.")
                    else _("status"),
                    old,
                    new,
                )
                for key, (old, new) in sorted(e.changes.items())
            ],
        }
        for e in selectors.record_history(user=user, record=record)
    ]
    return render(
        request,
        "crf/review/history.html",
        {
            "participant": participant,
            "record": record,
            "title": definition.title.in_language(language),
            "entries": entries,
            "screen_url": screen_url(record, study_number, ""),
        },
    )


# --- 7. re-running the edit checks -----------------------------------------------------------
def _require_sponsor_reviewer(user: User) -> None:
    """The re-check runs over every site's records: a sponsor-wide data manager only."""
    if access_for(user).site_ids(REVIEWERS) is not None:
        raise PermissionDenied


@role_required(Role.DATA_MANAGER)
@require_http_methods(["GET", "POST"])
def recheck(request: HttpRequest) -> HttpResponse:
    """Re-run the edit checks over one form's records (or all) after a rule change, as a
    Celery task (crf.services.recheck_request); the page then follows its progress. The
    recent runs are listed with who asked and what they changed."""
    user = acting_user(request)
    _require_sponsor_reviewer(user)
    form = RecheckForm(request.POST or None, language=_language())
    if request.method == "POST" and form.is_valid():
        try:
            run = services.recheck_request(user=user, form_code=form.cleaned_data["form_code"])
        except Refusal as refusal:
            messages.error(request, refusal_notice(refusal))
            return redirect("crf:review_recheck")
        return redirect("crf:review_recheck_status", pk=run.pk)
    return render(
        request,
        "crf/review/recheck.html",
        {"form": form, "status": None, "runs": _recent_runs()},
        status=400 if request.method == "POST" else 200,
    )


def _recent_runs() -> list[RecheckRun]:
    return list(RecheckRun.objects.select_related("requested_by")[:10])


def recheck_state(run: RecheckRun) -> dict[str, Any]:
    """A re-check's progress from its crf.models.RecheckRun row, for the progress bar."""
    finished = run.status in (RecheckStatus.DONE, RecheckStatus.FAILED)
    return {
        "run": run,
        "state": run.status,
        "finished": finished,
        "done": run.done,
        "total": run.total or 0,
        "percent": run.percent,
        "result": (
            {"records": run.total, "opened": run.opened, "closed": run.closed}
            if run.status == RecheckStatus.DONE
            else None
        ),
    }


@role_required(Role.DATA_MANAGER)
def recheck_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The re-check's progress (done/total) and, at the end, its counts; htmx asks for the
    fragment every second until the run has finished."""
    user = acting_user(request)
    _require_sponsor_reviewer(user)
    run = get_object_or_404(RecheckRun.objects.select_related("requested_by"), pk=pk)
    status = recheck_state(run)
    status["url"] = reverse("crf:review_recheck_status", args=[run.pk])
    if getattr(request, "htmx", False):
        return render(request, "crf/review/_recheck_progress.html", {"status": status})
    return render(
        request,
        "crf/review/recheck.html",
        {"form": RecheckForm(language=_language()), "status": status, "runs": _recent_runs()},
    )
