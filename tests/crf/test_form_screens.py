"""The nurses' clinical form screens (crf.views.form_*): generated from the definitions,
bad input per kind shown next to its field with nothing written (records and audit
events counted), reason for change on completed forms, stale revisions refused with the
first save intact, htmx validation / computed items / autosave, the participant page's
forms panel and the worklist buckets, every role on every route, and query counts that do
not grow with the number of records."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.selectors import audit_trail
from crf import services
from crf.models import ClinicalRecord, FormExpectation
from tests.conftest import events

pytestmark = pytest.mark.django_db

WOUND = "10053692"  # CTCAE v5.0 "Wound complication"
BACK_PAIN = "10003988"


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a, arm="intervention")


@pytest.fixture
def sn(allocation):
    return allocation.participant.study_number


@pytest.fixture
def ae(allocation, nurse_a):
    return services.clinical_record_create(
        user=nurse_a,
        allocation=allocation,
        form_code="adverse_event",
        data={"grade": 2, "description": "Pain flare at T10, seen by Dr Jansen at home"},
    )


@pytest.fixture
def admission(allocation, nurse_a):
    return services.clinical_record_create(
        user=nurse_a,
        allocation=allocation,
        form_code="admission",
        data={
            "admitted_on": _iso(3),
            "discharged_on": _iso(1),
            "icu": False,
            "discharge_destination": "home",
        },
        complete=True,
    )


def url(sn, form_code, occurrence="1", what=None, name=None):
    if what is None:
        return reverse("crf:form_screen", args=[sn, form_code, occurrence])
    if what == "validate":
        return reverse("crf:form_validate", args=[sn, form_code, occurrence, name])
    return reverse(f"crf:form_{what}", args=[sn, form_code, occurrence])


def counts():
    return ClinicalRecord.objects.count(), events(ClinicalRecord).count()


def _day(n):
    return timezone.localdate() - timedelta(days=n)


def _typed(n):
    return _day(n).strftime("%d-%m-%Y")


def _iso(n):
    return _day(n).isoformat()


ADMISSION = {
    "admitted_on": _typed(3),
    "discharged_on": _iso(1),  # ISO (a date picker) is accepted too
    "icu": "no",
    "discharge_destination": "home",
}
SINS = {  # 3 + 3 + 2 + 0 + 1 + 0 = 9: potentially unstable
    "sins_location": "junctional",
    "sins_pain": "mechanical",
    "sins_lesion": "lytic",
    "sins_alignment": "normal",
    "sins_collapse": "none_over_50_involved",
    "sins_posterolateral": "none",
}


def field_error(response, name):
    """The message next to field ``name`` on the page (its err-<name> element)."""
    html = response.content.decode()
    match = re.search(rf'id="err-{re.escape(name)}"[^>]*>(.*?)</div>', html, re.S)
    assert match, f"no message element for {name}"
    return match[1].strip()


# --- the screen is the definition ----------------------------------------------------------
def test_every_form_renders_from_its_definition(client, nurse_a, sn):
    client.force_login(nurse_a)
    for code in ("baseline_clinical", "sbrt_delivery", "surgery", "admission", "end_of_study"):
        assert client.get(url(sn, code)).status_code == 200, code
    assert client.get(url(sn, "followup_clinical", "week4")).status_code == 200
    for code in ("adverse_event", "systemic_therapy", "deviation", "surgery"):
        assert client.get(url(sn, code, "new")).status_code == 200, code


def test_labels_units_help_required_and_widgets_follow_the_definition(client, nurse_a, sn):
    client.force_login(nurse_a)
    html = client.get(url(sn, "baseline_clinical")).content.decode()
    assert '<h2 class="h5 crf-section">Tumor</h2>' in html  # sections as headings, Dutch
    assert '<label class="crf-label" for="id-worst_pain">' in html  # labels bound to inputs
    assert 'id="id-worst_pain"' in html and ">NRS</span>" in html  # unit next to the input
    assert "Berekend uit de zes onderdelen" in html  # help text
    assert html.count('type="radio" name="sins_location"') == 4  # choices as radios
    assert html.count('type="checkbox" name="index_levels"') >= 24  # multi-choice boxes
    assert 'id="computed-sins_total"' in html and 'name="sins_total"' not in html
    assert 'data-show-if="primary_tumour:other"' in html
    assert 'data-show-if="uses_analgesics:yes"' in html  # yes/no condition
    assert 'hx-post="' + url(sn, "baseline_clinical", what="autosave") in html
    ae = client.get(url(sn, "adverse_event", "new")).content.decode()
    assert '<select class="form-select" name="term" id="id-term"' in ae  # code list lookup
    assert f'value="{WOUND}">Wondcomplicatie</option>' in ae  # the list's current terms
    sbrt = client.get(url(sn, "sbrt_delivery")).content.decode()
    assert 'name="targets-0-dose_gy"' in sbrt and 'data-testid="add-row-targets"' in sbrt
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.get(url(sn, "baseline_clinical")).content.decode()
    assert ">Primary tumour" in english and "Computed from the six components" in english


def test_a_nurse_completes_a_form_and_the_record_and_audit_trail_say_so(client, nurse_a, sn):
    client.force_login(nurse_a)
    before = counts()
    response = client.post(url(sn, "admission"), ADMISSION | {"_action": "complete"})
    assert response.status_code == 302, response.content.decode()[:2000]
    record = ClinicalRecord.objects.get(form_code="admission")
    assert record.status == "complete" and record.occurrence == "1"
    assert record.data == {
        "admitted_on": _iso(3),
        "discharged_on": _iso(1),
        "icu": False,
        "discharge_destination": "home",
        "length_of_stay": 2,
    }
    assert counts() == (before[0] + 1, before[1] + 1)
    trail = audit_trail(model=ClinicalRecord, pk=record.pk)
    assert trail[-1].user_id == nurse_a.pk


def test_a_draft_is_saved_and_shown_again_with_typed_dates(client, nurse_a, sn):
    client.force_login(nurse_a)
    response = client.post(
        url(sn, "surgery"), {"started_at": "01-03-2026 9:05", "_action": "draft"}
    )
    assert response.status_code == 302
    record = ClinicalRecord.objects.get(form_code="surgery")
    assert record.status == "draft" and record.data == {"started_at": "2026-03-01T09:05"}
    page = client.get(response["Location"]).content.decode()
    assert (
        'value="01-03-2026 09:05"' in page
        and 'name="_revision" id="form-revision" value="1"' in page
    )


BAD = [
    # (form, occurrence, posted fields, action, the field that carries the message)
    ("admission", "1", {"icu": "no"}, "complete", "admitted_on"),  # required on completion
    ("baseline_clinical", "1", {"worst_pain": "11"}, "draft", "worst_pain"),  # out of range
    ("baseline_clinical", "1", {"worst_pain": "six"}, "draft", "worst_pain"),  # wrong type
    ("baseline_clinical", "1", {"worst_pain": "2.5"}, "draft", "worst_pain"),  # not whole
    ("admission", "1", {"admitted_on": "31-02-2026"}, "draft", "admitted_on"),  # impossible
    ("admission", "1", {"admitted_on": "2026-02-31"}, "draft", "admitted_on"),  # impossible
    ("admission", "1", {"admitted_on": "yesterday"}, "draft", "admitted_on"),  # not a date
    ("admission", "1", {"admitted_on": _typed(-400)}, "draft", "admitted_on"),  # future
    ("admission", "1", {"icu": "maybe"}, "draft", "icu"),  # yes/no
    ("admission", "1", {"discharge_destination": "mars"}, "draft", "discharge_destination"),
    (
        "admission",
        "1",
        {"admitted_on": _typed(1), "discharged_on": _typed(3)},
        "draft",
        "discharged_on",
    ),  # cross-item check: discharge before admission
    ("adverse_event", "new", {"description": "x" * 10_000}, "draft", "description"),  # long
    ("adverse_event", "new", {"description": "<b>bold</b>"}, "draft", "description"),  # HTML
    ("adverse_event", "new", {"term": "not-a-ctcae-code"}, "draft", "term"),  # unknown code
    ("adverse_event", "new", {"grade": "7"}, "draft", "grade"),  # not a choice
    ("surgery", "1", {"started_at": "13-13-2026 10:00"}, "draft", "started_at"),  # datetime
    ("surgery", "1", {"started_at": "01-03-2026 25:00"}, "draft", "started_at"),  # datetime
    ("surgery", "1", {"levels_instrumented": ["T99"]}, "draft", "levels_instrumented"),
    ("sbrt_delivery", "1", {"targets-0-dose_gy": "99"}, "draft", "targets-0-dose_gy"),  # row
    ("sbrt_delivery", "1", {"targets-0-fractions": "x"}, "draft", "targets-0-fractions"),
]


TYPED = {
    "worst_pain",
    "admitted_on",
    "discharged_on",
    "started_at",
    "targets-0-dose_gy",
    "targets-0-fractions",
}


@pytest.mark.parametrize(("form_code", "occurrence", "data", "action", "name"), BAD)
def test_bad_input_gets_a_message_next_to_its_field_and_writes_nothing(
    client, nurse_a, sn, form_code, occurrence, data, action, name
):
    client.force_login(nurse_a)
    before = counts()
    expectations = list(FormExpectation.objects.values_list("form_code", "status"))
    response = client.post(url(sn, form_code, occurrence), data | {"_action": action})
    assert response.status_code == 400
    assert field_error(response, name), response.context["fields"]
    assert response.context["has_errors"]
    first = response.context["first_error"]
    assert first == f"item-{name}" or (name.startswith("targets-") and first)
    assert counts() == before
    assert list(FormExpectation.objects.values_list("form_code", "status")) == expectations
    # what was typed into a text field is shown again (not blanks), dates as dd-mm-yyyy
    html = response.content.decode()
    for key, value in data.items():
        if key in TYPED and "<" not in value and len(value) < 100:
            shown = "31-02-2026" if value == "2026-02-31" else value
            assert f'value="{shown}"' in html or f">{shown}</textarea>" in html, key


def test_bad_input_on_an_existing_record_changes_nothing(client, nurse_a, sn, ae):
    client.force_login(nurse_a)
    before = counts()
    response = client.post(
        url(sn, "adverse_event", ae.occurrence),
        {"grade": "2", "onset_on": "31-02-2026", "_revision": "1", "_action": "draft"},
    )
    assert response.status_code == 400 and field_error(response, "onset_on")
    ae.refresh_from_db()
    assert ae.revision == 1 and "onset_on" not in ae.data
    assert counts() == before


def test_a_completed_form_changes_only_with_a_reason_for_change(client, nurse_a, sn, admission):
    client.force_login(nurse_a)
    page = client.get(url(sn, "admission")).content.decode()
    assert 'name="_reason"' in page and 'data-testid="save-changes"' in page
    changed = ADMISSION | {"discharge_destination": "rehabilitation", "_revision": "1"}
    before = counts()
    refused = client.post(url(sn, "admission"), changed | {"_action": "complete"})
    assert refused.status_code == 400
    assert "reden" in field_error(refused, "reason").lower()
    admission.refresh_from_db()
    assert admission.data["discharge_destination"] == "home" and admission.revision == 1
    assert counts() == before
    saved = client.post(
        url(sn, "admission"),
        changed | {"_action": "complete", "_reason": "source says rehabilitation"},
    )
    assert saved.status_code == 302
    admission.refresh_from_db()
    assert admission.status == "complete" and admission.revision == 2
    assert admission.data["discharge_destination"] == "rehabilitation"
    last = audit_trail(model=ClinicalRecord, pk=admission.pk)[-1]
    assert last.reason == "source says rehabilitation"
    assert last.changes["data.discharge_destination"] == ("home", "rehabilitation")


def test_a_stale_save_shows_who_changed_the_form_and_when_and_writes_nothing(
    client, nurse_a, investigator_a, sn, ae
):
    client.force_login(nurse_a)
    assert (
        'id="form-revision" value="1"' in client.get(url(sn, "adverse_event", "1")).content.decode()
    )
    services.clinical_record_update(user=investigator_a, record=ae, revision=1, data={"grade": 3})
    before = counts()
    response = client.post(
        url(sn, "adverse_event", "1"), {"grade": "1", "_revision": "1", "_action": "draft"}
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert 'data-testid="form-stale"' in html and "investigator_a" in html
    ae.refresh_from_db()
    assert ae.data["grade"] == 3 and ae.revision == 2 and ae.updated_by == investigator_a
    assert counts() == before
    assert 'value="1" checked' in html  # the nurse's input is not lost
    # the page still holds revision 1: saving it again is refused again (no silent overwrite)
    assert 'id="form-revision" value="1"' in html
    again = client.post(
        url(sn, "adverse_event", "1"), {"grade": "1", "_revision": "1", "_action": "draft"}
    )
    assert again.status_code == 409 and counts() == before


def test_not_done_needs_a_reason(client, nurse_a, sn):
    client.force_login(nurse_a)
    before = counts()
    refused = client.post(url(sn, "baseline_clinical"), {"_action": "not_done"})
    assert refused.status_code == 400 and field_error(refused, "status-reason")
    assert counts() == before
    done = client.post(
        url(sn, "baseline_clinical"), {"_action": "not_done", "_status_reason": "visit missed"}
    )
    assert done.status_code == 302
    record = ClinicalRecord.objects.get(form_code="baseline_clinical")
    assert record.status == "not_done" and record.status_reason == "visit missed"
    assert audit_trail(model=ClinicalRecord, pk=record.pk)[-1].reason == "not done: visit missed"


def test_a_log_entry_is_voided_with_a_reason_never_deleted(client, nurse_a, sn, ae):
    client.force_login(nurse_a)
    page = client.get(url(sn, "adverse_event", "1")).content.decode()
    assert 'data-testid="void"' in page and 'data-testid="not-done"' not in page
    refused = client.post(url(sn, "adverse_event", "1"), {"_action": "void", "_revision": "1"})
    assert refused.status_code == 400 and field_error(refused, "status-reason")
    voided = client.post(
        url(sn, "adverse_event", "1"),
        {"_action": "void", "_revision": "1", "_status_reason": "entered for the wrong patient"},
    )
    assert voided.status_code == 302
    ae.refresh_from_db()
    assert ae.status == "voided" and ae.status_reason == "entered for the wrong patient"
    assert ClinicalRecord.objects.filter(pk=ae.pk).exists()
    again = client.get(url(sn, "adverse_event", "1")).content.decode()
    assert 'data-testid="save-draft"' not in again  # a voided entry is read-only


def test_add_row_without_javascript_shows_one_more_row_and_saves_nothing(client, nurse_a, sn):
    client.force_login(nurse_a)
    before = counts()
    response = client.post(
        url(sn, "sbrt_delivery"),
        {"targets-0-dose_gy": "24", "targets-0-fractions": "3", "_add_row": "targets"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="targets-1-dose_gy"' in html and 'name="targets-0-dose_gy"' in html
    assert 'name="targets-2-dose_gy"' not in html  # exactly one more row
    assert 'value="24"' in html
    assert counts() == before


def test_repeat_rows_and_multi_choice_are_saved(client, nurse_a, sn):
    client.force_login(nurse_a)
    data = {
        "started_at": (timezone.localtime() - timedelta(days=1)).strftime("%d-%m-%Y %H:%M"),
        "targets-0-levels": ["T10", "T11"],
        "targets-0-dose_gy": "24",
        "targets-0-fractions": "3",
        "targets-1-dose_gy": "",
        "site_sparing": "yes",
        "completed_as_planned": "yes",
        "deviation": "no",
        "_action": "complete",
    }
    assert client.post(url(sn, "sbrt_delivery"), data).status_code == 302
    record = ClinicalRecord.objects.get(form_code="sbrt_delivery")
    assert record.status == "complete"
    assert record.data["targets"] == [{"levels": ["T10", "T11"], "dose_gy": 24, "fractions": 3}]


# --- htmx: validation per item, computed items, autosave ------------------------------------
def test_inline_validation_returns_the_field_with_its_message(client, nurse_a, sn):
    client.force_login(nurse_a)
    before = counts()
    bad = client.post(
        url(sn, "baseline_clinical", what="validate", name="worst_pain"), {"worst_pain": "11"}
    )
    assert bad.status_code == 200 and 'id="item-worst_pain"' in bad.content.decode()
    assert "10" in field_error(bad, "worst_pain")
    good = client.post(
        url(sn, "baseline_clinical", what="validate", name="worst_pain"), {"worst_pain": "4"}
    )
    assert field_error(good, "worst_pain") == ""
    row = client.post(
        url(sn, "sbrt_delivery", what="validate", name="targets-0-dose_gy"),
        {"targets-0-dose_gy": "99"},
    )
    assert row.status_code == 200 and field_error(row, "targets-0-dose_gy")
    assert (
        client.post(url(sn, "baseline_clinical", what="validate", name="nope"), {}).status_code
        == 404
    )
    assert counts() == before


def test_computed_items_follow_the_components_live(client, nurse_a, sn):
    client.force_login(nurse_a)
    partial = client.post(
        url(sn, "baseline_clinical", what="compute"), {"sins_location": "junctional"}
    )
    assert re.search(
        r'id="computed-sins_total"[^>]*hx-swap-oob="true">—<', partial.content.decode()
    )
    full = client.post(url(sn, "baseline_clinical", what="compute"), SINS).content.decode()
    assert re.search(r'id="computed-sins_total"[^>]*>9<', full)
    assert re.search(r'id="computed-sins_class"[^>]*>mogelijk instabiel<', full)
    stay = client.post(url(sn, "admission", what="compute"), ADMISSION).content.decode()
    assert re.search(r'id="computed-length_of_stay"[^>]*>2<', stay)
    assert counts() == (0, 0)


def test_autosave_saves_drafts_and_never_completes(client, nurse_a, sn):
    client.force_login(nurse_a)
    first = client.post(
        url(sn, "adverse_event", "new", what="autosave"), {"grade": "2", "_action": "complete"}
    )
    assert first.status_code == 200
    html = first.content.decode()
    assert "Concept opgeslagen om" in html or "Draft saved at" in html
    record = ClinicalRecord.objects.get(form_code="adverse_event")
    assert record.status == "draft" and record.data == {"grade": 2}
    assert 'id="form-revision" value="1" hx-swap-oob="true"' in html
    assert 'id="form-occurrence" value="1" hx-swap-oob="true"' in html
    assert '<span id="form-status" hx-swap-oob="true">' in html and 'data-status="draft"' in html
    # the next autosave of the new entry continues that record (not a second one)
    client.post(
        url(sn, "adverse_event", "new", what="autosave"),
        {"grade": "3", "_occurrence": "1", "_revision": "1"},
    )
    record.refresh_from_db()
    assert (
        ClinicalRecord.objects.count() == 1 and record.data == {"grade": 3} and record.revision == 2
    )
    # invalid input: nothing saved
    before = counts()
    bad = client.post(
        url(sn, "adverse_event", "1", what="autosave"), {"grade": "9", "_revision": "2"}
    )
    assert 'data-saved="0"' in bad.content.decode() and counts() == before
    # a stale autosave writes nothing and says so
    stale = client.post(
        url(sn, "adverse_event", "1", what="autosave"), {"grade": "1", "_revision": "1"}
    )
    assert 'data-saved="0"' in stale.content.decode() and counts() == before


def test_autosave_does_nothing_on_a_completed_form(client, nurse_a, sn, admission):
    client.force_login(nurse_a)
    before = counts()
    response = client.post(
        url(sn, "admission", what="autosave"),
        ADMISSION | {"icu": "yes", "_revision": "1", "_reason": "typo"},
    )
    assert response.status_code == 200 and 'data-saved="0"' in response.content.decode()
    admission.refresh_from_db()
    assert admission.data["icu"] is False and admission.revision == 1
    assert counts() == before
    assert 'data-autosave-off="1"' in client.get(url(sn, "admission")).content.decode()


# --- access: every route by role ----------------------------------------------------------
ROUTES = [
    ("GET", None, None),
    ("POST", None, None),
    ("POST", "validate", "grade"),
    ("POST", "compute", None),
    ("POST", "autosave", None),
]


def _call(client, method, sn, occurrence, what, name):
    target = url(sn, "adverse_event", occurrence, what=what, name=name)
    if method == "GET":
        return client.get(target)
    return client.post(target, {"grade": "4", "_revision": "1", "_action": "complete"})


@pytest.mark.parametrize("occurrence", ["1", "new"])
@pytest.mark.parametrize(("method", "what", "name"), ROUTES)
@pytest.mark.parametrize(
    ("who", "read", "write"),
    [
        ("nurse_b", 404, 404),  # another site: learns nothing
        ("investigator_b", 404, 404),
        ("monitor", 200, 403),  # read-only
        ("statistician", 200, 403),
        ("administrator", 403, 403),  # never sees clinical data
    ],
)
def test_roles_on_every_form_route(
    client, request, ae, sn, occurrence, method, what, name, who, read, write
):
    client.force_login(request.getfixturevalue(who))
    before = counts()
    response = _call(client, method, sn, occurrence, what, name)
    assert response.status_code == (read if method == "GET" else write)
    assert counts() == before
    ae.refresh_from_db()
    assert ae.data["grade"] == 2


@pytest.mark.parametrize(("method", "what", "name"), ROUTES)
def test_site_staff_write_on_every_route(client, investigator_a, ae, sn, method, what, name):
    client.force_login(investigator_a)
    response = _call(client, method, sn, "1", what, name)
    assert response.status_code not in (403, 404)


def test_readers_get_no_buttons_and_pseudonymised_readers_no_identifying_text(
    client, monitor, statistician, nurse_a, sn, ae
):
    client.force_login(nurse_a)
    own = client.get(url(sn, "adverse_event", "1")).content.decode()
    assert "Dr Jansen" in own and 'data-testid="complete"' in own
    for reader in (monitor, statistician):
        client.force_login(reader)
        html = client.get(url(sn, "adverse_event", "1")).content.decode()
        assert 'data-testid="read-only"' in html and "hx-post" not in html
        assert 'data-testid="complete"' not in html and 'data-testid="save-draft"' not in html
        assert '<fieldset class="crf-fields" disabled>' in html
    assert "Dr Jansen" not in html and 'data-testid="withheld-description"' in html


def test_unknown_forms_and_occurrences_are_404(client, nurse_a, sn, ae):
    client.force_login(nurse_a)
    assert client.get(url(sn, "c15pal")).status_code == 404  # a questionnaire, not a form
    assert client.get(url(sn, "adverse_event", "7")).status_code == 404  # no such entry
    assert client.get(url(sn, "followup_clinical", "week5")).status_code == 404
    assert client.get(url(sn, "baseline_clinical", "new")).status_code == 404  # once only
    assert client.get(url(sn, "rt_after_surgery")).status_code == 404  # control-arm form
    assert client.get(url("PRE-99999", "adverse_event", "1")).status_code == 404


def test_the_control_banner_shows_on_the_form_screens(
    client, active_sequence, randomised, site_a, nurse_a
):
    active_sequence()
    control = randomised(site_a, nurse_a, arm="control")
    client.force_login(nurse_a)
    html = client.get(url(control.participant.study_number, "baseline_clinical")).content.decode()
    assert 'data-testid="not-informed-banner"' in html


# --- participant page panel and worklist --------------------------------------------------
def _queries(client, path):
    """How many queries one GET of ``path`` makes (counted before the next request)."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured.captured_queries)


