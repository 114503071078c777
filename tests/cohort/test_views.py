"""Nurse screens: list, registration, participant page, consent, correction, withdrawal,
death, identity. Bad input shows a message next to the field and writes nothing."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from cohort.models import ConsentRecord, Death, Identity, IdentityAccess, Participant, Withdrawal
from core.selectors import audit_trail

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate
PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def client_for():
    def _client(user, language="en") -> Client:
        client = Client(HTTP_ACCEPT_LANGUAGE=language)
        client.force_login(user)
        return client

    return _client


def counts():
    return (
        Participant.objects.count(),
        Identity.objects.count(),
        ConsentRecord.objects.count(),
        Withdrawal.objects.count(),
        Death.objects.count(),
    )


def reg_post(site_obj, /, **overrides):
    data = {
        "site": site_obj.pk,
        "given_name": "Lotte",
        "family_name": "van der Berg",
        "date_of_birth": "1962-03-04",
        "hospital_number": "UMC-778899",
        "email": "lotte@example.invalid",
        "phone": "+31 30 250 0000",
        "preferred_language": "nl",
        "sex": "female",
        "primary_tumour": "lung",
        "bone_metastases_diagnosed_on": (TODAY() - timedelta(days=5)).isoformat(),
        "referring_department": "orthopaedic_surgery",
    }
    data.update(overrides)
    return data


# --- registration ----------------------------------------------------------------------------
def test_nurse_registers_and_lands_on_the_participant_page(client_for, nurse_a, site_a):
    client = client_for(nurse_a)
    assert client.get("/cohort/register/").status_code == 200
    resp = client.post("/cohort/register/", reg_post(site_a))
    p = Participant.objects.get()
    assert resp.status_code == 302 and resp["Location"] == f"/cohort/{p.study_number}/"
    assert p.identity.family_name == "van der Berg"
    assert audit_trail(model=Participant, pk=p.pk)[0].user_id == nurse_a.pk


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("family_name", ""),
        ("hospital_number", ""),
        ("date_of_birth", "2999-01-01"),
        ("bone_metastases_diagnosed_on", "2999-01-01"),
        ("given_name", "x" * 10_000),
        ("hospital_number", "8" * 10_000),
        ("family_name", "<script>alert(1)</script>"),
        ("site", "999999"),
        ("sex", "<b>"),
        ("email", "nope"),
    ],
)
def test_bad_registration_input_shows_a_field_error_and_writes_nothing(
    client_for, nurse_a, site_a, field, value
):
    resp = client_for(nurse_a).post("/cohort/register/", reg_post(site_a, **{field: value}))
    assert resp.status_code == 200
    html = resp.content.decode()
    assert f'data-field="{field}"' in html
    assert "<script>alert(1)</script>" not in html  # echoed input is escaped
    assert counts() == (0, 0, 0, 0, 0)


def test_registration_at_a_site_not_mine_is_refused(client_for, nurse_a, site_a, site_b):
    resp = client_for(nurse_a).post("/cohort/register/", reg_post(site_b))
    assert resp.status_code == 200 and 'data-field="site"' in resp.content.decode()
    assert counts() == (0, 0, 0, 0, 0)


def test_duplicate_hospital_number_message_names_the_existing_study_number(
    client_for, nurse_a, site_a
):
    client = client_for(nurse_a)
    client.post("/cohort/register/", reg_post(site_a))
    first = Participant.objects.get()
    resp = client.post("/cohort/register/", reg_post(site_a, given_name="Other"))
    html = resp.content.decode()
    assert 'data-field="hospital_number"' in html and first.study_number in html
    assert Participant.objects.count() == 1


@pytest.mark.parametrize("role", ["statistician", "administrator", "data_manager"])
def test_registration_screen_refused_to_non_data_entry_roles(client_for, make_user, role):
    assert client_for(make_user(role, None)).get("/cohort/register/").status_code == 403


# --- list ------------------------------------------------------------------------------------
def test_list_shows_own_site_with_names_and_logs_the_identity_access(
    client_for, nurse_a, participant_a, participant_b
):
    resp = client_for(nurse_a).get("/cohort/")
    html = resp.content.decode()
    assert participant_a.study_number in html and participant_b.study_number not in html
    assert participant_a.identity.hospital_number in html
    assert IdentityAccess.objects.filter(
        user=nurse_a, participant=participant_a, context="list"
    ).exists()


def test_monitor_list_has_no_identifying_data(client_for, monitor, participant_a, participant_b):
    html = client_for(monitor).get("/cohort/").content.decode()
    assert participant_a.study_number in html and participant_b.study_number in html
    assert participant_a.identity.hospital_number not in html
    assert participant_a.identity.family_name not in html
    assert not IdentityAccess.objects.exists()


@pytest.mark.parametrize("role", ["statistician", "administrator"])
def test_list_and_page_refused_to_statisticians_and_administrators(
    client_for, make_user, participant_a, role
):
    client = client_for(make_user(role, None))
    assert client.get("/cohort/").status_code == 403
    assert client.get(f"/cohort/{participant_a.study_number}/").status_code == 403


def test_search_by_study_number_and_hospital_number(
    client_for, nurse_a, nurse_b, register, site_a, site_b
):
    one = register(nurse_a, site_a, hospital_number="ZZ1111")
    two = register(nurse_a, site_a, hospital_number="ZZ2222")
    client = client_for(nurse_a)
    # a hospital number is POSTed and opens the participant; it never appears in a URL
    resp = client.post("/cohort/", {"q": "zz2222"})
    assert resp.status_code == 302 and resp["Location"] == f"/cohort/{two.study_number}/"
    # no match: answered in place, the number is not put in a redirect URL
    resp = client.post("/cohort/", {"q": "ZZ9999"})
    assert resp.status_code == 200 and "No participants found." in resp.content.decode()
    # another site's hospital number is not found
    other = register(nurse_b, site_b, hospital_number="YY7777")
    resp = client.post("/cohort/", {"q": "YY7777"})
    assert resp.status_code == 200 and other.study_number not in resp.content.decode()
    # a study number search becomes a bookmarkable GET
    resp = client.post("/cohort/", {"q": one.study_number, "status": "active"})
    assert resp.status_code == 302 and one.study_number in resp["Location"]
    html = client.get(resp["Location"]).content.decode()
    assert one.study_number in html and two.study_number not in html
    html = client.get("/cohort/", {"q": str(int(one.study_number[4:]))}).content.decode()
    assert one.study_number in html


def test_a_hospital_number_typed_into_the_address_is_never_searched(
    client_for, nurse_a, register, site_a
):
    """GET /cohort/?q=<hospital number> (issue: identifiers reached access logs) finds
    nothing and says to use the search box; digits of a study number never match a
    hospital number in a GET either. The POSTed search still finds it."""

    target = register(nurse_a, site_a, hospital_number="DEMO-1007")
    digits = register(nurse_a, site_a, hospital_number="98765")
    client = client_for(nurse_a)
    html = client.get("/cohort/", {"q": "DEMO-1007"}).content.decode()
    assert "Search by hospital record number with the search box." in html
    # nothing was searched: the unfiltered list is shown (both participants)
    assert target.study_number in html and digits.study_number in html
    html = client.get("/cohort/", {"q": "98765"}).content.decode()
    # five digits: a study-number fragment, never a hospital number
    assert digits.study_number not in html
    resp = client.post("/cohort/", {"q": "demo-1007"})
    assert resp.status_code == 302 and resp["Location"] == f"/cohort/{target.study_number}/"


def _link(html: str, rel: str) -> str | None:
    """The href of the pager's rel="next" / rel="prev" link (unescaped), else None."""
    import html as html_lib
    import re

    found = re.search(rf'rel="{rel}" href="([^"]+)"', html)
    return html_lib.unescape(found.group(1)) if found else None


