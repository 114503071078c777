"""Screens: the patient's questionnaire pages (no login, PRESENT-branded) and the nurses'
worklist, entry, correction and demo-mail pages."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Concatenate, overload

import pghistory
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.access import CLINICAL_READERS, DATA_ENTRY, SITE_STAFF, access_for, acting_user
from core.forms import add_refusal, refusal_notice
from core.models import Role, User
from core.pagination import count_capped, keyset_page_or_first
from core.refusals import Invalid, Refusal
from core.views import role_required
from crf import selectors, services
from crf.forms import (
    CorrectionReasonForm,
    EntryMetaForm,
    focus_first_error,
    instrument_fields,
    parse_instrument,
    posted_values,
)
from crf.models import Questionnaire

# --- patient pages -------------------------------------------------------------------------------
NEUTRAL_STATUS = 404


def _patient_headers(response: HttpResponse) -> HttpResponse:
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _neutral(request: HttpRequest) -> HttpResponse:
    """The one page for every link that cannot be used (forged, expired, used, stopped)."""
    with translation.override("nl"):
        response = render(request, "crf/patient/neutral.html", status=NEUTRAL_STATUS)
    return _patient_headers(response)


PatientView = Callable[Concatenate[HttpRequest, Questionnaire, str, ...], HttpResponse]
TokenView = Callable[..., HttpResponse]  # (request, token, *args, **kwargs)


@overload
def patient_page(view: PatientView, *, resubmit_ok: bool = False) -> TokenView: ...
@overload
def patient_page(
    view: None = None, *, resubmit_ok: bool = False
) -> Callable[[PatientView], TokenView]: ...
def patient_page(
    view: PatientView | None = None, *, resubmit_ok: bool = False
) -> TokenView | Callable[[PatientView], TokenView]:
    """Resolve the token to a questionnaire (or the neutral page), speak the patient's
    language, keep the token out of the audit context, and set the private headers.

    With ``resubmit_ok`` a POST with the link of an already completed questionnaire goes
    to the thank-you page (a double click on "submit" must not end on an error page).
    """
    if view is None:
        return functools.partial(patient_page, resubmit_ok=resubmit_ok)

    # CSRF: with ``Referrer-Policy: no-referrer`` browsers send ``Origin: null`` on these
    # POSTs, which Django's origin check refuses. The random 256-bit token in the URL is
    # itself the unguessable per-form secret a CSRF token would be (a forging site cannot
    # know it), so the patient pages use it instead and set no CSRF cookie at all.
    @csrf_exempt
    @functools.wraps(view)
    def wrapped(request: HttpRequest, token: str, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            # The middleware recorded the URL in the audit context; it holds the secret.
            pghistory.context(url="/q/[redacted]/", actor="patient")
        q = selectors.questionnaire_for_token(token)
        if q is None:
            if resubmit_ok and request.method == "POST" and selectors.token_completed(token):
                return _patient_headers(redirect("crf:patient_done"))
            return _neutral(request)
        language = selectors.patient_language(q)
        with translation.override(language):
            response = view(request, q, token, *args, **kwargs)
        return _patient_headers(response)

    return wrapped


def _steps(q: Questionnaire) -> list[str]:
    return list(q.timepoint.instruments)


def _site_name(q: Questionnaire) -> str:
    """The patient's own hospital, for the page footer (never a trial name)."""
    return q.participant.site.name


def _instrument_title(code: str, language: str) -> str:
    from crf import instruments

    return instruments.load(code).title.in_language(language)


@require_http_methods(["GET", "POST"])
@patient_page
def patient_start(request: HttpRequest, q: Questionnaire, token: str) -> HttpResponse:
    """GET shows the start page and changes nothing (mail scanners open links);
    POST starts (notes the time) and goes to the first screen."""
    if request.method == "POST":
        try:
            services.questionnaire_start(questionnaire=q)
        except services.NotAnswerable:
            return _neutral(request)
        return redirect("crf:patient_step", token=token, step=1)
    language = translation.get_language()
    return render(
        request,
        "crf/patient/start.html",
        {
            "token": token,
            "closes_on": timezone.localtime(q.closes_at - timedelta(seconds=1)).date(),
            "screens": [_instrument_title(c, language) for c in _steps(q)],
            "resumed": q.started_at is not None,
            "site_name": _site_name(q),
        },
    )


