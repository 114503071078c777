"""The queries API (issue 12): list with filters, raise, answer, close, re-open; each step
on the database and the audit trail; every route by role; refusals write nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crf import services
from crf.models import ClinicalRecord, DataQuery, QueryMessage
from tests.conftest import events

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a, arm="control")


@pytest.fixture
def record(allocation, nurse_a):
    return services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="admission", data={"icu": True}
    )


@pytest.fixture
def monitor(make_user, site_a):
    return make_user("data_manager", site_a, username="monitor_a")


def _counts() -> tuple[int, ...]:
    return (
        DataQuery.objects.count(),
        QueryMessage.objects.count(),
        events(DataQuery).count(),
        events(QueryMessage).count(),
        events(ClinicalRecord).count(),
    )


def _raise(client, on, **extra):
    body = {"record": on.pk, "item": "icu", "text": "ICU for two nights?"} | extra
    return client.post(f"{API}/queries/", body, format="json")


def test_raise_answer_close_reopen_through_the_api(api_client_for, record, monitor, nurse_a):
    reviewer, nurse = api_client_for(monitor), api_client_for(nurse_a)
    raised = _raise(reviewer, record, suggested_value=False)
    assert raised.status_code == 201, raised.content
    body = raised.json()
    pk = body["id"]
    assert (body["status"], body["origin"], body["item"], body["raised_by"]) == (
        "open",
        "manual",
        "icu",
        "monitor_a",
    )
    assert body["suggested_value"] is False and body["age_days"] == 0
    assert [m["action"] for m in body["messages"]] == ["raise"]
    query = DataQuery.objects.get(pk=pk)
    assert query.raised_by == monitor and events(DataQuery, pgh_obj_id=pk).count() == 1

    answered = nurse.post(
        f"{API}/queries/{pk}/answer/", {"text": "Yes, see the ICU letter"}, format="json"
    )
    assert answered.status_code == 200 and answered.json()["status"] == "answered"
    closed = reviewer.post(f"{API}/queries/{pk}/close/", {"text": "Thank you"}, format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    reopened = reviewer.post(
        f"{API}/queries/{pk}/reopen/", {"text": "Letter says one night"}, format="json"
    )
    assert reopened.status_code == 200 and reopened.json()["status"] == "open"
    assert [m["action"] for m in reopened.json()["messages"]] == [
        "raise",
        "answer",
        "close",
        "reopen",
    ]
    assert [m["by"] for m in reopened.json()["messages"]] == [
        "monitor_a",
        nurse_a.username,
        "monitor_a",
        "monitor_a",
    ]
    assert events(DataQuery, pgh_obj_id=pk).count() == 4
    # queries never change data
    record.refresh_from_db()
    assert record.data["icu"] is True and record.revision == 1


def test_each_role_does_only_its_steps_and_refusals_write_nothing(
    api_client_for, record, monitor, nurse_a, investigator_a
):
    pk = _raise(api_client_for(monitor), record).json()["id"]
    before = _counts()
    nurse, reviewer = api_client_for(nurse_a), api_client_for(monitor)
    assert nurse.post(f"{API}/queries/{pk}/close/", {}, format="json").status_code == 403
    assert (
        nurse.post(f"{API}/queries/{pk}/reopen/", {"text": "x"}, format="json").status_code == 403
    )
    assert (
        reviewer.post(f"{API}/queries/{pk}/answer/", {"text": "x"}, format="json").status_code
        == 403
    )
    assert _raise(nurse, record).status_code == 403
    # state refusals: 409 with the reason
    reopen_open = reviewer.post(f"{API}/queries/{pk}/reopen/", {"text": "again"}, format="json")
    assert reopen_open.status_code == 409
    assert reopen_open.json()["errors"]["reasons"] == ["not_closed"]
    # bad input: 400 by field
    empty = nurse.post(f"{API}/queries/{pk}/answer/", {"text": ""}, format="json")
    assert empty.status_code == 400 and "text" in empty.json()["errors"]
    long = nurse.post(f"{API}/queries/{pk}/answer/", {"text": "x" * 10_000}, format="json")
    assert long.status_code == 400 and "text" in long.json()["errors"]
    unknown_item = _raise(reviewer, record, item="no_such_item")
    assert unknown_item.status_code == 400 and "item" in unknown_item.json()["errors"]
    missing_record = _raise(reviewer, record, record=999_999)
    assert missing_record.status_code == 400 and "record" in missing_record.json()["errors"]
    assert _counts() == before
    # the investigator of the site answers too (data entry)
    answer = api_client_for(investigator_a).post(
        f"{API}/queries/{pk}/answer/", {"text": "ok"}, format="json"
    )
    assert answer.status_code == 200


def test_automatic_queries_are_listed_and_reopen_only_by_themselves(
    api_client_for, allocation, nurse_a, monitor
):
    entry = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="adverse_event", data={"grade": 5}
    )
    reviewer = api_client_for(monitor)
    (row,) = reviewer.get(f"{API}/queries/").json()["results"]
    assert (row["origin"], row["check_name"], row["record_id"]) == (
        "check",
        "fatal_grade_needs_a_death",
        entry.pk,
    )
    assert row["study_number"] == allocation.participant.study_number
    assert row["form_code"] == "adverse_event" and row["raised_by"] is None
    closed = reviewer.post(f"{API}/queries/{row['id']}/close/", {}, format="json")
    assert closed.status_code == 200
    again = reviewer.post(
        f"{API}/queries/{row['id']}/reopen/", {"text": "still wrong"}, format="json"
    )
    assert again.status_code == 409 and again.json()["errors"]["reasons"] == ["automatic"]


def test_the_list_filters_by_status_form_and_raiser(
    api_client_for, allocation, record, nurse_a, monitor, make_user, site_a
):
    other_monitor = make_user("data_manager", site_a, username="monitor_other")
    first = _raise(api_client_for(monitor), record).json()["id"]
    second = _raise(api_client_for(other_monitor), record, item="").json()["id"]
    services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="adverse_event", data={"grade": 5}
    )
    client = api_client_for(nurse_a)

    def ids(query: str = "") -> list[int]:
        response = client.get(f"{API}/queries/{query}")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert len(ids()) == 3
    assert ids("?form_code=admission") == [first, second]
    assert ids(f"?raised_by={other_monitor.pk}") == [second]
    api_client_for(monitor).post(f"{API}/queries/{first}/close/", {}, format="json")
    assert ids("?status=closed") == [first]
    assert first not in ids()  # unresolved by default
    assert client.get(f"{API}/queries/?status=nope").status_code == 400
    assert client.get(f"{API}/queries/?form_code=nope").status_code == 400
    assert client.get(f"{API}/queries/?status=").status_code == 400


ROUTES = [
    ("get", "queries/"),
    ("get", "queries/{pk}/"),
    ("post", "queries/"),
    ("post", "queries/{pk}/answer/"),
    ("post", "queries/{pk}/close/"),
    ("post", "queries/{pk}/reopen/"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_by_role(api_client_for, make_user, record, monitor, nurse_b, method, path):
    """Another site's staff: nothing of site A (404 on a query, an empty list, a refused
    raise); statisticians and administrators: 403 everywhere."""
    pk = _raise(api_client_for(monitor), record).json()["id"]
    before = _counts()
    other_site = {
        ("get", "queries/"): 200,
        ("get", "queries/{pk}/"): 404,
        ("post", "queries/"): 403,  # a nurse never raises
        ("post", "queries/{pk}/answer/"): 404,
        ("post", "queries/{pk}/close/"): 403,
        ("post", "queries/{pk}/reopen/"): 403,
    }[(method, path)]
    users = {
        "other_site_nurse": (nurse_b, other_site),
        "statistician": (make_user("statistician", None), 403),
        "administrator": (make_user("administrator", None), 403),
    }
    body = (
        {"record": record.pk, "item": "icu", "text": "?"} if path == "queries/" else {"text": "x"}
    )
    for name, (user, want) in users.items():
        client = api_client_for(user)
        response = getattr(client, method)(f"{API}/{path.format(pk=pk)}", body, format="json")
        assert response.status_code == want, (name, response.status_code)
        if name == "other_site_nurse" and (method, path) == ("get", "queries/"):
            assert response.json()["results"] == []
    assert _counts() == before
    from rest_framework.test import APIClient

    anonymous = getattr(APIClient(), method)(f"{API}/{path.format(pk=pk)}", body, format="json")
    assert anonymous.status_code in (401, 403)


def test_another_sites_monitor_cannot_close_or_see(
    api_client_for, record, monitor, make_user, site_b
):
    pk = _raise(api_client_for(monitor), record).json()["id"]
    elsewhere = api_client_for(make_user("data_manager", site_b))
    assert elsewhere.get(f"{API}/queries/{pk}/").status_code == 404
    assert elsewhere.post(f"{API}/queries/{pk}/close/", {}, format="json").status_code == 404
    assert _raise(elsewhere, record).status_code == 400
    assert DataQuery.objects.get(pk=pk).status == "open"


def test_query_count_of_the_list_does_not_grow_with_queries(api_client_for, record, monitor):
    reviewer = api_client_for(monitor)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert reviewer.get(f"{API}/queries/").status_code == 200
        return len(queries)

    for _ in range(2):
        _raise(reviewer, record)
    few = count()
    for _ in range(18):
        _raise(reviewer, record)
    assert count() == few <= 10
