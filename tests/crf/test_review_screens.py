"""The data review screens (crf.review_views, issue 12) through the test client: the query
worklist and the query threads on the form screen, signing (a wrong password counted by
django-axes), locks at all three levels refusing the form screen's save, source data
verification, a record's history and the re-check page. Every state-changing POST is
checked on the database and the audit trail; every refusal writes nothing; every new route
is tried by the roles that must be refused; the worklist and the form screen's review
block are pinned at a query count that does not grow with the number of queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.selectors import audit_trail
from crf import services
from crf.models import (
    ClinicalRecord,
    DataLock,
    DataQuery,
    ESignature,
    QueryMessage,
    SourceVerification,
)
from tests import factories
from tests.conftest import events

pytestmark = pytest.mark.django_db

REVIEW_MODELS = (ClinicalRecord, DataQuery, QueryMessage, ESignature, DataLock, SourceVerification)


def _day(n):
    return timezone.localdate() - timedelta(days=n)


ADMISSION = {
    "admitted_on": _day(5).isoformat(),
    "discharged_on": _day(2).isoformat(),
    "icu": False,
    "discharge_destination": "home",
}
ADMISSION_POST = {
    "admitted_on": _day(5).strftime("%d-%m-%Y"),
    "discharged_on": _day(2).strftime("%d-%m-%Y"),
    "icu": "no",
    "discharge_destination": "home",
}


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a, arm="control")


@pytest.fixture
def sn(allocation):
    return allocation.participant.study_number


@pytest.fixture
def site_dm(make_user, site_a):
    """A data manager (monitor) of site A."""
    return make_user("data_manager", site_a, username="dm_site_a")


@pytest.fixture
def admission(allocation, nurse_a):
    return services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="admission", data=ADMISSION, complete=True
    )


@pytest.fixture
def query(admission, site_dm):
    return services.query_raise(
        user=site_dm,
        record=admission,
        item="discharged_on",
        text="The discharge letter says another day.",
        suggested_value=_day(1).isoformat(),
    )


def snapshot():
    """Row and audit event counts of every model the review screens write."""
    return tuple((m.objects.count(), events(m).count()) for m in REVIEW_MODELS)


def screen(sn, form_code="admission", occurrence="1"):
    return reverse("crf:form_screen", args=[sn, form_code, occurrence])


def review_url(name, sn, form_code="admission", occurrence="1"):
    return reverse(f"crf:review_{name}", args=[sn, form_code, occurrence])


def notices(response):
    """The messages shown on the page a POST redirected to."""
    return [str(m) for m in response.context["messages"]] if response.context else []


def follow(client, path, data=None):
    response = client.post(path, data or {}, follow=True)
    assert response.redirect_chain, response.status_code
    return response


# --- 1. the query worklist -------------------------------------------------------------------
def test_the_worklist_lists_the_sites_queries_with_age_filters_and_links(
    client, nurse_a, nurse_b, site_dm, monitor, admission, query, sn
):
    DataQuery.objects.filter(pk=query.pk).update(raised_at=timezone.now() - timedelta(days=3))
    client.force_login(nurse_a)
    html = client.get(reverse("crf:review_queries")).content.decode()
    assert html.count('data-testid="query-row"') == 1
    assert re.search(r'data-testid="age">3<', html)
    assert f'href="{screen(sn)}#query-{query.pk}"' in html
    assert 'name="site"' not in html  # one site: no site filter
    # filters: status, form, raiser
    closed = client.get(reverse("crf:review_queries") + "?status=closed").content.decode()
    assert 'data-testid="query-row"' not in closed
    other_form = client.get(reverse("crf:review_queries") + "?form_code=surgery").content.decode()
    assert 'data-testid="query-row"' not in other_form
    by_dm = client.get(reverse("crf:review_queries") + f"?raised_by={site_dm.pk}").content.decode()
    assert by_dm.count('data-testid="query-row"') == 1
    # a bad filter is named and not applied (never a 500)
    bad = client.get(reverse("crf:review_queries") + "?status=maybe&raised_by=x")
    assert bad.status_code == 200 and bad.content.decode().count('data-testid="query-row"') == 1
    assert "(filter not applied)" in bad.content.decode() or "(filter niet" in bad.content.decode()
    # another site's nurse sees none of it; the sponsor-wide monitor has a site filter
    client.force_login(nurse_b)
    assert (
        'data-testid="query-row"' not in client.get(reverse("crf:review_queries")).content.decode()
    )
    client.force_login(monitor)
    wide = client.get(reverse("crf:review_queries")).content.decode()
    assert 'name="site"' in wide and wide.count('data-testid="query-row"') == 1


def test_the_worklist_pages_through_the_queries(client, nurse_a, site_dm, admission):
    for i in range(53):
        services.query_raise(user=site_dm, record=admission, item="", text=f"question {i}")
    client.force_login(nurse_a)
    first = client.get(reverse("crf:review_queries")).content.decode()
    assert first.count('data-testid="query-row"') == 50 and 'rel="next"' in first
    cursor = re.search(r'rel="next" href="\?cursor=([^"]+)"', first)[1]
    second = client.get(reverse("crf:review_queries") + f"?cursor={cursor}").content.decode()
    assert second.count('data-testid="query-row"') == 3


def test_the_nav_links_to_the_review_lists(client, nurse_a, investigator_a, site_dm):
    client.force_login(nurse_a)
    html = client.get(reverse("home")).content.decode()
    assert f'href="{reverse("crf:review_queries")}"' in html
    assert reverse("crf:review_sign_list") not in html
    client.force_login(investigator_a)
    assert reverse("crf:review_sign_list") in client.get(reverse("home")).content.decode()
    client.force_login(site_dm)
    assert reverse("crf:review_sdv") in client.get(reverse("home")).content.decode()


# --- 2. query threads on the form screen -----------------------------------------------------
def test_a_monitor_raises_a_query_on_an_item_from_the_form_screen(client, site_dm, admission, sn):
    client.force_login(site_dm)
    html = client.get(screen(sn)).content.decode()
    assert 'data-testid="record-review"' in html and 'data-testid="raise-form"' in html
    before = snapshot()
    response = follow(
        client,
        review_url("query_raise", sn),
        {
            "raise-item": "icu",
            "raise-text": "Was the patient in the ICU?",
            "raise-suggested_value": "yes",
        },
    )
    query = DataQuery.objects.get()
    assert (query.item, query.status, query.origin, query.raised_by) == (
        "icu",
        "open",
        "manual",
        site_dm,
    )
    assert query.suggested_value == "yes" and query.text == "Was the patient in the ICU?"
    assert query.messages.get().action == "raise"
    assert response.redirect_chain[-1][0].endswith(f"{screen(sn)}#query-{query.pk}")
    page = response.content.decode()
    assert 'data-testid="query" data-status="open" data-item="icu"' in page
    assert 'data-testid="suggested-value"' in page
    trail = audit_trail(model=DataQuery, pk=query.pk)
    assert len(trail) == 1 and trail[0].user_id == site_dm.pk and trail[0].reason == "query raised"
    after = snapshot()
    assert after[1][0] == before[1][0] + 1 and after[2][0] == before[2][0] + 1
    # on the whole record, without a suggestion
    follow(
        client, review_url("query_raise", sn), {"raise-item": "", "raise-text": "Source missing"}
    )
    whole = DataQuery.objects.get(text="Source missing")
    assert whole.item == "" and whole.suggested_value is None


@pytest.mark.parametrize(
    "data",
    [
        {"raise-item": "icu", "raise-text": "  "},  # no text
        {"raise-item": "no_such_item", "raise-text": "?"},  # not an item of the form
        {"raise-item": "icu", "raise-text": "x" * 2001},  # too long
    ],
)
def test_a_bad_query_raises_nothing_and_says_why(client, site_dm, admission, sn, data):
    client.force_login(site_dm)
    before = snapshot()
    response = follow(client, review_url("query_raise", sn), data)
    assert any("not raised" in m or "niet gesteld" in m for m in notices(response)), notices(
        response
    )
    assert snapshot() == before


def test_the_nurse_answers_and_the_monitor_closes_and_reopens(
    client, nurse_a, site_dm, admission, query, sn
):
    client.force_login(nurse_a)
    page = client.get(screen(sn)).content.decode()
    assert 'data-testid="answer"' in page and 'data-testid="close"' not in page
    before = snapshot()
    response = follow(
        client,
        reverse("crf:review_query_answer", args=[query.pk]),
        {"text": "Corrected on the form."},
    )
    query.refresh_from_db()
    assert query.status == "answered"
    assert [m.action for m in query.messages.all()] == ["raise", "answer"]
    assert snapshot()[0] == before[0]  # the answer changed no data
    assert events(DataQuery, pgh_obj_id=query.pk).count() == 2
    assert 'data-action="answer"' in response.content.decode()
    # a second answer is refused: it is no longer open
    before = snapshot()
    refused = follow(client, reverse("crf:review_query_answer", args=[query.pk]), {"text": "again"})
    assert any("open" in m for m in notices(refused)) and snapshot() == before
    # the monitor closes it
    client.force_login(site_dm)
    page = client.get(screen(sn)).content.decode()
    assert 'data-testid="close"' in page and 'data-testid="answer"' not in page
    follow(client, reverse("crf:review_query_close", args=[query.pk]), {"text": "Thanks"})
    query.refresh_from_db()
    assert query.status == "closed" and query.closed_at is not None
    step = query.messages.order_by("-at", "-pk").first()
    assert (step.action, step.by, step.text) == ("close", site_dm, "Thanks")
    assert audit_trail(model=DataQuery, pk=query.pk)[-1].user_id == site_dm.pk
    # closing again is refused; re-opening needs a reason
    before = snapshot()
    again = follow(client, reverse("crf:review_query_close", args=[query.pk]), {})
    assert any("closed" in m or "gesloten" in m for m in notices(again)) and snapshot() == before
    no_reason = follow(client, reverse("crf:review_query_reopen", args=[query.pk]), {"text": ""})
    assert notices(no_reason) and snapshot() == before
    follow(client, reverse("crf:review_query_reopen", args=[query.pk]), {"text": "Still wrong"})
    query.refresh_from_db()
    assert query.status == "open" and query.messages.count() == 4


def test_the_thread_shows_who_when_what_on_the_form_screen(
    client, nurse_a, site_dm, admission, query, sn
):
    services.query_answer(user=nurse_a, query=query, text="Letter checked")
    client.force_login(nurse_a)
    html = client.get(screen(sn)).content.decode()
    thread = html[html.index(f'id="query-{query.pk}"') :]
    assert "dm_site_a" in thread and "nurse_a" in thread and "Letter checked" in thread
    assert thread.index('data-action="raise"') < thread.index('data-action="answer"')
    assert _day(1).isoformat() in thread  # the suggested value
    assert 'data-badge-for="discharged_on"' in html  # the item's open-query badge


# --- role x route ------------------------------------------------------------------------------
def _routes(sn, query, lock):
    """Every new route: (name, method, path, POST data)."""
    rec = [sn, "admission", "1"]
    return {
        "queries": ("GET", reverse("crf:review_queries"), None),
        "raise": ("POST", reverse("crf:review_query_raise", args=rec), {"raise-text": "q"}),
        "answer": ("POST", reverse("crf:review_query_answer", args=[query.pk]), {"text": "a"}),
        "close": ("POST", reverse("crf:review_query_close", args=[query.pk]), {"text": ""}),
        "reopen": ("POST", reverse("crf:review_query_reopen", args=[query.pk]), {"text": "r"}),
        "sign_list": ("GET", reverse("crf:review_sign_list"), None),
        "sign_get": ("GET", reverse("crf:review_record_sign", args=rec), None),
        "sign": (
            "POST",
            reverse("crf:review_record_sign", args=rec),
            {"password": factories.PASSWORD, "_revision": "1"},
        ),
        "casebook_get": ("GET", reverse("crf:review_casebook_sign", args=[sn]), None),
        "casebook": (
            "POST",
            reverse("crf:review_casebook_sign", args=[sn]),
            {"password": factories.PASSWORD},
        ),
        "verify": (
            "POST",
            reverse("crf:review_record_verify", args=rec),
            {"scope": "key", "_revision": "1"},
        ),
        "lock": ("POST", reverse("crf:review_record_lock", args=rec), {"reason": ""}),
        "casebook_lock": ("POST", reverse("crf:review_participant_lock", args=[sn]), {}),
        "history": ("GET", reverse("crf:review_record_history", args=rec), None),
        "locks": ("GET", reverse("crf:review_locks"), None),
        "trial_lock": ("POST", reverse("crf:review_locks"), {"level": "trial", "trial": "0"}),
        "unlock": ("POST", reverse("crf:review_unlock", args=[lock.pk]), {"reason": "r"}),
        "sdv": ("GET", reverse("crf:review_sdv"), None),
        "recheck": ("GET", reverse("crf:review_recheck"), None),
        "recheck_start": ("POST", reverse("crf:review_recheck"), {"form_code": ""}),
        "recheck_status": ("GET", reverse("crf:review_recheck_status", args=[999999]), None),
    }


ROUTE_NAMES = [
    "queries", "raise", "answer", "close", "reopen", "sign_list", "sign_get", "sign",
    "casebook_get", "casebook", "verify", "lock", "casebook_lock", "history", "locks",
    "trial_lock", "unlock", "sdv", "recheck", "recheck_start", "recheck_status",
]  # fmt: skip

# What each refused role gets on each route: 404 (the object is not visible: another
# site), 403 (role refused), or 200 for a list that shows only what the user may see.
NOT_ALLOWED = {
    # another site's nurse: every object route 404; lists of other roles 403
    "nurse_b": {
        "queries": 200, "sign_list": 403, "locks": 403, "trial_lock": 403, "sdv": 403,
        "recheck": 403, "recheck_start": 403, "recheck_status": 403, "unlock": 404,
    },
    "investigator_b": {
        "queries": 200, "sign_list": 200, "locks": 403, "trial_lock": 403, "sdv": 403,
        "recheck": 403, "recheck_start": 403, "recheck_status": 403, "unlock": 404,
    },
    "statistician": {},  # 403 everywhere
    "administrator": {},  # 403 everywhere
}  # fmt: skip


@pytest.fixture
def record_lock_other(allocation, admission, monitor, nurse_a):
    """A lock on another record of the participant (so the admission stays writable)."""
    entry = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="adverse_event", data={"grade": 1}
    )
    return services.data_lock(
        user=monitor, level="record", trial=allocation.trial, record=entry, reason="x"
    )


@pytest.mark.parametrize("route", ROUTE_NAMES)
@pytest.mark.parametrize("who", list(NOT_ALLOWED))
def test_other_sites_and_non_clinical_roles_are_refused_on_every_route(
    client, request, sn, query, record_lock_other, who, route
):
    method, path, data = _routes(sn, query, record_lock_other)[route]
    default = 404 if who.endswith("_b") else 403
    expected_status = NOT_ALLOWED[who].get(route, default)
    client.force_login(request.getfixturevalue(who))
    before = snapshot()
    response = client.get(path) if method == "GET" else client.post(path, data)
    assert response.status_code == expected_status, (who, route, response.status_code)
    if expected_status == 200:
        assert sn not in response.content.decode()
    assert snapshot() == before


SITE_ROLE_REFUSALS = [
    # (who, route): a role of the participant's own site that this step is not for
    ("nurse_a", "close"),
    ("nurse_a", "reopen"),
    ("nurse_a", "lock"),
    ("nurse_a", "casebook_lock"),
    ("nurse_a", "verify"),
    ("nurse_a", "unlock"),
    ("nurse_a", "history"),
    ("nurse_a", "sign_get"),
    ("nurse_a", "sign"),
    ("nurse_a", "casebook"),
    ("nurse_a", "sign_list"),
    ("nurse_a", "recheck"),
    ("site_dm", "answer"),
    ("site_dm", "sign_get"),
    ("site_dm", "sign"),
    ("site_dm", "casebook"),
    ("site_dm", "sign_list"),
    ("site_dm", "trial_lock"),  # the whole trial: a sponsor-wide data manager only
    ("site_dm", "recheck"),  # every site's records: sponsor-wide only
    ("site_dm", "recheck_start"),
    ("investigator_a", "raise"),
    ("investigator_a", "close"),
    ("investigator_a", "verify"),
    ("investigator_a", "lock"),
    ("investigator_a", "history"),
    ("investigator_a", "locks"),
    ("investigator_a", "sdv"),
    ("monitor", "answer"),
    ("monitor", "sign"),
]


@pytest.mark.parametrize(("who", "route"), SITE_ROLE_REFUSALS)
def test_site_roles_are_refused_the_steps_that_are_not_theirs(
    client, request, sn, query, record_lock_other, who, route
):
    method, path, data = _routes(sn, query, record_lock_other)[route]
    client.force_login(request.getfixturevalue(who))
    before = snapshot()
    response = client.get(path) if method == "GET" else client.post(path, data)
    assert response.status_code == 403, (who, route, response.status_code)
    assert snapshot() == before


# --- 3. signing ------------------------------------------------------------------------------
def test_the_investigator_signs_with_the_password_and_the_form_screen_shows_it(
    client, investigator_a, nurse_a, admission, sn
):
    client.force_login(investigator_a)
    todo = client.get(reverse("crf:review_sign_list")).content.decode()
    assert todo.count('data-testid="sign-row"') == 1
    assert review_url("record_sign", sn) in todo
    page = client.get(review_url("record_sign", sn)).content.decode()
    assert 'data-testid="meaning"' in page and str(services.SIGNATURE_MEANING) in page
    assert 'data-testid="printed-name"' in page and 'type="password"' in page
    assert 'name="_revision" value="1"' in page
    before = snapshot()
    response = follow(
        client, review_url("record_sign", sn), {"password": factories.PASSWORD, "_revision": "1"}
    )
    signature = ESignature.objects.get()
    admission.refresh_from_db()
    assert signature.record == admission and signature.signed_by == investigator_a
    assert signature.sha256 == services.signed_content_sha256(
        [ClinicalRecord.objects.select_related("definition").get(pk=admission.pk)]
    )
    assert signature.meaning == str(services.SIGNATURE_MEANING) and signature.revision == 1
    assert events(ESignature, pgh_obj_id=signature.pk).count() == 1
    assert snapshot()[3][0] == before[3][0] + 1
    assert 'data-testid="signature-valid"' in response.content.decode()
    assert (
        'data-testid="sign-row"' not in client.get(reverse("crf:review_sign_list")).content.decode()
    )
    # a change by the nurse invalidates it, and the form screen says by whom
    client.force_login(nurse_a)
    saved = client.post(
        screen(sn),
        ADMISSION_POST
        | {"icu": "yes", "_action": "complete", "_revision": "1", "_reason": "ICU after all"},
    )
    assert saved.status_code == 302
    signature.refresh_from_db()
    assert signature.invalidated_at is not None and signature.invalidated_by == nurse_a
    html = client.get(screen(sn)).content.decode()
    banner = re.search(r'data-testid="signature-invalidated">(.*?)</p>', html, re.S)[1]
    assert "nurse_a" in banner and ("invalidated" in banner or "ongeldig" in banner)
    client.force_login(investigator_a)
    assert 'data-testid="sign-row"' in client.get(reverse("crf:review_sign_list")).content.decode()


def test_a_wrong_password_signs_nothing_and_is_counted(client, investigator_a, admission, sn):
    client.force_login(investigator_a)
    before = snapshot()
    response = client.post(review_url("record_sign", sn), {"password": "nope", "_revision": "1"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="password-error"' in html
    assert "password" in html.lower() or "wachtwoord" in html.lower()
    assert snapshot() == before and ESignature.objects.count() == 0
    assert AccessAttempt.objects.get(username=investigator_a.username).failures_since_start == 1
    client.post(review_url("record_sign", sn), {"password": "", "_revision": "1"})
    assert AccessAttempt.objects.get(username=investigator_a.username).failures_since_start == 2
    assert snapshot() == before


def test_a_stale_revision_or_a_draft_is_not_signed(
    client, investigator_a, nurse_a, allocation, admission, sn
):
    client.force_login(investigator_a)
    before = snapshot()
    stale = client.post(
        review_url("record_sign", sn), {"password": factories.PASSWORD, "_revision": "7"}
    )
    assert stale.status_code == 409 and 'data-testid="sign-refused"' in stale.content.decode()
    assert snapshot() == before
    services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="adverse_event", data={"grade": 1}
    )
    before = snapshot()
    draft = client.post(
        review_url("record_sign", sn, "adverse_event"),
        {"password": factories.PASSWORD, "_revision": "1"},
    )
    assert draft.status_code == 409 and snapshot() == before
    # the casebook has a draft: refused
    casebook = client.post(
        reverse("crf:review_casebook_sign", args=[sn]), {"password": factories.PASSWORD}
    )
    assert casebook.status_code == 409 and snapshot() == before


def test_the_casebook_is_signed_with_the_password(client, investigator_a, admission, sn):
    client.force_login(investigator_a)
    page = client.get(reverse("crf:review_casebook_sign", args=[sn])).content.decode()
    assert str(services.CASEBOOK_MEANING) in page and 'type="password"' in page
    wrong = client.post(reverse("crf:review_casebook_sign", args=[sn]), {"password": "bad"})
    assert wrong.status_code == 400 and ESignature.objects.count() == 0
    assert AccessAttempt.objects.get(username=investigator_a.username).failures_since_start == 1
    response = client.post(
        reverse("crf:review_casebook_sign", args=[sn]), {"password": factories.PASSWORD}
    )
    assert response.status_code == 302
    signature = ESignature.objects.get()
    assert signature.record is None and signature.meaning == str(services.CASEBOOK_MEANING)
    assert events(ESignature, pgh_obj_id=signature.pk).count() == 1
    assert 'data-testid="casebook-signed"' in client.get(screen(sn)).content.decode()


# --- 4. locks ----------------------------------------------------------------------------------
def _lock_through_screen(client, level, *, sn, allocation):
    if level == "record":
        return follow(client, review_url("record_lock", sn), {"reason": "SDV done"})
    if level == "participant":
        return follow(client, reverse("crf:review_participant_lock", args=[sn]), {"reason": "done"})
    return follow(
        client,
        reverse("crf:review_locks"),
        {"level": "trial", "trial": str(allocation.trial_id), "reason": "interim analysis"},
    )


@pytest.mark.parametrize("level", ["record", "participant", "trial"])
def test_a_lock_makes_the_form_read_only_and_refuses_its_save(
    client, level, allocation, admission, nurse_a, site_dm, monitor, sn
):
    client.force_login(monitor if level == "trial" else site_dm)
    before = snapshot()
    _lock_through_screen(client, level, sn=sn, allocation=allocation)
    lock = DataLock.objects.get()
    assert lock.level == level and lock.unlocked_at is None
    assert events(DataLock, pgh_obj_id=lock.pk).count() == 1
    assert snapshot()[4][0] == before[4][0] + 1
    client.force_login(nurse_a)
    html = client.get(screen(sn)).content.decode()
    assert 'data-testid="locked"' in html and f'data-testid="lock-{level}"' in html
    assert 'data-testid="save-changes"' not in html and "hx-post" not in html
    assert '<fieldset class="crf-fields" disabled>' in html
    before = snapshot()
    response = client.post(
        screen(sn),
        ADMISSION_POST | {"icu": "yes", "_action": "complete", "_revision": "1", "_reason": "typo"},
    )
    assert response.status_code == 409
    assert "locked" in response.content.decode() or "vergrendeld" in response.content.decode()
    admission.refresh_from_db()
    assert admission.data["icu"] is False and admission.revision == 1
    assert snapshot() == before
    if level != "record":  # a new form of the participant is refused too
        new = client.post(
            reverse("crf:form_screen", args=[sn, "adverse_event", "new"]),
            {"grade": "1", "_action": "draft"},
        )
        assert new.status_code == 409 and snapshot() == before


def test_unlock_needs_a_reason_and_then_the_form_can_change(
    client, allocation, admission, nurse_a, site_dm, sn
):
    lock = services.data_lock(
        user=site_dm, level="record", trial=allocation.trial, record=admission
    )
    client.force_login(site_dm)
    before = snapshot()
    refused = follow(client, reverse("crf:review_unlock", args=[lock.pk]), {"reason": "  "})
    assert any("reason" in m or "reden" in m for m in notices(refused)), notices(refused)
    assert snapshot() == before
    lock.refresh_from_db()
    assert lock.unlocked_at is None
    follow(client, reverse("crf:review_unlock", args=[lock.pk]), {"reason": "Correction needed"})
    lock.refresh_from_db()
    assert lock.unlocked_by == site_dm and lock.unlock_reason == "Correction needed"
    assert events(DataLock, pgh_obj_id=lock.pk).count() == 2
    client.force_login(nurse_a)
    html = client.get(screen(sn)).content.decode()
    assert 'data-testid="locked"' not in html and 'data-testid="save-changes"' in html


def test_locking_twice_is_refused_and_the_locks_page_lists_them(
    client, allocation, admission, site_dm, monitor, sn
):
    client.force_login(site_dm)
    follow(client, review_url("record_lock", sn), {})
    before = snapshot()
    again = follow(client, review_url("record_lock", sn), {})
    assert any("already" in m or "al " in m for m in notices(again)) and snapshot() == before
    follow(client, reverse("crf:review_locks"), {"level": "participant", "study_number": sn})
    assert DataLock.objects.filter(level="participant").count() == 1
    unknown = follow(
        client, reverse("crf:review_locks"), {"level": "participant", "study_number": "PRE-99999"}
    )
    assert notices(unknown) and DataLock.objects.count() == 2
    html = client.get(reverse("crf:review_locks")).content.decode()
    assert html.count('data-testid="lock-row"') == 2 and 'data-testid="trial-lock-form"' not in html
    client.force_login(monitor)
    assert (
        'data-testid="trial-lock-form"' in client.get(reverse("crf:review_locks")).content.decode()
    )


# --- 5. source data verification ---------------------------------------------------------------
def test_the_monitor_verifies_key_items_and_a_change_asks_for_reverification(
    client, site_dm, nurse_a, admission, sn
):
    client.force_login(site_dm)
    before = snapshot()
    follow(client, review_url("record_verify", sn), {"scope": "key", "_revision": "1"})
    marks = SourceVerification.objects.filter(record=admission)
    assert sorted(marks.values_list("item", flat=True)) == ["admitted_on", "discharged_on"]
    assert set(marks.values_list("revision", flat=True)) == {1}
    assert snapshot()[5] == (before[5][0] + 2, before[5][1] + 2)
    html = client.get(screen(sn)).content.decode()
    assert (
        'data-testid="verified-admitted_on"' in html
        and 'data-testid="verified-discharged_on"' in html
    )
    # every answered item
    follow(client, review_url("record_verify", sn), {"scope": "all", "_revision": "1"})
    assert marks.filter(cleared_at__isnull=True).count() == 4
    # the nurse changes the discharge date: that mark is cleared and listed again
    services.clinical_record_update(
        user=nurse_a,
        record=admission,
        revision=1,
        data={"discharged_on": _day(1).isoformat()},
        reason="letter",
    )
    html = client.get(screen(sn)).content.decode()
    assert 'data-testid="reverify-discharged_on"' in html
    assert 'data-testid="verified-admitted_on"' in html
    # a stale revision or nothing ticked verifies nothing
    before = snapshot()
    stale = follow(client, review_url("record_verify", sn), {"scope": "key", "_revision": "1"})
    assert notices(stale) and snapshot() == before
    empty = follow(client, review_url("record_verify", sn), {"scope": "items", "_revision": "2"})
    assert notices(empty) and snapshot() == before
    follow(
        client,
        review_url("record_verify", sn),
        {"scope": "items", "items": ["discharged_on"], "_revision": "2"},
    )
    assert marks.get(item="discharged_on", cleared_at__isnull=True).revision == 2


def test_a_draft_is_not_verified(client, site_dm, nurse_a, allocation, sn):
    services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="adverse_event", data={"grade": 1}
    )
    client.force_login(site_dm)
    before = snapshot()
    response = follow(
        client, review_url("record_verify", sn, "adverse_event"), {"scope": "key", "_revision": "1"}
    )
    assert notices(response) and snapshot() == before


def test_the_sdv_progress_page_counts_per_site_and_form(client, site_dm, admission):
    client.force_login(site_dm)
    html = client.get(reverse("crf:review_sdv")).content.decode()
    row = re.search(r'data-site="site-a" data-form="admission">(.*?)</tr>', html, re.S)[1]
    assert "<td>1</td><td>0</td>" in row
    services.record_verify(user=site_dm, record=admission, revision=1)
    html = client.get(reverse("crf:review_sdv")).content.decode()
    row = re.search(r'data-site="site-a" data-form="admission">(.*?)</tr>', html, re.S)[1]
    assert "<td>1</td><td>1</td>" in row and "100%" in row


# --- 6. history --------------------------------------------------------------------------------
def test_the_history_interleaves_changes_signatures_verifications_and_query_steps(
    client, site_dm, nurse_a, investigator_a, admission, query, sn
):
    from django.test import RequestFactory

    services.record_sign(
        user=investigator_a,
        record=admission,
        password=factories.PASSWORD,
        request=RequestFactory().post("/"),
        revision=1,
    )
    services.record_verify(user=site_dm, record=admission, revision=1)
    services.query_answer(user=nurse_a, query=query, text="fixed")
    services.clinical_record_update(
        user=nurse_a, record=admission, revision=1, data={"icu": True}, reason="ICU after all"
    )
    client.force_login(site_dm)
    html = client.get(review_url("record_history", sn)).content.decode()
    kinds = re.findall(r'data-testid="history-entry" data-kind="(\w+)"', html)
    for kind in ("change", "signature", "signature_invalidated", "verification", "query"):
        assert kind in kinds, kind
    assert kinds.index("signature") < kinds.index("signature_invalidated")
    assert "ICU after all" in html and "fixed" in html


# --- 7. re-check -------------------------------------------------------------------------------
def test_the_recheck_page_offers_every_form_and_refuses_a_second_run(client, monitor):
    client.force_login(monitor)
    html = client.get(reverse("crf:review_recheck")).content.decode()
    assert 'data-testid="recheck-form"' in html and 'value="adverse_event"' in html
    bad = client.post(reverse("crf:review_recheck"), {"form_code": "c15pal"})
    assert bad.status_code == 400
    assert client.get(reverse("crf:review_recheck_status", args=[424242])).status_code == 404
    from crf.models import RecheckRun

    running = RecheckRun.objects.create(form_code="adverse_event", status="running", total=10)
    refused = client.post(
        reverse("crf:review_recheck"), {"form_code": "adverse_event"}, follow=True
    )
    assert "already under way" in refused.content.decode() or "al bezig" in refused.content.decode()
    assert RecheckRun.objects.count() == 1
    page = client.get(reverse("crf:review_recheck_status", args=[running.pk])).content.decode()
    assert 'data-state="running"' in page and "hx-trigger" in page


# --- query counts ------------------------------------------------------------------------------
def _queries(client, path):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured.captured_queries)


def test_the_worklist_query_count_does_not_grow_with_queries(client, nurse_a, site_dm, admission):
    for i in range(2):
        services.query_raise(user=site_dm, record=admission, item="icu", text=f"q{i}")
    client.force_login(nurse_a)
    path = reverse("crf:review_queries")
    client.get(path)
    few = _queries(client, path)
    for i in range(18):
        services.query_raise(user=site_dm, record=admission, item="icu", text=f"more {i}")
    many = _queries(client, path)
    assert client.get(path).content.decode().count('data-testid="query-row"') == 20
    print(f"query worklist: {few} / {many} SQL queries with 2 / 20 queries")
    assert many == few


def test_the_form_screen_review_block_query_count_does_not_grow_with_messages(
    client, nurse_a, site_dm, admission, sn
):
    def thread(n):
        for _ in range(n):
            q = services.query_raise(user=site_dm, record=admission, item="icu", text="why?")
            services.query_answer(user=nurse_a, query=q, text="because")

    thread(1)  # 2 messages
    client.force_login(site_dm)
    path = screen(sn)
    client.get(path)
    few = _queries(client, path)
    thread(9)  # 20 messages
    many = _queries(client, path)
    assert QueryMessage.objects.count() == 20
    assert client.get(path).content.decode().count('data-testid="query-step"') == 20
    print(f"form screen with review block: {few} / {many} SQL queries with 2 / 20 messages")
    assert many == few