@require_http_methods(["GET", "POST"])
@patient_page
def patient_step(request: HttpRequest, q: Questionnaire, token: str, step: int) -> HttpResponse:
    """One instrument per screen; POST saves it and moves on (answers kept if they leave).
    Any question may be skipped; a POST with an invalid answer shows the screen again as it
    was sent, with the first error focused."""
    from crf import instruments

    codes = _steps(q)
    if not 1 <= step <= len(codes):
        return _neutral(request)
    code = codes[step - 1]
    language = translation.get_language()
    saved = {r.instrument: r.answers for r in q.responses.all()}
    errors: dict[str, str] = {}
    answers = saved.get(code, {})
    if request.method == "POST":
        answers, errors = parse_instrument(code, request.POST)
        if not errors:
            try:
                services.questionnaire_answers_save(
                    questionnaire=q, instrument=code, answers=answers
                )
            except services.InvalidAnswers as exc:
                errors = exc.errors.get(code, {})
            except services.NotAnswerable:
                return _neutral(request)
        if not errors:
            if request.POST.get("action") == "back" and step > 1:
                return redirect("crf:patient_step", token=token, step=step - 1)
            if step < len(codes):
                return redirect("crf:patient_step", token=token, step=step + 1)
            return redirect("crf:patient_submit", token=token)
        answers = posted_values(code, request.POST)
    instrument = instruments.load(code)
    fields = instrument_fields(code, language=language, answers=answers, errors=errors)
    first_error = focus_first_error(fields)
    response = render(
        request,
        "crf/patient/step.html",
        {
            "token": token,
            "step": step,
            "steps": len(codes),
            "progress": int(100 * (step - 1) / len(codes)),
            "title": instrument.title.in_language(language),
            "instructions": instrument.instructions.in_language(language),
            "recall": instrument.recall.in_language(language) if instrument.recall else "",
            "fields": fields,
            "has_errors": bool(errors),
            "first_error": first_error,
            "site_name": _site_name(q),
        },
        status=400 if errors else 200,
    )
    return response


@require_http_methods(["GET", "POST"])
@patient_page(resubmit_ok=True)
def patient_submit(request: HttpRequest, q: Questionnaire, token: str) -> HttpResponse:
    """The final screen: says how many questions are unanswered (go back / send anyway)
    before sending; one submit; a second submit changes nothing."""
    codes = _steps(q)
    language = translation.get_language()
    status = 200
    if request.method == "POST":
        try:
            services.questionnaire_submit(questionnaire=q)
        except services.InvalidAnswers as exc:
            first = min(codes.index(code) for code in exc.errors if code in codes) + 1
            return redirect("crf:patient_step", token=token, step=first)
        except services.NothingAnswered:
            status = 400
        except services.NotAnswerable:
            return _neutral(request)
        else:
            return redirect(reverse("crf:patient_done") + f"?lang={translation.get_language()}")
    missing = services.questionnaire_unanswered(q)
    parts = [
        {
            "n": n,
            "title": _instrument_title(code, language),
            "unanswered": missing.by_instrument[code],
        }
        for n, code in enumerate(codes, start=1)
    ]
    return render(
        request,
        "crf/patient/submit.html",
        {
            "token": token,
            "steps": len(codes),
            "parts": parts,
            "unanswered": missing.total,
            "nothing_answered": missing.answered == 0,
            "first_unanswered": next((p["n"] for p in parts if p["unanswered"]), len(codes)),
            "site_name": _site_name(q),
        },
        status=status,
    )


def patient_done(request: HttpRequest) -> HttpResponse:
    """Thank-you page (holds no token and no personal data)."""
    language = request.GET.get("lang") if request.GET.get("lang") in ("nl", "en") else None
    with translation.override(language or translation.get_language() or "nl"):
        response = render(request, "crf/patient/done.html")
    return _patient_headers(response)


# --- staff: worklist, detail, entry, correction --------------------------------------------------
WORKLIST_PAGE_SIZE = 50


