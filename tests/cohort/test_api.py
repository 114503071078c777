"""Cohort API: scoping (other site = 404), pseudonymised statistician view, refused
read-only fields, field-level errors with nothing written, pinned query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cohort.models import ConsentRecord, Death, Identity, IdentityAccess, Participant, Withdrawal
from core.selectors import audit_trail

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate
IDENTIFYING_KEYS = {
    "identity",
    "given_name",
    "family_name",
    "date_of_birth",
    "hospital_number",
    "email",
    "phone",
    "preferred_language",
}


def url(study_number: str | None = None, tail: str = "") -> str:
    if study_number is None:
        return "/api/v1/participants/"
    return f"/api/v1/participants/{study_number}/{tail}"


def register_body(site_code="site-a", **identity_overrides) -> dict:
    identity = {
        "given_name": "Emma",
        "family_name": "de Vries",
        "date_of_birth": "1958-04-12",
        "hospital_number": "7654321",
        "email": "emma@example.invalid",
        "phone": "0612345678",
        "preferred_language": "en",
    }
    identity.update(identity_overrides)
    return {
        "site": site_code,
        "sex": "female",
        "primary_tumour": "breast",
        "referring_department": "radiation_oncology",
        "bone_metastases_diagnosed_on": (TODAY() - timedelta(days=10)).isoformat(),
        "identity": identity,
    }


def counts() -> tuple[int, ...]:
    return (
        Participant.objects.count(),
        Identity.objects.count(),
        ConsentRecord.objects.count(),
        Withdrawal.objects.count(),
        Death.objects.count(),
    )


# --- registration ----------------------------------------------------------------------------
def test_nurse_registers_through_the_api_and_is_audited_as_herself(api_client_for, nurse_a, site_a):
    resp = api_client_for(nurse_a).post(url(), register_body(), format="json")
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert body["study_number"].startswith("PRE-")
    assert body["identity"]["hospital_number"] == "7654321"
    assert body["year_of_birth"] == 1958 and body["status"] == "active"
    p = Participant.objects.get(study_number=body["study_number"])
    assert audit_trail(model=Participant, pk=p.pk)[0].user_id == nurse_a.pk
    assert IdentityAccess.objects.filter(user=nurse_a, participant=p, context="api").exists()


def test_duplicate_hospital_number_is_a_field_error_naming_the_study_number(
    api_client_for, nurse_a, site_a
):
    client = api_client_for(nurse_a)
    first = client.post(url(), register_body(), format="json").json()
    before = counts()
    resp = client.post(url(), register_body(given_name="Other"), format="json")
    assert resp.status_code == 400
    assert first["study_number"] in resp.json()["errors"]["identity"]["hospital_number"][0]
    assert counts() == before


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("sex"), "sex"),
        (lambda b: b["identity"].pop("family_name"), "identity"),
        (lambda b: b.update(site="nowhere"), "site"),
        (lambda b: b.update(site="site-b"), "site"),  # a site the nurse may not write
        (lambda b: b["identity"].update(date_of_birth="2999-01-01"), "identity"),
        (
            lambda b: b.update(bone_metastases_diagnosed_on="2999-01-01"),
            "bone_metastases_diagnosed_on",
        ),
        (lambda b: b["identity"].update(given_name="x" * 10_000), "identity"),
        (lambda b: b["identity"].update(hospital_number="9" * 10_000), "identity"),
        (lambda b: b["identity"].update(family_name="<img src=x onerror=alert(1)>"), "identity"),
        (lambda b: b.update(primary_tumour="<script>"), "primary_tumour"),
        (lambda b: b.update(study_number="PRE-99999"), "study_number"),
        (lambda b: b.update(registered_by=1), "registered_by"),
        (lambda b: b.update(registered_at="2020-01-01T00:00:00Z"), "registered_at"),
    ],
)
def test_bad_registration_input_gets_a_field_error_and_writes_nothing(
    api_client_for, nurse_a, site_a, site_b, mutate, field
):
    body = register_body()
    mutate(body)
    before = counts()
    resp = api_client_for(nurse_a).post(url(), body, format="json")
    assert resp.status_code == 400, resp.content
    assert field in resp.json()["errors"], resp.json()
    assert counts() == before


def test_registration_body_that_is_not_an_object_is_a_400(api_client_for, nurse_a, site_a):
    resp = api_client_for(nurse_a).post(url(), [1, 2], format="json")
    assert resp.status_code == 400
    assert Participant.objects.count() == 0


@pytest.mark.parametrize("role", ["statistician", "data_manager", "administrator"])
def test_only_site_data_entry_roles_may_register(api_client_for, make_user, site_a, role):
    user = make_user(role, None)
    resp = api_client_for(user).post(url(), register_body(), format="json")
    assert resp.status_code == 403
    assert Participant.objects.count() == 0


# --- scoping ---------------------------------------------------------------------------------
@pytest.fixture
def b_with_records(participant_b, nurse_b, consented):
    consented(participant_b, nurse_b)
    return participant_b


@pytest.mark.parametrize("who", ["nurse_a", "investigator_a"])
def test_site_a_staff_get_404_for_site_b_participants_on_every_endpoint(
    request, api_client_for, b_with_records, form_version, who
):
    client = api_client_for(request.getfixturevalue(who))
    sn = b_with_records.study_number
    record = ConsentRecord.objects.filter(participant=b_with_records).first()
    before = counts()
    calls = [
        ("get", url(sn), None),
        ("patch", url(sn), {"reason": "x", "sex": "male"}),
        ("get", url(sn, "consents/"), None),
        (
            "post",
            url(sn, "consents/"),
            {
                "element": "cohort",
                "answer": True,
                "given_on": TODAY().isoformat(),
                "form_version": form_version.pk,
                "mode": "paper",
            },
        ),
        ("post", url(sn, f"consents/{record.pk}/correction/"), {"reason": "x", "answer": False}),
        (
            "post",
            url(sn, "withdrawals/"),
            {"scope": "trial", "effective_on": TODAY().isoformat()},
        ),
        ("post", url(sn, "death/"), {"died_on": TODAY().isoformat(), "source": "family"}),
    ]
    for method, path, body in calls:
        resp = getattr(client, method)(path, body, format="json")
        assert resp.status_code == 404, (method, path, resp.status_code)
        assert sn not in resp.content.decode()
    listing = client.get(url(), {"search": sn}).json()
    assert len(listing["results"]) == 0
    assert counts() == before


def test_list_shows_only_own_site(api_client_for, nurse_a, participant_a, participant_b):
    body = api_client_for(nurse_a).get(url()).json()
    assert [r["study_number"] for r in body["results"]] == [participant_a.study_number]


def test_administrator_without_clinical_role_reads_no_clinical_data(
    api_client_for, administrator, participant_a
):
    client = api_client_for(administrator)
    assert client.get(url()).status_code == 403
    assert client.get(url(participant_a.study_number)).status_code in (403, 404)
    assert client.get(url(participant_a.study_number, "consents/")).status_code in (403, 404)


def test_monitor_reads_every_site_pseudonymised_but_cannot_write(
    api_client_for, monitor, participant_a, participant_b, form_version
):
    client = api_client_for(monitor)
    body = client.get(url()).json()
    assert len(body["results"]) == 2
    assert all(not (set(r) & IDENTIFYING_KEYS) for r in body["results"])
    resp = client.post(
        url(participant_a.study_number, "consents/"),
        {
            "element": "cohort",
            "answer": True,
            "given_on": TODAY().isoformat(),
            "form_version": form_version.pk,
            "mode": "paper",
        },
        format="json",
    )
    assert resp.status_code == 403
    assert not ConsentRecord.objects.exists()


# --- statisticians: no identifying field at all ------------------------------------------------
def test_statistician_never_receives_an_identifying_field(
    api_client_for, statistician, participant_a, participant_b, nurse_a, consented
):
    consented(participant_a, nurse_a)
    client = api_client_for(statistician)
    listing = client.get(url()).json()
    assert len(listing["results"]) == 2
    expected = {
        "study_number",
        "site",
        "sex",
        "year_of_birth",
        "primary_tumour",
        "bone_metastases_diagnosed_on",
        "referring_department",
        "registered_at",
        "status",
        "withdrawn_scopes",
        "died_on",
    }
    for row in listing["results"]:
        assert set(row) == expected
    detail = client.get(url(participant_a.study_number)).json()
    assert set(detail) == expected | {"consents", "withdrawals"}
    raw = client.get(url(participant_a.study_number)).content.decode()
    identity = participant_a.identity
    for value in (identity.family_name, identity.hospital_number, identity.email):
        assert value not in raw
    # a hospital number search finds nothing for a statistician
    search = client.post(
        "/api/v1/participants/search/", {"search": identity.hospital_number}, format="json"
    )
    assert len(search.json()["results"]) == 0
    assert not IdentityAccess.objects.filter(user=statistician).exists()


def test_statistician_cannot_write(api_client_for, statistician, participant_a):
    resp = api_client_for(statistician).post(
        url(participant_a.study_number, "death/"),
        {"died_on": TODAY().isoformat(), "source": "family"},
        format="json",
    )
    assert resp.status_code == 403
    assert not Death.objects.exists()


def test_search_by_hospital_number_only_within_own_site(
    api_client_for, nurse_a, participant_a, participant_b, investigator_b
):
    hn_a = participant_a.identity.hospital_number
    # by POST: a hospital number never goes in a URL (GET refuses it, test_api_search.py)
    found = api_client_for(nurse_a).post(
        "/api/v1/participants/search/", {"search": hn_a.lower()}, format="json"
    )
    assert len(found.json()["results"]) == 1
    # staff of site B do not find site A's participant by hospital number
    other = api_client_for(investigator_b).post(
        "/api/v1/participants/search/", {"search": hn_a}, format="json"
    )
    assert len(other.json()["results"]) == 0


# --- PATCH / POST cannot touch site, study number or audit fields ---------------------------------
@pytest.mark.parametrize(
    "field,value",
    [
        ("site", "site-b"),
        ("site_id", 999),
        ("study_number", "PRE-99999"),
        ("registered_at", "2020-01-01T00:00:00Z"),
        ("registered_by", 1),
        ("year_of_birth", 1900),
        ("id", 12345),
    ],
)
def test_patch_cannot_change_site_study_number_or_audit_fields(
    api_client_for, nurse_a, participant_a, site_b, field, value
):
    before = Participant.objects.values().get(pk=participant_a.pk)
    resp = api_client_for(nurse_a).patch(
        url(participant_a.study_number),
        {"reason": "try", "sex": "male", field: value},
        format="json",
    )
    assert resp.status_code == 400
    assert field in resp.json()["errors"]
    assert Participant.objects.values().get(pk=participant_a.pk) == before


def test_patch_changes_clinical_and_identity_with_reason(api_client_for, nurse_a, participant_a):
    client = api_client_for(nurse_a)
    resp = client.patch(
        url(participant_a.study_number),
        {"sex": "male", "identity": {"phone": "0687654321"}},
        format="json",
    )
    assert resp.status_code == 400 and "reason" in resp.json()["errors"]
    resp = client.patch(
        url(participant_a.study_number),
        {"reason": "entered wrongly", "sex": "male", "identity": {"phone": "0687654321"}},
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    participant_a.refresh_from_db()
    assert participant_a.sex == "male"
    assert Identity.objects.get(participant=participant_a).phone == "0687654321"
    last = audit_trail(model=Participant, pk=participant_a.pk)[-1]
    assert last.changes == {"sex": ("female", "male")}
    assert last.reason == "entered wrongly" and last.user_id == nurse_a.pk


@pytest.mark.parametrize(
    "field,value",
    [
        ("taken_by", 1),
        ("recorded_at", "2020-01-01T00:00:00Z"),
        ("superseded_by", 1),
        ("participant", 1),
        ("correction_reason", "sneaky"),
    ],
)
def test_consent_post_refuses_audit_and_ownership_fields(
    api_client_for, nurse_a, participant_a, form_version, field, value
):
    body = {
        "element": "cohort",
        "answer": True,
        "given_on": TODAY().isoformat(),
        "form_version": form_version.pk,
        "mode": "paper",
        field: value,
    }
    resp = api_client_for(nurse_a).post(
        url(participant_a.study_number, "consents/"), body, format="json"
    )
    assert resp.status_code == 400
    assert field in resp.json()["errors"]
    assert not ConsentRecord.objects.exists()


# --- consent, withdrawal, death ---------------------------------------------------------------
def test_consent_post_and_list(api_client_for, nurse_a, participant_a, form_version):
    client = api_client_for(nurse_a)
    resp = client.post(
        url(participant_a.study_number, "consents/"),
        {
            "element": "proms",
            "answer": True,
            "given_on": TODAY().isoformat(),
            "form_version": form_version.pk,
            "mode": "electronic",
        },
        format="json",
    )
    assert resp.status_code == 201, resp.json()
    record = ConsentRecord.objects.get()
    assert record.taken_by == nurse_a and record.element == "proms"
    listing = client.get(url(participant_a.study_number, "consents/")).json()
    assert [r["element"] for r in listing] == ["proms"]


def test_consent_not_effective_is_a_field_error(
    api_client_for, nurse_a, participant_a, form_version
):
    resp = api_client_for(nurse_a).post(
        url(participant_a.study_number, "consents/"),
        {
            "element": "cohort",
            "answer": True,
            "given_on": "2021-06-01",
            "form_version": form_version.pk,
            "mode": "paper",
        },
        format="json",
    )
    assert resp.status_code == 400
    assert "form_version" in resp.json()["errors"]
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("element"), "element"),
        (lambda b: b.update(element="everything"), "element"),
        (lambda b: b.update(given_on="2999-01-01"), "given_on"),
        (lambda b: b.update(given_on="yesterday"), "given_on"),
        (lambda b: b.update(form_version=999999), "form_version"),
        (lambda b: b.update(mode="<b>fax</b>"), "mode"),
        (lambda b: b.update(answer="perhaps"), "answer"),
        (lambda b: b.update(mode="x" * 10_000), "mode"),
    ],
)
def test_bad_consent_input_gets_a_field_error_and_writes_nothing(
    api_client_for, nurse_a, participant_a, form_version, mutate, field
):
    body = {
        "element": "cohort",
        "answer": True,
        "given_on": TODAY().isoformat(),
        "form_version": form_version.pk,
        "mode": "paper",
    }
    mutate(body)
    resp = api_client_for(nurse_a).post(
        url(participant_a.study_number, "consents/"), body, format="json"
    )
    assert resp.status_code == 400
    assert field in resp.json()["errors"], resp.json()
    assert not ConsentRecord.objects.exists()


def test_consent_correction_through_the_api(api_client_for, nurse_a, participant_a, consented):
    record = consented(participant_a, nurse_a)[0]
    client = api_client_for(nurse_a)
    path = url(participant_a.study_number, f"consents/{record.pk}/correction/")
    resp = client.post(path, {"answer": False}, format="json")
    assert resp.status_code == 400 and "reason" in resp.json()["errors"]
    resp = client.post(path, {"answer": False, "reason": "<script>x</script>"}, format="json")
    assert resp.status_code == 400 and "reason" in resp.json()["errors"]
    assert ConsentRecord.objects.count() == 4
    resp = client.post(path, {"answer": False, "reason": "wrong box"}, format="json")
    assert resp.status_code == 201
    record.refresh_from_db()
    assert record.superseded_by_id == resp.json()["id"]
    assert audit_trail(model=ConsentRecord, pk=record.pk)[-1].user_id == nurse_a.pk


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"effective_on": "today"}, "scope"),
        ({"scope": "everything", "effective_on": "today"}, "scope"),
        ({"scope": "trial"}, "effective_on"),
        ({"scope": "trial", "effective_on": "2999-01-01"}, "effective_on"),
        ({"scope": "trial", "effective_on": "today", "reason": "x" * 10_000}, "reason"),
        ({"scope": "trial", "effective_on": "today", "reason": "<a href=x>y</a>"}, "reason"),
        ({"scope": "trial", "effective_on": "today", "recorded_by": 1}, "recorded_by"),
    ],
)
def test_bad_withdrawal_input(api_client_for, nurse_a, participant_a, body, field):
    body = {k: (TODAY().isoformat() if v == "today" else v) for k, v in body.items()}
    resp = api_client_for(nurse_a).post(
        url(participant_a.study_number, "withdrawals/"), body, format="json"
    )
    assert resp.status_code == 400
    assert field in resp.json()["errors"], resp.json()
    assert not Withdrawal.objects.exists()


def test_withdrawal_and_death_through_the_api(api_client_for, nurse_a, participant_a, consented):
    consented(participant_a, nurse_a)
    client = api_client_for(nurse_a)
    sn = participant_a.study_number
    resp = client.post(
        url(sn, "withdrawals/"),
        {"scope": "questionnaires", "effective_on": TODAY().isoformat()},
        format="json",
    )
    assert resp.status_code == 201
    again = client.post(
        url(sn, "withdrawals/"),
        {"scope": "questionnaires", "effective_on": TODAY().isoformat()},
        format="json",
    )
    assert again.status_code == 400 and "scope" in again.json()["errors"]
    detail = client.get(url(sn)).json()
    assert detail["status"] == "withdrawn" and detail["withdrawn_scopes"] == ["questionnaires"]
    resp = client.post(
        url(sn, "death/"), {"died_on": TODAY().isoformat(), "source": "family"}, format="json"
    )
    assert resp.status_code == 201
    detail = client.get(url(sn)).json()
    assert detail["status"] == "deceased" and detail["died_on"] == TODAY().isoformat()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "family"}, "died_on"),
        ({"died_on": "2999-01-01", "source": "family"}, "died_on"),
        ({"died_on": "today"}, "source"),
        ({"died_on": "today", "source": "<b>x</b>"}, "source"),
        ({"died_on": "today", "source": "family", "participant": 3}, "participant"),
    ],
)
def test_bad_death_input(api_client_for, nurse_a, participant_a, body, field):
    body = {k: (TODAY().isoformat() if v == "today" else v) for k, v in body.items()}
    resp = api_client_for(nurse_a).post(
        url(participant_a.study_number, "death/"), body, format="json"
    )
    assert resp.status_code == 400
    assert field in resp.json()["errors"], resp.json()
    assert not Death.objects.exists()


def test_unknown_status_filter_is_a_400(api_client_for, nurse_a, participant_a):
    resp = api_client_for(nurse_a).get(url(), {"status": "<script>"})
    assert resp.status_code == 400 and "status" in resp.json()["errors"]


def test_status_filter(api_client_for, nurse_a, register, site_a, consented):
    alive = register(nurse_a, site_a)
    gone = register(nurse_a, site_a)
    left = register(nurse_a, site_a)
    from cohort import services

    consented(left, nurse_a)
    services.withdrawal_record(by=nurse_a, participant=left, scope="trial", effective_on=TODAY())
    services.death_record(by=nurse_a, participant=gone, died_on=TODAY(), source="family")
    client = api_client_for(nurse_a)

    def numbers(status):
        return {r["study_number"] for r in client.get(url(), {"status": status}).json()["results"]}

    assert numbers("active") == {alive.study_number}
    assert numbers("withdrawn") == {left.study_number}
    assert numbers("deceased") == {gone.study_number}


# --- fixed number of queries regardless of page size ------------------------------------------
def _many(register, nurse, site, consented, n):
    from cohort import services

    made = [register(nurse, site) for _ in range(n)]
    for p in made[::3]:
        consented(p, nurse)
        services.withdrawal_record(by=nurse, participant=p, scope="trial", effective_on=TODAY())
    for p in made[1::4]:
        services.death_record(by=nurse, participant=p, died_on=TODAY(), source="family")
    return made


@pytest.mark.parametrize("who", ["nurse_a", "statistician"])
def test_list_api_uses_a_fixed_number_of_queries(
    request, api_client_for, register, nurse_a, site_a, consented, django_assert_num_queries, who
):
    """Token lookup, roles, one page query (status included), identity-access log."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _many(register, nurse_a, site_a, consented, 24)
    client = api_client_for(request.getfixturevalue(who))
    client.get(url(), {"page_size": 2})  # warm up
    with CaptureQueriesContext(connection) as small:
        assert len(client.get(url(), {"page_size": 2}).json()["results"]) == 2
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(client.get(url(), {"page_size": 24}).json()["results"]) == 24
    assert len(small.captured_queries) <= 8