def test_status_filter_and_pagination(client_for, nurse_a, register, site_a):
    """Next / previous pages (keyset, 25 a page) keep the filters; the count is shown."""
    made = [register(nurse_a, site_a) for _ in range(27)]
    from cohort import services

    services.death_record(by=nurse_a, participant=made[0], died_on=TODAY(), source="family")
    client = client_for(nurse_a)
    page1 = client.get("/cohort/").content.decode()
    assert made[-1].study_number in page1 and made[1].study_number not in page1
    assert "27 participants" in page1 and _link(page1, "prev") is None
    page2 = client.get("/cohort/" + _link(page1, "next")).content.decode()
    assert made[1].study_number in page2 and made[0].study_number in page2
    assert made[2].study_number not in page2 and _link(page2, "next") is None
    back = client.get("/cohort/" + _link(page2, "prev")).content.decode()
    assert made[2].study_number in back and made[-1].study_number in back
    assert _link(back, "prev") is None and made[1].study_number not in back
    deceased = client.get("/cohort/", {"status": "deceased"}).content.decode()
    assert made[0].study_number in deceased and made[5].study_number not in deceased
    assert "1 participant<" in deceased
    # a filter stays in the page links
    active = client.get("/cohort/", {"status": "active"}).content.decode()
    nxt = _link(active, "next")
    assert nxt.startswith("?status=active&cursor=")
    active2 = client.get("/cohort/" + nxt).content.decode()
    assert made[1].study_number in active2 and made[0].study_number not in active2
    # junk paging and filters never 500; a cursor the list did not make shows page one
    for junk in ("<x>", "bm9uc2Vuc2U", "WyJuIixbIngiLDFdXQ", "WyJuIixbXV0", "x" * 500):
        response = client.get("/cohort/", {"cursor": junk, "status": "nonsense", "q": "x" * 500})
        assert response.status_code == 200
    assert client.get("/cohort/", {"q": "PRE-00000"}).status_code == 200  # parses as 0
    first = client.get("/cohort/", {"cursor": "WyJuIixbIngiLDFdXQ"}).content.decode()
    assert made[-1].study_number in first