@role_required(*(DATA_ENTRY | {Role.DATA_MANAGER}))
def worklist(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    bucket = request.GET.get("bucket", "open")
    form_buckets = selectors.FORM_WORKLIST_BUCKETS
    if bucket not in selectors.WORKLIST_BUCKETS and bucket not in form_buckets:
        bucket = "open"
    now = timezone.now()
    qs: Any
    if bucket in form_buckets:
        qs = selectors.forms_worklist(user=user, bucket=bucket)
    else:
        qs = selectors.worklist(user=user, bucket=bucket, at=now)
    page = keyset_page_or_first(qs, cursor=request.GET.get("cursor"), size=WORKLIST_PAGE_SIZE)
    if bucket in form_buckets:
        from crf import instruments

        language = translation.get_language() or "nl"
        for row in page.object_list:
            row.form_title = instruments.load(row.form_code).title.in_language(language)
    counts = dict(selectors.worklist_counts(user=user, at=now))
    for name in form_buckets:
        counts[name] = count_capped(selectors.forms_worklist(user=user, bucket=name))
    return render(
        request,
        "crf/worklist.html",
        {
            "bucket": bucket,
            "buckets": [
                ("open", _("Open")),
                ("overdue", _("Overdue")),
                ("failed", _("Failed")),
                ("overdue_forms", _("Overdue forms")),
                ("draft_forms", _("Incomplete (draft) forms")),
            ],
            "form_bucket": bucket in form_buckets,
            "counts": counts,
            "page": page,
            "query": urlencode({"bucket": bucket}),
            "now": now,
            "demo_mail": settings.DEBUG,
        },
    )


@role_required(*SITE_STAFF)
def questionnaire_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = acting_user(request)
    q = selectors.questionnaire_get(user=user, pk=pk)
    language = translation.get_language() or "nl"
    responses = {r.instrument: r for r in q.responses.all()}
    blocks: list[dict[str, Any]] = []
    for code in q.timepoint.instruments:
        response = responses.get(code)
        blocks.append(
            {
                "code": code,
                "title": _instrument_title(code, language),
                "fields": instrument_fields(
                    code, language=language, answers=response.answers if response else {}
                ),
                "scores": selectors.score_rows(code, (q.scores or {}).get(code), language),
                "response": response,
            }
        )
    access = access_for(user)
    return render(
        request,
        "crf/questionnaire_detail.html",
        {
            "q": q,
            "blocks": blocks,
            "can_enter": access.can_write_site(q.participant.site_id),
        },
    )


@role_required(*DATA_ENTRY)
@require_http_methods(["GET", "POST"])
def questionnaire_entry(request: HttpRequest, pk: int) -> HttpResponse:
    """Enter a questionnaire answered on paper or by phone. A partial entry, or a date
    outside the window, is saved only after the nurse saw and confirmed it."""
    user = acting_user(request)
    q = selectors.questionnaire_get(user=user, pk=pk, for_write=True)
    if q.status == "completed":
        messages.info(request, _("This questionnaire is already completed; correct it instead."))
        return redirect("crf:questionnaire_detail", pk=q.pk)
    if q.status == "cancelled":
        raise PermissionDenied
    language = translation.get_language() or "nl"
    codes = list(q.timepoint.instruments)
    meta = EntryMetaForm(request.POST or None, initial={"completed_on": timezone.localdate()})
    answers: dict[str, dict[str, Any]] = {code: {} for code in codes}
    shown: dict[str, dict[str, Any]] = answers
    errors: dict[str, dict[str, str]] = {}
    confirm = None
    status = 200
    if request.method == "POST":
        for code in codes:
            answers[code], problems = parse_instrument(code, request.POST, prefix=f"{code}-")
            if problems:
                errors[code] = problems
        shown = {code: posted_values(code, request.POST, prefix=f"{code}-") for code in codes}
        status = 400
        if meta.is_valid() and not errors:
            data = meta.cleaned_data
            try:
                services.questionnaire_enter(
                    questionnaire=q,
                    user=user,
                    mode=data["mode"],
                    completed_on=data["completed_on"],
                    completed_time=data["completed_time"],
                    answers=answers,
                    confirm_unanswered=data["confirm_unanswered"],
                    confirm_outside_window=data["confirm_outside_window"],
                )
            except services.InvalidAnswers as exc:
                errors = exc.errors
            except services.EntryRefused as exc:
                add_refusal(meta, exc)
            except services.ConfirmationRequired as exc:
                confirm = {
                    "unanswered": exc.unanswered,
                    "by_instrument": [
                        (_instrument_title(code, language), n)
                        for code, n in exc.unanswered_by_instrument.items()
                    ],
                    "outside_window": exc.outside_window,
                    "completed_on": exc.completed_on,
                    "first_day": exc.first_day,
                    "last_day": exc.last_day,
                }
                status = 200
            except (services.AlreadyCompleted, services.NotAnswerable):
                messages.error(request, _("This questionnaire can no longer be entered."))
                return redirect("crf:questionnaire_detail", pk=q.pk)
            else:
                messages.success(request, _("Questionnaire saved and scored."))
                return redirect("crf:questionnaire_detail", pk=q.pk)
    blocks: list[dict[str, Any]] = [
        {
            "code": code,
            "title": _instrument_title(code, language),
            "fields": instrument_fields(
                code,
                language=language,
                answers=shown[code],
                errors=errors.get(code),
                prefix=f"{code}-",
            ),
        }
        for code in codes
    ]
    first_error = focus_first_error(*(block["fields"] for block in blocks))
    return render(
        request,
        "crf/questionnaire_entry.html",
        {
            "q": q,
            "meta": meta,
            "blocks": blocks,
            "has_errors": bool(errors),
            "first_error": first_error,
            "confirm": confirm,
        },
        status=status,
    )


@role_required(*DATA_ENTRY)
@require_http_methods(["GET", "POST"])
def questionnaire_correct(request: HttpRequest, pk: int, instrument: str) -> HttpResponse:
    """Correct one instrument's answers of a completed questionnaire, with a reason."""
    user = acting_user(request)
    q = selectors.questionnaire_get(user=user, pk=pk, for_write=True)
    if instrument not in q.timepoint.instruments:
        raise Http404
    if q.status != "completed":
        raise PermissionDenied
    language = translation.get_language() or "nl"
    current: dict[str, Any] = next(
        (r.answers for r in q.responses.all() if r.instrument == instrument), {}
    )
    reason_form = CorrectionReasonForm(request.POST or None)
    answers = current
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        answers, errors = parse_instrument(instrument, request.POST, prefix=f"{instrument}-")
        if reason_form.is_valid() and not errors:
            try:
                services.questionnaire_answers_correct(
                    questionnaire=q,
                    instrument=instrument,
                    answers=answers,
                    user=user,
                    reason=reason_form.cleaned_data["reason"],
                )
            except services.InvalidAnswers as exc:
                errors = exc.errors.get(instrument, {})
            except services.EntryRefused as exc:
                add_refusal(reason_form, exc)
            else:
                messages.success(request, _("Answers corrected; scores recomputed."))
                return redirect("crf:questionnaire_detail", pk=q.pk)
        answers = posted_values(instrument, request.POST, prefix=f"{instrument}-")
        status = 400
    fields = instrument_fields(
        instrument, language=language, answers=answers, errors=errors, prefix=f"{instrument}-"
    )
    first_error = focus_first_error(fields)
    return render(
        request,
        "crf/questionnaire_correct.html",
        {
            "q": q,
            "instrument": instrument,
            "title": _instrument_title(instrument, language),
            "fields": fields,
            "reason_form": reason_form,
            "has_errors": bool(errors),
            "first_error": first_error,
        },
        status=status,
    )


@role_required(*DATA_ENTRY)
@require_http_methods(["POST"])
def questionnaire_send_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a failed invitation again (after the cause, e.g. the address, is fixed)."""
    user = acting_user(request)
    q = selectors.questionnaire_get(user=user, pk=pk, for_write=True)
    try:
        services.questionnaire_send_retry(questionnaire=q, user=user)
    except services.NotAnswerable:
        messages.error(request, _("This invitation cannot be sent again."))
    else:
        messages.success(request, _("The invitation will be sent again within a few minutes."))
    return redirect("crf:questionnaire_detail", pk=q.pk)


# --- demo mail (DEBUG only) ------------------------------------------------------------------------
def _mail_dir() -> Path:
    return Path(settings.EMAIL_FILE_PATH)


def _mail_of_own_sites(user: User, files: list[Path]) -> list[Path]:
    """The mail files whose every questionnaire link belongs to a participant at one of
    ``user``'s sites; a file without a known link is shown to nobody."""
    import email
    import re

    from crf.models import QuestionnaireLink

    link_re = re.compile(r"/crf/q/([A-Za-z0-9_\-]{20,100})/")
    hashes: dict[Path, set[str]] = {}
    for path in files:
        found: set[str] = set()
        for chunk in path.read_text(encoding="utf-8", errors="replace").split("-" * 79):
            for part in email.message_from_string(chunk.strip()).walk():
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    text = payload.decode(part.get_content_charset() or "utf-8", "replace")
                    found |= {services.token_hash(t) for t in link_re.findall(text)}
        hashes[path] = found
    links = QuestionnaireLink.objects.filter(token_hash__in=set().union(*hashes.values()))
    sites = access_for(user).site_ids(SITE_STAFF)
    if sites is not None:
        links = links.filter(questionnaire__participant__site_id__in=sites)
    visible = set(links.values_list("token_hash", flat=True))
    return [p for p in files if hashes[p] and hashes[p] <= visible]


@role_required(*SITE_STAFF)
def demo_mail(request: HttpRequest, name: str | None = None) -> HttpResponse:
    """Mail the demo wrote to EMAIL_FILE_PATH, so a person can read it. DEBUG only.
    Only mail to participants of the viewer's own sites is listed or shown."""
    user = acting_user(request)
    if not settings.DEBUG:
        raise Http404
    folder = _mail_dir()
    files = []
    if folder.is_dir():
        files = sorted(
            (p for p in folder.iterdir() if p.is_file() and p.suffix in (".log", ".eml", ".jsonl")),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )[:200]
    files = _mail_of_own_sites(user, files)
    content = None
    if name is not None:
        match = next((p for p in files if p.name == name), None)
        if match is None or os.path.sep in name:
            raise Http404
        content = match.read_text(encoding="utf-8", errors="replace")[:200_000]
    return render(
        request,
        "crf/demo_mail.html",
        {
            "files": [
                {
                    "name": p.name,
                    "size": p.stat().st_size,
                    "modified": datetime.fromtimestamp(
                        p.stat().st_mtime, tz=timezone.get_current_timezone()
                    ),
                    "url": reverse("crf:demo_mail_file", args=[p.name]),
                }
                for p in files
            ],
            "selected": name,
            "content": content,
            "folder": str(folder),
        },
    )


# --- staff: clinical case report forms ------------------------------------------------------------
# One screen per form and occurrence, generated from the form's definition (crf/definitions/)
# through the same mapping as the questionnaire pages (crf.forms). The page works without
# JavaScript; htmx adds per-item validation, live computed items and autosaved drafts.
FORM_READERS = CLINICAL_READERS
MAX_REASON = 2000


def _form_urls(study_number: str, form_code: str, occurrence: str) -> dict[str, str]:
    args = [study_number, form_code, occurrence]
    return {
        "action": reverse("crf:form_screen", args=args),
        "validate": reverse("crf:form_validate", args=[*args, "ITEM"]).replace("ITEM/", ""),
        "compute": reverse("crf:form_compute", args=args),
        "autosave": reverse("crf:form_autosave", args=args),
    }


def _flat_errors(field_errors: dict[str, Any]) -> dict[str, str]:
    return {
        key: " ".join(str(m) for m in value) if isinstance(value, list | tuple) else str(value)
        for key, value in field_errors.items()
    }


def _posted_revision(request: HttpRequest) -> int | None:
    raw = request.POST.get("_revision", "")
    return int(raw) if raw.isdigit() else None


def _screen_for_write(
    request: HttpRequest, study_number: str, form_code: str, occurrence: str
) -> tuple[Any, Any, Any]:
    """The form screen's objects for a POST: 404 as for reading, 403 without write access.
    On a new entry that autosave has already started (``_occurrence``), its record."""
    user = acting_user(request)
    participant, allocation, record = selectors.form_screen(
        user=user, study_number=study_number, form_code=form_code, occurrence=occurrence
    )
    if not access_for(user).can_write_site(participant.site_id):
        raise PermissionDenied
    started = request.POST.get("_occurrence", "")
    if record is None and occurrence == selectors.NEW_OCCURRENCE and started.isdigit():
        participant, allocation, record = selectors.form_screen(
            user=user, study_number=study_number, form_code=form_code, occurrence=started
        )
    return participant, allocation, record


def _full_data(form_code: str, answers: dict[str, Any]) -> dict[str, Any]:
    """Every typed item of the form: what the page sent, ``None`` (clear) for the rest (an
    unticked checkbox group or an emptied field sends nothing)."""
    from crf import instruments

    return {
        item.code: answers.get(item.code)
        for item in instruments.load(form_code).items
        if item.kind != "computed"
    }


def _shown_values(form_code: str, request: HttpRequest, answers: dict[str, Any]) -> dict[str, Any]:
    """A refused POST shown again as typed, with the computed items of what was valid."""
    from crf import instruments

    shown = posted_values(form_code, request.POST)
    computed = instruments.compute(form_code, answers)
    for item in instruments.load(form_code).computed_items:
        shown[item.code] = computed.get(item.code)
    return shown


def _render_form(
    request: HttpRequest,
    *,
    participant: Any,
    record: Any,
    form_code: str,
    occurrence: str,
    answers: dict[str, Any],
    errors: dict[str, str] | None = None,
    top_errors: list[str] | None = None,
    stale: Any = None,
    reason_error: str = "",
    status_reason_error: str = "",
    extra_rows: dict[str, int] | None = None,
    status: int = 200,
    allocation: Any = None,
) -> HttpResponse:
    from cohort.selectors import is_not_informed
    from crf import expected, instruments, review_views

    user = acting_user(request)
    language = translation.get_language() or "nl"
    definition = instruments.load(form_code)
    access = access_for(user)
    can_write = access.can_write_site(participant.site_id)
    withheld: set[str] = set()
    if not access.can_see_identifying(participant.site_id):
        withheld = selectors.identifying_items(definition)
    errors = errors or {}
    fields = instrument_fields(
        form_code,
        language=language,
        answers=answers,
        errors=errors,
        extra_rows=extra_rows,
        withheld=withheld,
    )
    first_error = focus_first_error(fields)
    occurs = expected.rule_for(form_code).occurs
    record_status = record.status if record is not None else "not_started"
    known = {f.name for f in fields} | {
        sub.name for f in fields for row in f.row_views for sub in row
    }
    urls = _form_urls(participant.study_number, form_code, occurrence)
    # the review block (queries, signature, locks, verification): a locked form is read-only
    review = review_views.form_review(
        request,
        participant=participant,
        trial_id=record.trial_id if record is not None else allocation.trial_id,
        record=record,
    )
    locked = review["review"].locked
    can_write = can_write and not locked
    return render(
        request,
        "crf/form_screen.html",
        {
            **review,
            "locked": locked,
            "participant": participant,
            "record": record,
            "record_status": record_status,
            "form_code": form_code,
            "occurrence": occurrence,
            "is_new": occurrence == selectors.NEW_OCCURRENCE,
            "title": definition.title.in_language(language),
            "instructions": definition.instructions.in_language(language),
            "fields": fields,
            "first_error": first_error,
            "has_errors": bool(errors) or bool(top_errors),
            "top_errors": (top_errors or [])
            + [message for key, message in errors.items() if key not in known],
            "stale": stale,
            # after a stale save the page keeps the revision it was based on, so saving it
            # again is refused again until the nurse reloads and sees the other change
            "revision": request.POST.get("_revision", "")
            if stale is not None
            else (record.revision if record is not None else ""),
            "reason_error": reason_error,
            "status_reason_error": status_reason_error,
            "can_write": can_write and record_status != "voided",
            "live": can_write and record_status != "voided",
            "needs_reason": record is not None and record.is_final,
            "can_not_done": occurs != "log" and record_status in ("not_started", "draft"),
            "can_void": occurs in ("log", "per_event") and record is not None,
            "urls": urls,
            "posted_reason": request.POST.get("_reason", "") if request.method == "POST" else "",
            "posted_status_reason": request.POST.get("_status_reason", "")
            if request.method == "POST"
            else "",
            "not_informed_banner": "cohort/_not_informed_banner.html"
            if is_not_informed(participant)
            else None,
        },
        status=status,
    )


@role_required(*FORM_READERS)
@require_http_methods(["GET", "POST"])
def form_screen(
    request: HttpRequest, study_number: str, form_code: str, occurrence: str
) -> HttpResponse:
    """One clinical form of a participant. GET shows it (read-only for monitors and
    statisticians, without possibly identifying texts for pseudonymised readers); POST
    saves a draft, completes, marks "not done" or voids, through the record services.
    Bad input is shown next to its field and writes nothing; a stale revision shows who
    changed the form and when and writes nothing; a completed form changes only with a
    reason for change."""
    user = acting_user(request)
    if request.method == "GET":
        participant, allocation, record = selectors.form_screen(
            user=user, study_number=study_number, form_code=form_code, occurrence=occurrence
        )
        answers = selectors.record_data_for(user, record) if record is not None else {}
        return _render_form(
            request,
            participant=participant,
            record=record,
            form_code=form_code,
            occurrence=occurrence,
            answers=answers,
            allocation=allocation,
        )
    participant, allocation, record = _screen_for_write(
        request, study_number, form_code, occurrence
    )
    action = request.POST.get("_action", "draft")
    screen = {
        "participant": participant,
        "record": record,
        "form_code": form_code,
        "occurrence": occurrence,
        "allocation": allocation,
    }
    answers, errors = parse_instrument(form_code, request.POST)
    add_row = request.POST.get("_add_row", "")
    if add_row or action not in ("draft", "complete", "not_done", "void"):
        # "add row" without JavaScript: the page again with one more blank row, nothing saved
        shown_rows = {
            key.split("-")[1]
            for key in request.POST
            if key.startswith(f"{add_row}-") and key.count("-") == 2
        }
        return _render_form(
            request,
            **screen,
            answers=_shown_values(form_code, request, answers),
            extra_rows={add_row: len(shown_rows) + 1},
        )
    try:
        if action in ("not_done", "void"):
            reason = request.POST.get("_status_reason", "")
            if action == "not_done":
                record = services.clinical_record_not_done(
                    user=user,
                    allocation=allocation,
                    form_code=form_code,
                    occurrence=record.occurrence if record is not None else occurrence,
                    reason=reason,
                    revision=_posted_revision(request) if record is not None else None,
                )
                messages.success(request, _("Recorded as not done."))
            else:
                if record is None:
                    raise Http404
                record = services.clinical_record_void(
                    user=user, record=record, revision=_posted_revision(request), reason=reason
                )
                messages.success(request, _("The entry was voided."))
            return redirect("cohort:participant_detail", study_number=participant.study_number)
        if errors:
            raise services.RecordInvalid(errors=errors)
        complete = action == "complete"
        data = _full_data(form_code, answers)
        if record is None:
            record = services.clinical_record_create(
                user=user,
                allocation=allocation,
                form_code=form_code,
                data=data,
                occurrence=None if occurrence == selectors.NEW_OCCURRENCE else occurrence,
                complete=complete,
            )
        else:
            record = services.clinical_record_update(
                user=user,
                record=record,
                revision=_posted_revision(request),
                data=data,
                complete=True if complete else None,
                reason=request.POST.get("_reason", "")[:MAX_REASON],
            )
    except services.RecordReasonRequired as exc:
        return _render_form(
            request,
            **screen,
            answers=_shown_values(form_code, request, answers),
            reason_error=str(exc.message),
            status=400,
        )
    except services.RecordChanged as exc:
        return _render_form(
            request,
            **screen,
            answers=_shown_values(form_code, request, answers),
            stale=exc,
            status=409,
        )
    except Refusal as exc:
        if isinstance(exc, PermissionDenied):
            raise
        field_errors = _flat_errors(exc.field_errors)
        status_reason_error = ""
        if action in ("not_done", "void"):
            status_reason_error = field_errors.pop("reason", "")
        return _render_form(
            request,
            **screen,
            answers=_shown_values(form_code, request, answers),
            errors=field_errors,
            top_errors=[str(m) for m in exc.non_field_errors]
            if not field_errors and not status_reason_error
            else [],
            status_reason_error=status_reason_error,
            status=400 if isinstance(exc, Invalid) else 409,
        )
    if record.status == "complete":
        messages.success(request, _("Form saved as complete."))
        return redirect("cohort:participant_detail", study_number=participant.study_number)
    messages.success(request, _("Draft saved."))
    return redirect(
        "crf:form_screen",
        study_number=participant.study_number,
        form_code=form_code,
        occurrence=record.occurrence,
    )


@role_required(*FORM_READERS)
@require_http_methods(["POST"])
def form_validate(
    request: HttpRequest, study_number: str, form_code: str, occurrence: str, name: str
) -> HttpResponse:
    """htmx: one item's field (or a repeat row's field) with its message, checked as a
    draft over the whole form as it stands (so conditions and cross-item checks apply)."""
    participant, _allocation, _record = _screen_for_write(
        request, study_number, form_code, occurrence
    )
    answers, errors = parse_instrument(form_code, request.POST)
    fields = instrument_fields(
        form_code,
        language=translation.get_language() or "nl",
        answers=_shown_values(form_code, request, answers),
        errors=errors,
    )
    for view in fields:
        for candidate in [view, *(sub for row in view.row_views for sub in row)]:
            if candidate.name == name:
                return render(
                    request,
                    "crf/_form_field.html",
                    {
                        "f": candidate,
                        "live": True,
                        "sub": candidate is not view,
                        "urls": _form_urls(participant.study_number, form_code, occurrence),
                    },
                )
    raise Http404


@role_required(*FORM_READERS)
@require_http_methods(["POST"])
def form_compute(
    request: HttpRequest, study_number: str, form_code: str, occurrence: str
) -> HttpResponse:
    """htmx: the computed items (SINS total and class, length of stay) of the form as it
    stands, as out-of-band fragments (never typed, never saved by this)."""
    _screen_for_write(request, study_number, form_code, occurrence)
    answers, _errors = parse_instrument(form_code, request.POST)
    fields = [
        f
        for f in instrument_fields(
            form_code,
            language=translation.get_language() or "nl",
            answers=_shown_values(form_code, request, answers),
        )
        if f.kind == "computed"
    ]
    return render(request, "crf/_form_computed.html", {"fields": fields})


@role_required(*FORM_READERS)
@require_http_methods(["POST"])
def form_autosave(
    request: HttpRequest, study_number: str, form_code: str, occurrence: str
) -> HttpResponse:
    """htmx: save the form as a draft (on change, every few seconds). Never completes a
    form; does nothing on a completed or "not done" form (a change there needs a reason
    for change and an explicit save); invalid input saves nothing (the fields say why)."""
    user = acting_user(request)
    _participant, allocation, record = _screen_for_write(
        request, study_number, form_code, occurrence
    )
    context: dict[str, Any] = {"record": record, "saved": False}
    if record is not None and record.status != "draft":
        context["message"] = _(
            "Autosave is off for a completed form: save your change with a reason for change."
        )
        return render(request, "crf/_autosave_status.html", context)
    answers, errors = parse_instrument(form_code, request.POST)
    if errors:
        context["message"] = _("Draft not saved: correct the marked answers.")
        return render(request, "crf/_autosave_status.html", context)
    data = _full_data(form_code, answers)
    try:
        if record is None:
            if not any(v not in (None, "", []) for v in data.values()):
                context["message"] = ""
                return render(request, "crf/_autosave_status.html", context)
            record = services.clinical_record_create(
                user=user,
                allocation=allocation,
                form_code=form_code,
                data=data,
                occurrence=None if occurrence == selectors.NEW_OCCURRENCE else occurrence,
            )
        else:
            record = services.clinical_record_update(
                user=user, record=record, revision=_posted_revision(request), data=data
            )
    except services.RecordChanged as exc:
        context["message"] = str(exc.message)
        return render(request, "crf/_autosave_status.html", context)
    except Refusal as exc:
        if isinstance(exc, PermissionDenied):
            raise
        context["message"] = _("Draft not saved: %(why)s") % {"why": refusal_notice(exc)}
        return render(request, "crf/_autosave_status.html", context)
    context.update({"record": record, "saved": True})
    return render(request, "crf/_autosave_status.html", context)