def _add_aes(allocation, user, n):
    for i in range(n):
        services.clinical_record_create(
            user=user,
            allocation=allocation,
            form_code="adverse_event",
            data={"term": BACK_PAIN, "grade": 1 + i % 3, "onset_on": _iso(2)},
        )


def test_the_participant_page_shows_the_grid_and_the_logs(client, nurse_a, allocation, sn):
    _add_aes(allocation, nurse_a, 2)
    FormExpectation.objects.filter(occurrence="week4").update(window_end=_day(1))
    client.force_login(nurse_a)
    html = client.get(reverse("cohort:participant_detail", args=[sn])).content.decode()
    assert 'data-testid="forms-panel"' in html
    assert (
        f'href="{url(sn, "baseline_clinical")}" data-occurrence="1" data-status="not_started"'
        in html
    )
    assert 'data-occurrence="week4" data-status="overdue"' in html
    assert 'data-occurrence="1" data-status="not_applicable"' in html  # rt_after_surgery
    assert html.count("Rugpijn") == 2  # the AE log's rows, with the term's label
    assert f'href="{url(sn, "adverse_event", "new")}"' in html
    assert f'href="{url(sn, "adverse_event", "2")}"' in html


def test_before_day_0_the_panel_offers_baseline_and_the_logs(client, nurse_a, sn):
    client.force_login(nurse_a)
    html = client.get(reverse("cohort:participant_detail", args=[sn])).content.decode()
    assert 'data-testid="forms-pending"' in html
    assert f'href="{url(sn, "baseline_clinical")}"' in html
    assert f'href="{url(sn, "deviation", "new")}"' in html


