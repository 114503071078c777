"""The participant search of the API keeps identifiers out of URLs (and so out of access
logs): GET ``?search=`` takes study numbers only; a hospital record number is searched
with ``POST /api/v1/participants/search/``."""

import pytest

from cohort.models import IdentityAccess

pytestmark = pytest.mark.django_db

LIST = "/api/v1/participants/"
SEARCH = "/api/v1/participants/search/"


def test_get_refuses_a_hospital_number_in_the_query_string(api_client_for, nurse_a, participant_a):
    hn = participant_a.identity.hospital_number
    response = api_client_for(nurse_a).get(LIST, {"search": hn})
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"detail", "errors"} and "search" in body["errors"]
    assert "POST" in body["errors"]["search"][0]
    assert not IdentityAccess.objects.exists()


def test_get_still_finds_study_numbers(api_client_for, nurse_a, participant_a):
    client = api_client_for(nurse_a)
    sn = participant_a.study_number
    for value in (sn, sn.lower(), str(int(sn.split("-")[1]))):
        listing = client.get(LIST, {"search": value}).json()
        assert [r["study_number"] for r in listing["results"]] == [sn], value


def test_get_digits_never_match_a_hospital_number(api_client_for, nurse_a, register, site_a):
    """Five digits pass the URL rule as a study-number fragment, so in a GET they must
    not match a hospital number that happens to be all digits; POST finds it."""
    target = register(nurse_a, site_a, hospital_number="98765")
    client = api_client_for(nurse_a)
    listing = client.get(LIST, {"search": "98765"}).json()
    assert target.study_number not in [r["study_number"] for r in listing["results"]]
    found = client.post(SEARCH, {"search": "98765"}, format="json").json()
    assert [r["study_number"] for r in found["results"]] == [target.study_number]


def test_post_search_finds_a_hospital_number_at_own_site_only(
    api_client_for, nurse_a, investigator_b, statistician, participant_a, participant_b
):
    hn = participant_a.identity.hospital_number
    found = api_client_for(nurse_a).post(SEARCH, {"search": hn.lower()}, format="json")
    assert found.status_code == 200, found.content
    body = found.json()
    assert len(body["results"]) == 1
    assert body["results"][0]["study_number"] == participant_a.study_number
    assert body["results"][0]["identity"]["hospital_number"] == hn
    assert IdentityAccess.objects.filter(user=nurse_a, participant=participant_a).count() == 1
    # another site's staff and the statistician do not find it by hospital number
    for user in (investigator_b, statistician):
        other = api_client_for(user).post(SEARCH, {"search": hn}, format="json")
        assert other.status_code == 200 and len(other.json()["results"]) == 0
    assert not IdentityAccess.objects.exclude(user=nurse_a).exists()


def test_post_search_filters_by_status_and_pages(api_client_for, nurse_a, participant_a):
    client = api_client_for(nurse_a)
    response = client.post(SEARCH + "?page_size=1", {"status": "active"}, format="json")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize(
    "body",
    [{"search": "x", "site": "site-b"}, {"status": "lost"}, {"search": "x" * 41}, ["HN1"]],
)
def test_post_search_refuses_bad_input(api_client_for, nurse_a, participant_a, body):
    response = api_client_for(nurse_a).post(SEARCH, body, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"detail", "errors"}
    assert not IdentityAccess.objects.exists()


def test_post_search_is_refused_to_roles_without_clinical_read(
    api_client_for, administrator, participant_a
):
    response = api_client_for(administrator).post(SEARCH, {"search": "x"}, format="json")
    assert response.status_code == 403
