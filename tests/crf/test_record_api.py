"""The clinical records API (crf/record_apis.py) through real knox tokens: every route by
every role, bad input per item kind (400, field errors by item, nothing written), If-Match
concurrency (428 without, 412 when stale, the first save intact), reason for change
audited per item, pseudonymised reading, query counts that do not grow with records."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.selectors import audit_trail
from crf import services
from crf.models import ClinicalRecord
from tests.conftest import events
from tests.crf.test_records import BAD

pytestmark = pytest.mark.django_db

API = "/api/v1"


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


def _counts():
    return ClinicalRecord.objects.count(), events(ClinicalRecord).count()


def test_nurse_creates_reads_and_changes_a_record(api_client_for, nurse_a, sn, allocation):
    client = api_client_for(nurse_a)
    created = client.post(
        f"{API}/participants/{sn}/forms/admission/records/",
        {"data": {"icu": False}},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "draft" and body["occurrence"] == "1" and body["revision"] == 1
    assert body["definition"] == {"code": "admission", "version": "2026.2"}
    assert created["ETag"] == '"1"' and created["Location"].endswith(f"/records/{body['id']}/")
    url = created["Location"]
    got = client.get(url)
    assert got.status_code == 200 and got["ETag"] == '"1"' and got.json()["data"] == {"icu": False}
    changed = client.patch(url, {"data": {"icu": True}}, format="json", HTTP_IF_MATCH='"1"')
    assert changed.status_code == 200, changed.json()
    assert changed["ETag"] == '"2"'
    record = ClinicalRecord.objects.get(pk=body["id"])
    assert record.data == {"icu": True} and record.updated_by == nurse_a
    trail = audit_trail(model=ClinicalRecord, pk=record.pk)
    assert trail[-1].user_id == nurse_a.pk and trail[-1].changes["data.icu"] == (False, True)


def test_the_forms_list_shows_expected_forms_with_status(api_client_for, nurse_a, sn, ae):
    response = api_client_for(nurse_a).get(f"{API}/participants/{sn}/forms/")
    assert response.status_code == 200
    body = response.json()
    assert body["arm"] == "intervention"
    rows = {(r["form_code"], r["occurrence"]): r for r in body["results"]}
    assert rows[("baseline_clinical", "1")]["status"] == "not_started"
    assert rows[("sbrt_delivery", "1")]["required"] is True
    assert rows[("rt_after_surgery", "1")]["status"] == "not_applicable"  # control arm form
    logged = rows[("adverse_event", "1")]
    assert logged["status"] == "draft" and logged["record_id"] == ae.pk and logged["revision"] == 1
    assert rows[("adverse_event", None)]["required"] is False  # "add another"
    title = rows[("baseline_clinical", "1")]["title"]
    assert set(title) == {"nl", "en"} and all(title.values())


@pytest.mark.parametrize(("form_code", "data", "complete", "item"), BAD)
def test_bad_input_is_a_400_by_item_and_writes_nothing(
    api_client_for, nurse_a, sn, form_code, data, complete, item
):
    before = _counts()
    response = api_client_for(nurse_a).post(
        f"{API}/participants/{sn}/forms/{form_code}/records/",
        {"data": data, "complete": complete},
        format="json",
    )
    assert response.status_code == 400, response.json()
    assert item in response.json()["errors"], response.json()
    assert _counts() == before


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("forms/admission/records/", {"data": "not an object"}, "data"),
        ("forms/admission/records/", {}, "data"),
        ("forms/followup_clinical/records/", {"data": {}, "occurrence": "week5"}, "occurrence"),
        ("forms/admission/records/", {"data": {}, "complete": "perhaps"}, "complete"),
    ],
)
def test_malformed_bodies_are_400(api_client_for, nurse_a, sn, path, body, field):
    before = _counts()
    response = api_client_for(nurse_a).post(f"{API}/participants/{sn}/{path}", body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"], response.json()
    assert _counts() == before


def test_an_unknown_form_is_404(api_client_for, nurse_a, sn):
    client = api_client_for(nurse_a)
    assert client.get(f"{API}/participants/{sn}/forms/c15pal/records/").status_code == 404
    response = client.post(
        f"{API}/participants/{sn}/forms/nonsense/records/", {"data": {}}, format="json"
    )
    assert response.status_code == 404


def test_if_match_is_required_and_a_stale_one_is_412_naming_who(
    api_client_for, nurse_a, make_user, site_a, sn, ae
):
    other = make_user("nurse", site_a, username="second_nurse")
    url = f"{API}/participants/{sn}/forms/adverse_event/records/{ae.pk}/"
    first, second = api_client_for(nurse_a), api_client_for(other)
    assert first.get(url)["ETag"] == second.get(url)["ETag"] == '"1"'
    missing = first.patch(url, {"data": {"grade": 3}}, format="json")
    assert missing.status_code == 428
    ok = first.patch(url, {"data": {"grade": 3}}, format="json", HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200
    before = _counts()
    stale = second.patch(url, {"data": {"grade": 1}}, format="json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412
    body = stale.json()
    assert body["errors"]["changed_by"] == ["nurse_a"] and body["errors"]["revision"] == ["2"]
    assert "nurse_a" in body["detail"]
    assert _counts() == before
    assert ClinicalRecord.objects.get(pk=ae.pk).data["grade"] == 3


def test_a_completed_record_needs_a_reason_audited_per_item(api_client_for, nurse_a, sn):
    client = api_client_for(nurse_a)
    created = client.post(
        f"{API}/participants/{sn}/forms/end_of_study/records/",
        {"data": {"ended_on": "2026-11-01", "reason": "completed"}, "complete": True},
        format="json",
    )
    assert created.status_code == 201, created.json()
    url = created["Location"]
    before = _counts()
    refused = client.patch(
        url, {"data": {"ended_on": "2026-10-31"}}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert refused.status_code == 400 and "reason" in refused.json()["errors"]
    assert _counts() == before
    changed = client.patch(
        url,
        {"data": {"ended_on": "2026-10-31"}, "reason": "source: last visit 31 Oct"},
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    assert changed.status_code == 200
    last = audit_trail(model=ClinicalRecord, pk=created.json()["id"])[-1]
    assert last.changes["data.ended_on"] == ("2026-11-01", "2026-10-31")
    assert last.reason == "source: last visit 31 Oct" and last.user_id == nurse_a.pk


def test_void_and_not_done(api_client_for, nurse_a, sn, ae):
    client = api_client_for(nurse_a)
    url = f"{API}/participants/{sn}/forms/adverse_event/records/{ae.pk}/void/"
    assert client.post(url, {"reason": "wrong patient"}, format="json").status_code == 428
    voided = client.post(url, {"reason": "wrong patient"}, format="json", HTTP_IF_MATCH='"1"')
    assert voided.status_code == 200 and voided.json()["status"] == "voided"
    assert ClinicalRecord.objects.filter(pk=ae.pk).exists()
    not_done = client.post(
        f"{API}/participants/{sn}/forms/followup_clinical/not-done/",
        {"occurrence": "week4", "reason": "visit missed"},
        format="json",
    )
    assert not_done.status_code == 201 and not_done.json()["status"] == "not_done"


def test_a_statistician_reads_pseudonymised_and_writes_nothing(api_client_for, make_user, sn, ae):
    statistician = make_user("statistician", None)
    client = api_client_for(statistician)
    url = f"{API}/participants/{sn}/forms/adverse_event/records/"
    listed = client.get(url)
    assert listed.status_code == 200
    (row,) = listed.json()["results"]
    assert row["data"]["grade"] == 2 and row["data"]["description"] is None
    assert client.get(f"{url}{ae.pk}/").json()["data"]["description"] is None
    before = _counts()
    assert client.post(url, {"data": {}}, format="json").status_code == 403
    assert (
        client.patch(
            f"{url}{ae.pk}/", {"data": {"grade": 3}}, format="json", HTTP_IF_MATCH='"1"'
        ).status_code
        == 403
    )
    assert _counts() == before
    # the site's own staff read the free text
    assert ClinicalRecord.objects.get(pk=ae.pk).data["description"].startswith("Pain flare")


ROUTES = [
    ("get", "forms/"),
    ("get", "forms/adverse_event/records/"),
    ("post", "forms/adverse_event/records/"),
    ("get", "forms/adverse_event/records/{pk}/"),
    ("patch", "forms/adverse_event/records/{pk}/"),
    ("post", "forms/adverse_event/records/{pk}/void/"),
    ("post", "forms/followup_clinical/not-done/"),
]
BODIES = {
    "post": {"data": {}, "reason": "x", "occurrence": "week4"},
    "patch": {"data": {"grade": 3}},
}


def _call(client, method, sn, path, pk):
    url = f"{API}/participants/{sn}/{path.format(pk=pk)}"
    return getattr(client, method)(url, BODIES.get(method), format="json", HTTP_IF_MATCH='"1"')


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_by_role(api_client_for, make_user, site_a, nurse_b, sn, ae, method, path):
    """Another site's nurse: 404 everywhere; monitor and investigator read, only data entry
    writes (the investigator is data entry); statistician reads; administrator nothing."""
    writes = method != "get"
    before = _counts()
    expected = {
        "other_site_nurse": 404,
        "monitor": 403 if writes else 200,
        "statistician": 403 if writes else 200,
        "administrator": 403,
    }
    users = {
        "other_site_nurse": nurse_b,
        "monitor": make_user("data_manager", site_a),
        "statistician": make_user("statistician", None),
        "administrator": make_user("administrator", None),
    }
    for name, user in users.items():
        response = _call(api_client_for(user), method, sn, path, ae.pk)
        assert response.status_code == expected[name], (name, response.status_code)
    assert _counts() == before
    from rest_framework.test import APIClient

    assert _call(APIClient(), method, sn, path, ae.pk).status_code in (401, 403)


def test_form_definitions_are_listed_with_their_content(api_client_for, nurse_a, make_user):
    client = api_client_for(nurse_a)
    listed = client.get(f"{API}/form-definitions/")
    assert listed.status_code == 200
    codes = {(d["code"], d["version"]) for d in listed.json()}
    from crf import instruments

    shipped = {
        (code, instruments.load(code).version)
        for kind in ("questionnaire", "clinical")
        for code in instruments.all_codes(kind)
    }
    assert shipped <= codes and len(shipped) == 16
    one = client.get(f"{API}/form-definitions/baseline_clinical/2026.2/")
    assert one.status_code == 200 and one.json()["content"]["code"] == "baseline_clinical"
    assert client.get(f"{API}/form-definitions/baseline_clinical/0.0/").status_code == 404
    admin = api_client_for(make_user("administrator", None))
    assert admin.get(f"{API}/form-definitions/").status_code == 403


@pytest.mark.parametrize("path", ["forms/", "forms/adverse_event/records/"])
def test_query_counts_do_not_grow_with_records(api_client_for, nurse_a, allocation, sn, path):
    client = api_client_for(nurse_a)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"{API}/participants/{sn}/{path}").status_code == 200
        return len(queries)

    for _ in range(2):
        services.clinical_record_create(
            user=nurse_a, allocation=allocation, form_code="adverse_event", data={}
        )
    few = count()
    for _ in range(18):
        services.clinical_record_create(
            user=nurse_a, allocation=allocation, form_code="adverse_event", data={}
        )
    assert count() == few <= 12