# --- OpenAPI ----------------------------------------------------------------------------------
def test_endpoints_are_in_the_openapi_schema(api_client_for, nurse_a):
    resp = api_client_for(nurse_a).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert resp.status_code == 200
    import json

    schema = json.loads(resp.content)
    paths = schema["paths"]
    for path in (
        "/api/v1/participants/",
        "/api/v1/participants/{study_number}/",
        "/api/v1/participants/{study_number}/consents/",
        "/api/v1/participants/{study_number}/withdrawals/",
        "/api/v1/participants/{study_number}/death/",
    ):
        assert path in paths, path
    assert set(paths["/api/v1/participants/"]) >= {"get", "post"}
    assert "PseudonymisedParticipantOutput" in json.dumps(
        schema
    ) or "StaffParticipantOutput" in json.dumps(schema)


def test_patch_identity_to_a_duplicate_hospital_number_is_refused_under_identity(
    api_client_for, nurse_a, site_a, register
):
    first = register(nurse_a, site_a, hospital_number="DUPA01")
    second = register(nurse_a, site_a, hospital_number="DUPA02")
    resp = api_client_for(nurse_a).patch(
        url(second.study_number),
        {"reason": "typo", "identity": {"hospital_number": "dupa01"}},
        format="json",
    )
    assert resp.status_code == 400
    assert first.study_number in resp.json()["errors"]["identity"]["hospital_number"][0]
    assert Identity.objects.get(participant=second).hospital_number == "DUPA02"
