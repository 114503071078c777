"""Role x endpoint: who may read and write a site A participant through the API and the
screens. Refusals write nothing."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from cohort.models import ConsentRecord, Death, Identity, Participant, Withdrawal

pytestmark = pytest.mark.django_db

ROLES = [
    "nurse_a",
    "investigator_a",
    "nurse_b",
    "investigator_b",
    "monitor",
    "statistician",
    "administrator",
]
READ = {
    "nurse_a": 200,
    "investigator_a": 200,
    "nurse_b": 404,
    "investigator_b": 404,
    "monitor": 200,
    "statistician": 200,
    "administrator": 403,
}
WRITE = {
    "nurse_a": "ok",
    "investigator_a": "ok",
    "nurse_b": 404,
    "investigator_b": 404,
    "monitor": 403,
    "statistician": 403,
    "administrator": 403,
}


def _counts():
    return tuple(
        m.objects.count() for m in (Participant, Identity, ConsentRecord, Withdrawal, Death)
    )


@pytest.fixture
def world(
    participant_a,
    nurse_a,
    consented,
    nurse_b,
    investigator_a,
    investigator_b,
    monitor,
    statistician,
    administrator,
):
    records = consented(participant_a, nurse_a)
    return {"participant": participant_a, "record": records[0]}


def _endpoints(world, form_version):
    sn = world["participant"].study_number
    today = timezone.localdate().isoformat()
    base = f"/api/v1/participants/{sn}/"
    return {
        "detail": ("get", base, None),
        "consents": ("get", base + "consents/", None),
        "patch": ("patch", base, {"reason": "r", "referring_department": "neurosurgery"}),
        "consent": (
            "post",
            base + "consents/",
            {
                "element": "cohort",
                "answer": False,
                "given_on": today,
                "form_version": form_version.pk,
                "mode": "paper",
            },
        ),
        "correction": (
            "post",
            base + f"consents/{world['record'].pk}/correction/",
            {"reason": "r", "mode": "electronic"},
        ),
        "withdrawal": ("post", base + "withdrawals/", {"scope": "trial", "effective_on": today}),
        "death": ("post", base + "death/", {"died_on": today, "source": "family"}),
    }


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize(
    "endpoint", ["detail", "consents", "patch", "consent", "correction", "withdrawal", "death"]
)
def test_api_role_matrix(request, api_client_for, world, form_version, who, endpoint):
    user = request.getfixturevalue(who)
    method, path, body = _endpoints(world, form_version)[endpoint]
    before = _counts()
    resp = getattr(api_client_for(user), method)(path, body, format="json")
    expected = READ[who] if method == "get" else WRITE[who]
    if expected == "ok":
        assert resp.status_code in (200, 201), (who, endpoint, resp.content)
    else:
        assert resp.status_code == expected, (who, endpoint, resp.status_code)
        if method != "get":
            assert _counts() == before


@pytest.mark.parametrize("who", ROLES)
def test_api_list_role_matrix(request, api_client_for, world, who):
    resp = api_client_for(request.getfixturevalue(who)).get("/api/v1/participants/")
    if who == "administrator":
        assert resp.status_code == 403
        return
    numbers = [r["study_number"] for r in resp.json()["results"]]
    visible = who in ("nurse_a", "investigator_a", "monitor", "statistician")
    assert (world["participant"].study_number in numbers) is visible


HTML = {
    "nurse_a": 200,
    "investigator_a": 200,
    "nurse_b": 404,
    "investigator_b": 404,
    "monitor": 200,
    "statistician": 403,
    "administrator": 403,
}
HTML_FORMS = {
    "nurse_a": 200,
    "investigator_a": 200,
    "nurse_b": 404,
    "investigator_b": 404,
    "monitor": 403,
    "statistician": 403,
    "administrator": 403,
}


@pytest.mark.parametrize("who", ROLES)
def test_screen_role_matrix(request, world, who):
    client = Client()
    client.force_login(request.getfixturevalue(who))
    sn = world["participant"].study_number
    assert client.get(f"/cohort/{sn}/").status_code == HTML[who]
    before = _counts()
    for path in (
        "consent/",
        "withdrawal/",
        "death/",
        "identity/",
        f"consent/{world['record'].pk}/correct/",
    ):
        assert client.get(f"/cohort/{sn}/{path}").status_code == HTML_FORMS[who], path
        assert client.post(f"/cohort/{sn}/{path}", {}).status_code == HTML_FORMS[who], path
    assert _counts() == before