def test_list_shows_more_than_the_cap_without_counting_it(
    client_for, nurse_a, register, site_a, monkeypatch
):
    """Above the cap the list says "more than" instead of counting every participant."""
    from core import pagination

    monkeypatch.setattr(pagination, "COUNT_CAP", 3)
    for _ in range(4):
        register(nurse_a, site_a)
    html = client_for(nurse_a).get("/cohort/").content.decode()
    assert "More than 3 participants" in html


def test_list_page_uses_a_fixed_number_of_queries(
    client_for, nurse_a, register, site_a, consented, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cohort import services

    made = [register(nurse_a, site_a) for _ in range(30)]
    for p in made[::3]:
        consented(p, nurse_a)
        services.withdrawal_record(by=nurse_a, participant=p, scope="trial", effective_on=TODAY())
    for p in made[1::5]:
        services.death_record(by=nurse_a, participant=p, died_on=TODAY(), source="family")
    client = client_for(nurse_a)
    page1 = client.get("/cohort/").content.decode()
    with CaptureQueriesContext(connection) as few:  # page 2 holds 5 rows
        client.get("/cohort/" + _link(page1, "next"))
    with django_assert_num_queries(len(few.captured_queries)):  # page 1 holds 25 rows
        client.get("/cohort/")
    assert len(few.captured_queries) <= 13


# --- participant page ------------------------------------------------------------------------
def test_participant_page_shows_timeline_and_logs_identity_access(
    client_for, nurse_a, participant_a, consented
):
    consented(participant_a, nurse_a)
    resp = client_for(nurse_a).get(f"/cohort/{participant_a.study_number}/")
    html = resp.content.decode()
    assert resp.status_code == 200
    assert 'data-testid="timeline"' in html
    assert html.count("timeline-consent") == 4
    assert participant_a.identity.hospital_number in html
    access = IdentityAccess.objects.get(user=nurse_a, participant=participant_a, context="page")
    assert access.at is not None


def test_other_site_participant_page_and_forms_are_404(client_for, nurse_a, participant_b):
    client = client_for(nurse_a)
    sn = participant_b.study_number
    for path in (
        "",
        "consent/",
        "withdrawal/",
        "death/",
        "identity/",
        "consent/1/correct/",
        "withdrawal/1/correct/",
        "death/correct/",
    ):
        assert client.get(f"/cohort/{sn}/{path}").status_code == 404
        assert client.post(f"/cohort/{sn}/{path}", {}).status_code == 404


def test_monitor_sees_page_without_identity_and_cannot_open_forms(
    client_for, monitor, participant_a
):
    client = client_for(monitor)
    html = client.get(f"/cohort/{participant_a.study_number}/").content.decode()
    assert participant_a.identity.hospital_number not in html
    assert client.get(f"/cohort/{participant_a.study_number}/consent/").status_code == 403


def test_page_in_dutch_and_english(client_for, nurse_a, participant_a):
    en = client_for(nurse_a, "en").get(f"/cohort/{participant_a.study_number}/")
    assert en["Content-Language"] == "en" and "Timeline" in en.content.decode()
    nl = client_for(nurse_a, "nl").get(f"/cohort/{participant_a.study_number}/")
    assert nl["Content-Language"] == "nl"


def test_panels_come_from_the_hook_and_none_is_optional(
    client_for, nurse_a, participant_a, monkeypatch
):
    """The participant page shows what the participant_panels subscribers return; a
    subscriber with nothing to show returns None."""
    from datetime import datetime

    from core import hooks

    def no_panel(*, user, participant):
        return None

    def participant_panel(*, user, participant):
        return {
            "template": "cohort/_not_informed_banner.html",
            "context": {},
            "timeline": [
                {
                    "on": datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
                    "recorded_at": datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
                    "text": "Screened for TESTTRIAL",
                }
            ],
            "banner": None,
        }

    monkeypatch.setattr(hooks.participant_panels, "_subscribers", [no_panel, participant_panel])
    html = client_for(nurse_a).get(f"/cohort/{participant_a.study_number}/").content.decode()
    assert "Screened for TESTTRIAL" in html
    assert "participant-panel" in html


# --- consent form ----------------------------------------------------------------------------
def consent_post(version, /, **overrides):
    data = {
        "given_on": (TODAY() - timedelta(days=1)).isoformat(),
        "form_version": version.pk,
        "mode": "paper",
        "element_cohort": "yes",
        "element_proms": "yes",
        "element_randomisation_offer": "yes",
        "element_control_uninformed": "no",
    }
    data.update(overrides)
    return data


def test_consent_form_records_four_elements(client_for, nurse_a, participant_a, form_version):
    client = client_for(nurse_a)
    path = f"/cohort/{participant_a.study_number}/consent/"
    assert client.get(path).status_code == 200
    resp = client.post(path, consent_post(form_version))
    assert resp.status_code == 302
    answers = dict(ConsentRecord.objects.values_list("element", "answer"))
    assert answers == {
        "cohort": True,
        "proms": True,
        "randomisation_offer": True,
        "control_uninformed": False,
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"given_on": ""}, "given_on"),
        ({"given_on": "2999-01-01"}, "given_on"),
        ({"given_on": "2021-06-01"}, "form_version"),  # version effective from 2022
        ({"form_version": "99999"}, "form_version"),
        ({"mode": ""}, "mode"),
        ({"mode": "x" * 10_000}, "mode"),
        ({"element_cohort": "<script>"}, "element_cohort"),
    ],
)
def test_bad_consent_input_shows_field_errors_and_writes_nothing(
    client_for, nurse_a, participant_a, form_version, overrides, field
):
    resp = client_for(nurse_a).post(
        f"/cohort/{participant_a.study_number}/consent/", consent_post(form_version, **overrides)
    )
    assert resp.status_code == 200
    assert f'data-field="{field}"' in resp.content.decode()
    assert not ConsentRecord.objects.exists()


