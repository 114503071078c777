"""The REST API: shapes, idempotency (201 then 200 with the same body), 409 refusals with
reasons, field errors, role refusals, the OpenAPI schema and query-count pins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from randomization.models import Allocation, InterventionOffer, Screening
from tests.randomization.conftest import events

pytestmark = pytest.mark.django_db

BASE = "/api/v1/trials/BLEND"


def test_trial_list(api_client_for, nurse_a, blend):
    response = api_client_for(nurse_a).get("/api/v1/trials/")
    assert response.status_code == 200
    (trial,) = response.json()["results"]
    assert trial["code"] == "BLEND" and trial["target_size"] == 100
    assert {a["code"] for a in trial["arms"]} == {"intervention", "control"}


def test_screening_create_and_list(
    api_client_for, nurse_a, nurse_b, make_participant, site_a, eligible_answers
):
    participant = make_participant(site_a, primary_tumour="myeloma")
    client = api_client_for(nurse_a)
    answers = {k: v for k, v in eligible_answers.items() if k != "multiple_myeloma"}
    body = {
        "participant": participant.study_number,
        "screened_on": timezone.localdate().isoformat(),
        "answers": answers,
    }
    response = client.post(f"{BASE}/screenings/", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["verdict"] == "ineligible"
    assert data["reasons"] == ["exclusion_met:multiple_myeloma"]
    assert data["screened_by"] == "nurse_a"
    screening = Screening.objects.get(pk=data["id"])
    event = events(Screening, pgh_obj_id=screening.pk).select_related("pgh_context").get()
    assert event.pgh_context.metadata["user"] == nurse_a.pk
    listed = client.get(f"{BASE}/screenings/", {"participant": participant.study_number}).json()
    assert [s["id"] for s in listed["results"]] == [screening.pk]
    # Another site's nurse sees none of it.
    assert api_client_for(nurse_b).get(f"{BASE}/screenings/").json()["results"] == []


@pytest.mark.parametrize(
    "change,field",
    [
        ({"answers": {"multiple_myeloma": "maybe"}}, "answers"),
        ({"screened_on": "not a date"}, "screened_on"),
        ({"participant": "PRE-99999"}, "participant"),
        ({"drop": "fit_for_radiosurgery"}, "fit_for_radiosurgery"),
    ],
)
def test_screening_bad_input_is_a_field_error_and_writes_nothing(
    api_client_for, nurse_a, make_participant, site_a, eligible_answers, change, field
):
    participant = make_participant(site_a)
    body = {
        "participant": participant.study_number,
        "screened_on": timezone.localdate().isoformat(),
        "answers": dict(eligible_answers),
    }
    if "drop" in change:
        body["answers"].pop(change["drop"])
    elif "answers" in change:
        body["answers"].update(change["answers"])
    else:
        body.update(change)
    response = api_client_for(nurse_a).post(f"{BASE}/screenings/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert Screening.objects.count() == 0


def test_randomise_201_then_200_with_the_same_body(
    api_client_for, active_sequence, eligible_participant, nurse_a, investigator_a, site_a
):
    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    first = api_client_for(nurse_a).post(
        f"{BASE}/randomisations/", {"participant": participant.study_number}, format="json"
    )
    assert first.status_code == 201
    body = first.json()
    assert body["trial_number"] == "BLEND-001"
    assert body["arm"] in {"intervention", "control"}
    assert set(body) == {"trial_number", "participant", "arm", "randomised_at", "status"}
    again = api_client_for(investigator_a).post(
        f"{BASE}/randomisations/", {"participant": participant.study_number}, format="json"
    )
    assert again.status_code == 200 and again.json() == body
    assert Allocation.objects.count() == 1


def test_randomise_refusals_are_409_with_reasons(
    api_client_for, blend, make_participant, screen, nurse_a, site_a, active_sequence
):
    client = api_client_for(nurse_a)
    participant = make_participant(site_a)
    screen(nurse_a, participant)
    # No active sequence: nothing about arms in the body.
    response = client.post(
        f"{BASE}/randomisations/", {"participant": participant.study_number}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert body["errors"] == {"reasons": ["no_active_sequence"]}
    assert "intervention" not in response.content.decode().lower()
    assert "control" not in response.content.decode().lower()
    active_sequence()
    no_consent = make_participant(site_a, consents={"cohort": True})
    screen(nurse_a, no_consent)
    response = client.post(
        f"{BASE}/randomisations/", {"participant": no_consent.study_number}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["errors"]["reasons"] == [
        "consent_randomisation_offer_missing",
        "consent_control_uninformed_missing",
    ]
    ineligible = make_participant(site_a)
    screen(nurse_a, ineligible, multiple_myeloma="yes")
    response = client.post(
        f"{BASE}/randomisations/", {"participant": ineligible.study_number}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["errors"]["reasons"] == [
        "not_eligible",
        "exclusion_met:multiple_myeloma",
    ]
    assert Allocation.objects.count() == 0


@pytest.mark.parametrize(
    "who,status", [("monitor", 403), ("statistician", 403), ("administrator", 403)]
)
def test_randomise_refused_for_roles_without_data_entry(
    request, api_client_for, who, status, active_sequence, eligible_participant, nurse_a, site_a
):
    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    response = api_client_for(request.getfixturevalue(who)).post(
        f"{BASE}/randomisations/", {"participant": participant.study_number}, format="json"
    )
    assert response.status_code == status
    assert Allocation.objects.count() == 0


def test_randomise_someone_at_another_site_looks_like_an_unknown_participant(
    api_client_for, active_sequence, eligible_participant, nurse_a, nurse_b, site_a
):
    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    response = api_client_for(nurse_b).post(
        f"{BASE}/randomisations/", {"participant": participant.study_number}, format="json"
    )
    assert response.status_code == 400 and "participant" in response.json()["errors"]
    assert Allocation.objects.count() == 0


def test_anonymous_is_refused(client, blend):
    for url in ("/api/v1/trials/", f"{BASE}/randomisations/", f"{BASE}/screenings/"):
        assert client.get(url).status_code == 401


def test_administrator_reads_no_trial_data(api_client_for, administrator, blend):
    client = api_client_for(administrator)
    assert client.get(f"{BASE}/randomisations/").status_code == 403
    assert client.get(f"{BASE}/screenings/").status_code == 403


def test_detail_decision_and_treatment_start(
    api_client_for, active_sequence, randomised, nurse_a, nurse_b, site_a, trial_form, monkeypatch
):
    from core import hooks

    anchored = []
    monkeypatch.setattr(hooks.treatment_started, "_subscribers", [lambda **kw: anchored.append(kw)])
    active_sequence()
    allocation = randomised(site_a, nurse_a, arm="intervention")
    client = api_client_for(nurse_a)
    url = f"{BASE}/randomisations/{allocation.trial_number}/"
    detail = client.get(url).json()
    assert detail["arm"] == "intervention" and detail["offer"] is None
    assert api_client_for(nurse_b).get(url).status_code == 404
    today = timezone.localdate().isoformat()
    bad = client.post(
        url + "decision/",
        {"offered_on": today, "decision": "accepted", "decided_on": today},
        format="json",
    )
    assert bad.status_code == 400 and "consent_form_version" in bad.json()["errors"]
    ok = client.post(
        url + "decision/",
        {
            "offered_on": today,
            "decision": "accepted",
            "decided_on": today,
            "consent_form_version": trial_form.pk,
            "consent_date": today,
        },
        format="json",
    )
    assert ok.status_code == 200, ok.json()
    assert ok.json()["decision"] == "accepted"
    assert InterventionOffer.objects.get().consent_form_version == trial_form
    planned = (timezone.localdate() + timedelta(days=2)).isoformat()
    put = client.put(url + "treatment-start/", {"planned": planned}, format="json")
    assert put.status_code == 200 and put.json()["treatment_start_planned"] == planned
    assert anchored[-1]["is_actual"] is False
    future_actual = client.put(url + "treatment-start/", {"actual": planned}, format="json")
    assert future_actual.status_code == 400 and "actual" in future_actual.json()["errors"]


def test_decision_for_a_control_is_409(
    api_client_for, active_sequence, randomised, nurse_a, site_a
):
    active_sequence()
    allocation = randomised(site_a, nurse_a, arm="control")
    today = timezone.localdate().isoformat()
    response = api_client_for(nurse_a).post(
        f"{BASE}/randomisations/{allocation.trial_number}/decision/",
        {"offered_on": today, "decision": "pending"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["errors"]["reasons"] == ["not_intervention_arm"]


def test_list_query_count_does_not_grow_with_allocations(
    api_client_for, active_sequence, randomised, nurse_a, site_a, django_assert_max_num_queries
):
    active_sequence()
    client = api_client_for(nurse_a)
    randomised(site_a, nurse_a)
    with django_assert_max_num_queries(8):
        small = client.get(f"{BASE}/randomisations/")
    for _ in range(8):
        randomised(site_a, nurse_a)
    with django_assert_max_num_queries(8):
        large = client.get(f"{BASE}/randomisations/")
    assert len(large.json()["results"]) >= 9 > len(small.json()["results"])
    with django_assert_max_num_queries(9):  # + one for the answers of the page
        client.get(f"{BASE}/screenings/")


def test_openapi_schema_lists_every_endpoint(api_client_for, nurse_a):
    response = api_client_for(nurse_a).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path, methods in {
        "/api/v1/trials/": {"get"},
        "/api/v1/trials/{code}/screenings/": {"get", "post"},
        "/api/v1/trials/{code}/randomisations/": {"get", "post"},
        "/api/v1/trials/{code}/randomisations/{trial_number}/": {"get"},
        "/api/v1/trials/{code}/randomisations/{trial_number}/decision/": {"post"},
        "/api/v1/trials/{code}/randomisations/{trial_number}/treatment-start/": {"put"},
    }.items():
        assert methods <= set(paths[path]), path
    post = paths["/api/v1/trials/{code}/randomisations/"]["post"]
    assert {"200", "201", "409"} <= set(post["responses"])


@pytest.mark.parametrize(
    "who,status",
    [("monitor", 403), ("statistician", 403), ("administrator", 403), ("nurse_b", 404)],
)
def test_decision_and_treatment_start_refused_by_role_and_site(
    request, api_client_for, who, status, active_sequence, randomised, nurse_a, site_a
):
    active_sequence()
    allocation = randomised(site_a, nurse_a, arm="intervention")
    client = api_client_for(request.getfixturevalue(who))
    url = f"{BASE}/randomisations/{allocation.trial_number}/"
    today = timezone.localdate().isoformat()
    assert (
        client.post(
            url + "decision/", {"offered_on": today, "decision": "pending"}, format="json"
        ).status_code
        == status
    )
    assert (
        client.put(url + "treatment-start/", {"planned": today}, format="json").status_code
        == status
    )
    allocation.refresh_from_db()
    assert allocation.treatment_start_planned is None
    assert not InterventionOffer.objects.exists()


def test_screening_api_marks_derived_answers_and_refuses_a_contradiction(
    api_client_for, nurse_a, make_participant, site_a, eligible_answers
):
    from datetime import date

    participant = make_participant(site_a, date_of_birth=date(2010, 1, 1))
    client = api_client_for(nurse_a)
    body = {
        "participant": participant.study_number,
        "screened_on": timezone.localdate().isoformat(),
        "answers": eligible_answers,  # "age over 18: yes" for a 16-year-old
    }
    response = client.post(f"{BASE}/screenings/", body, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "Date of birth 2010-01-01" in response.json()["errors"]["age_over_18"][0]
    assert Screening.objects.count() == 0
    body["answers"] = {k: v for k, v in eligible_answers.items() if k != "age_over_18"}
    response = client.post(f"{BASE}/screenings/", body, format="json")
    assert response.status_code == 201
    answers = {a["criterion"]: a for a in response.json()["answers"]}
    assert (
        answers["age_over_18"]["answer"] == "no" and answers["age_over_18"]["source"] == "derived"
    )
    assert answers["age_over_18"]["basis"]["age"] == 16
    assert answers["fit_for_radiosurgery"]["source"] == "entered"
    assert response.json()["reasons"] == ["inclusion_not_met:age_over_18"]