def test_participant_page_and_form_screen_query_counts_do_not_grow_with_records(
    client, nurse_a, allocation, sn
):
    _add_aes(allocation, nurse_a, 2)
    client.force_login(nurse_a)
    page = reverse("cohort:participant_detail", args=[sn])
    screen = url(sn, "adverse_event", "2")
    client.get(page), client.get(screen)  # warm the per-process caches (code lists)
    few_page, few_screen = _queries(client, page), _queries(client, screen)
    _add_aes(allocation, nurse_a, 18)
    many_page, many_screen = _queries(client, page), _queries(client, screen)
    assert client.get(page).content.decode().count("Rugpijn") == 20
    assert many_page == few_page
    assert many_screen == few_screen
    print(
        f"participant page: {few_page} / {many_page} queries; form screen: {few_screen} / {many_screen}"
    )


def test_the_forms_panel_adds_one_query_to_the_participant_page(
    client, nurse_a, allocation, sn, monkeypatch
):
    """The panel reads the grid in one query (its other reads are cached definitions)."""
    from core import hooks

    _add_aes(allocation, nurse_a, 3)
    client.force_login(nurse_a)
    page = reverse("cohort:participant_detail", args=[sn])
    client.get(page)
    with_panel = _queries(client, page)
    monkeypatch.setattr(
        hooks.participant_panels,
        "_subscribers",
        [f for f in hooks.participant_panels._subscribers if f.__qualname__ != "forms_panel"],
    )
    without = _queries(client, page)
    assert 'data-testid="forms-panel"' not in client.get(page).content.decode()
    print(f"participant page: {with_panel} queries with the forms panel, {without} without")
    assert with_panel - without == 1


def test_the_worklist_has_overdue_and_draft_form_buckets(
    client, nurse_a, nurse_b, allocation, sn, ae
):
    FormExpectation.objects.filter(occurrence="week4").update(window_end=_day(1))
    client.force_login(nurse_a)
    overdue = client.get(reverse("crf:worklist") + "?bucket=overdue_forms")
    assert overdue.status_code == 200
    html = overdue.content.decode()
    assert f'href="{url(sn, "followup_clinical", "week4")}"' in html
    drafts = client.get(reverse("crf:worklist") + "?bucket=draft_forms").content.decode()
    assert f'href="{url(sn, "adverse_event", "1")}"' in drafts
    client.force_login(nurse_b)
    other = client.get(reverse("crf:worklist") + "?bucket=draft_forms").content.decode()
    assert sn not in other
    assert sn not in client.get(reverse("crf:worklist") + "?bucket=overdue_forms").content.decode()