def test_consent_without_any_answer_is_refused(client_for, nurse_a, participant_a, form_version):
    data = consent_post(form_version)
    for key in list(data):
        if key.startswith("element_"):
            data[key] = ""
    resp = client_for(nurse_a).post(f"/cohort/{participant_a.study_number}/consent/", data)
    assert 'data-testid="form-errors"' in resp.content.decode()
    assert not ConsentRecord.objects.exists()


def test_consent_correction_form_needs_a_reason(client_for, nurse_a, participant_a, consented):
    record = consented(participant_a, nurse_a)[3]
    client = client_for(nurse_a)
    path = f"/cohort/{participant_a.study_number}/consent/{record.pk}/correct/"
    data = {
        "answer": "no",
        "given_on": record.given_on.isoformat(),
        "form_version": record.form_version_id,
        "mode": record.mode,
        "reason": "",
    }
    resp = client.post(path, data)
    assert 'data-field="reason"' in resp.content.decode()
    assert ConsentRecord.objects.count() == 4
    data["reason"] = "wrong box ticked"
    assert client.post(path, data).status_code == 302
    record.refresh_from_db()
    assert record.superseded_by.answer is False
    assert audit_trail(model=ConsentRecord, pk=record.pk)[-1].user_id == nurse_a.pk
    html = client.get(f"/cohort/{participant_a.study_number}/").content.decode()
    assert "timeline-struck" in html and "wrong box ticked" in html


