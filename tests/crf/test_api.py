"""GET /api/v1/participants/{study_number}/questionnaires/: scoped, item answers for the
roles allowed, no free text (possibly identifying) for pseudonymised readers, refusals,
pinned query count."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from crf import services
from crf.models import Questionnaire
from tests.crf.conftest import full_answers

pytestmark = pytest.mark.django_db


def url(p):
    return reverse("api:participant-questionnaires", args=[p.study_number])


@pytest.fixture
def scheduled(blend, participant, nurse_a):
    services.schedule_anchor(
        participant=participant, trial=blend, day0=timezone.localdate(), is_actual=True
    )
    q = Questionnaire.objects.get(participant=participant, timepoint__code="week4")
    answers = {code: full_answers(code) for code in q.timepoint.instruments}
    answers["imcq"] = answers["imcq"] | {"aids": 1, "aids_which": "a walker from Jan"}
    services.questionnaire_enter(
        questionnaire=q,
        user=nurse_a,
        mode="phone",
        completed_on=timezone.localdate(),
        answers=answers,
        confirm_outside_window=timezone.localdate(),  # week 4 opens in three weeks
    )
    return participant


def test_site_nurse_gets_statuses_scores_and_items(api_client_for, nurse_a, scheduled):
    response = api_client_for(nurse_a).get(url(scheduled))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 9
    by_tp = {r["timepoint"]["code"]: r for r in body["results"]}
    week4 = by_tp["week4"]
    assert week4["status"] == "completed" and week4["mode"] == "phone"
    assert "PF2" in week4["scores"]["c15pal"]
    c15 = next(r for r in week4["responses"] if r["instrument"] == "c15pal")
    assert c15["scoring_tables"]["c15pal_conversion"]  # the table version the score used
    eq5d = next(r for r in week4["responses"] if r["instrument"] == "eq5d5l")
    assert eq5d["scoring_tables"]["eq5d5l_tariff"] and "index" in eq5d["scores"]
    imcq = next(r for r in week4["responses"] if r["instrument"] == "imcq")
    assert imcq["answers"]["aids_which"] == "a walker from Jan"
    assert by_tp["month12"]["status"] == "scheduled" and by_tp["month12"]["responses"] == []


def test_statistician_gets_items_but_no_free_text(api_client_for, statistician, scheduled):
    response = api_client_for(statistician).get(url(scheduled))
    assert response.status_code == 200
    week4 = next(r for r in response.json()["results"] if r["timepoint"]["code"] == "week4")
    imcq = next(r for r in week4["responses"] if r["instrument"] == "imcq")
    assert "aids_which" not in imcq["answers"] and imcq["answers"]["aids"] == 1
    assert "walker" not in response.content.decode()
    for key in ("email", "given_name", "family_name", "hospital_number", "entered_by"):
        assert key not in response.content.decode()


def test_other_site_is_404_admin_is_403_anonymous_is_401(
    api_client_for, nurse_b, administrator, scheduled, client
):
    assert api_client_for(nurse_b).get(url(scheduled)).status_code == 404
    assert api_client_for(administrator).get(url(scheduled)).status_code == 403
    assert client.get(url(scheduled)).status_code in (401, 403)
    missing = reverse("api:participant-questionnaires", args=["PRE-99999"])
    assert api_client_for(nurse_b).get(missing).status_code == 404


def test_query_count_does_not_grow_with_questionnaires(
    api_client_for, monitor, scheduled, django_assert_max_num_queries
):
    client = api_client_for(monitor)
    with django_assert_max_num_queries(8):
        assert client.get(url(scheduled)).status_code == 200


def test_endpoint_is_in_the_schema(api_client_for, monitor):
    response = api_client_for(monitor).get("/api/schema/?format=json")
    assert response.status_code == 200
    assert "/api/v1/participants/{study_number}/questionnaires/" in response.json()["paths"]