# --- withdrawal, death, identity -------------------------------------------------------------
def test_withdrawal_form(client_for, nurse_a, participant_a, consented):
    consented(participant_a, nurse_a)
    client = client_for(nurse_a)
    path = f"/cohort/{participant_a.study_number}/withdrawal/"
    bad = client.post(path, {"scope": "questionnaires", "effective_on": "2999-01-01"})
    assert 'data-field="effective_on"' in bad.content.decode()
    bad = client.post(
        path, {"scope": "questionnaires", "effective_on": TODAY().isoformat(), "reason": "<b>x</b>"}
    )
    assert 'data-field="reason"' in bad.content.decode()
    bad = client.post(path, {"effective_on": TODAY().isoformat()})
    assert 'data-field="scope"' in bad.content.decode()
    assert not Withdrawal.objects.exists()
    ok = client.post(path, {"scope": "questionnaires", "effective_on": TODAY().isoformat()})
    assert ok.status_code == 302
    assert Withdrawal.objects.get().recorded_by == nurse_a


def test_death_form_needs_confirmation(client_for, nurse_a, participant_a):
    client = client_for(nurse_a)
    path = f"/cohort/{participant_a.study_number}/death/"
    resp = client.post(path, {"died_on": TODAY().isoformat(), "source": "family"})
    assert 'data-field="confirm"' in resp.content.decode()
    resp = client.post(path, {"died_on": "2999-01-01", "source": "family", "confirm": "on"})
    assert 'data-field="died_on"' in resp.content.decode()
    assert not Death.objects.exists()
    resp = client.post(path, {"died_on": TODAY().isoformat(), "source": "family", "confirm": "on"})
    assert resp.status_code == 302 and Death.objects.get().recorded_by == nurse_a


def test_identity_edit_needs_reason_and_is_audited(client_for, nurse_a, participant_a):
    client = client_for(nurse_a)
    path = f"/cohort/{participant_a.study_number}/identity/"
    identity = participant_a.identity
    data = {
        "given_name": identity.given_name,
        "family_name": "Pietersen",
        "date_of_birth": identity.date_of_birth.isoformat(),
        "hospital_number": identity.hospital_number,
        "email": identity.email,
        "phone": identity.phone,
        "preferred_language": identity.preferred_language,
        "reason": "",
    }
    assert 'data-field="reason"' in client.post(path, data).content.decode()
    data["reason"] = "married name"
    assert client.post(path, data).status_code == 302
    last = audit_trail(model=Identity, pk=identity.pk)[-1]
    assert last.changes == {"family_name": ("Jansen", "Pietersen")}
    assert last.reason == "married name" and last.user_id == nurse_a.pk


def test_not_informed_banner_on_every_cohort_screen_of_a_control_participant(
    client_for, nurse_a, participant_a, consented, monkeypatch
):
    """Control-arm participants carry the banner on the page and on every form."""
    from cohort import selectors

    record = consented(participant_a, nurse_a)[0]
    monkeypatch.setattr(selectors, "is_not_informed", lambda p: p.pk == participant_a.pk)
    client = client_for(nurse_a)
    sn = participant_a.study_number
    for path in (
        "",
        "consent/",
        "withdrawal/",
        "death/",
        "identity/",
        f"consent/{record.pk}/correct/",
    ):
        html = client.get(f"/cohort/{sn}/{path}").content.decode()
        assert "not-informed-banner" in html, path


def test_consent_form_suggests_the_version_in_effect_in_the_participants_language(
    client_for, nurse_a, register, site_a, form_version, old_form_version
):
    from cohort.services import consent_form_version_create

    english = consent_form_version_create(
        code="present-icf", version="3", language="en", effective_from=form_version.effective_from
    )
    p = register(nurse_a, site_a, preferred_language="en")
    form = client_for(nurse_a).get(f"/cohort/{p.study_number}/consent/").context["form"]
    assert form["form_version"].value() == english.pk
    p_nl = register(nurse_a, site_a, preferred_language="nl")
    form = client_for(nurse_a).get(f"/cohort/{p_nl.study_number}/consent/").context["form"]
    assert form["form_version"].value() == form_version.pk  # not the ended v2


def test_death_and_withdrawal_correction_screens(client_for, nurse_a, participant_a, consented):
    from cohort import services
    from tests.cohort.conftest import registered_days_ago

    registered_days_ago(participant_a, 30)
    consented(participant_a, nurse_a, on=TODAY() - timedelta(days=30))
    w = services.withdrawal_record(
        by=nurse_a, participant=participant_a, scope="trial", effective_on=TODAY()
    )
    services.death_record(by=nurse_a, participant=participant_a, died_on=TODAY(), source="family")
    client = client_for(nurse_a)
    sn = participant_a.study_number
    assert f"/cohort/{sn}/death/correct/" in client.get(f"/cohort/{sn}/").content.decode()
    resp = client.post(
        f"/cohort/{sn}/death/correct/",
        {"died_on": TODAY().isoformat(), "source": "general_practitioner", "reason": ""},
    )
    assert 'data-field="reason"' in resp.content.decode()
    resp = client.post(
        f"/cohort/{sn}/death/correct/",
        {"died_on": TODAY().isoformat(), "source": "general_practitioner", "reason": "GP letter"},
    )
    assert resp.status_code == 302
    assert Death.objects.get().source == "general_practitioner"
    path = f"/cohort/{sn}/withdrawal/{w.pk}/correct/"
    resp = client.post(path, {"effective_on": "2999-01-01", "reason": "x"})
    assert 'data-field="effective_on"' in resp.content.decode()
    resp = client.post(
        path, {"effective_on": (TODAY() - timedelta(days=1)).isoformat(), "reason": "typo"}
    )
    assert resp.status_code == 302
    w.refresh_from_db()
    assert w.effective_on == TODAY() - timedelta(days=1)


def test_a_failing_panel_provider_does_not_take_the_page_down_and_fails_safe(
    client_for, nurse_a, participant_a, monkeypatch
):
    from core import hooks

    def participant_panel(*, user, participant):
        raise RuntimeError("bug in another app")

    monkeypatch.setattr(hooks.participant_panels, "_subscribers", [participant_panel])
    resp = client_for(nurse_a).get(f"/cohort/{participant_a.study_number}/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "not-informed-banner" in html  # unknown trial status: never disclose
    assert "temporarily unavailable" in html
