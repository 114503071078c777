"""Lists whose cost does not grow with the cohort: keyset pages (core.pagination) walk a
list once, in order, both ways, ties included; a cursor the list did not make is refused
(API 404) or ignored (HTML); the study-number search, answered by indexes, finds exactly
what a substring search finds."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohort import selectors
from cohort.models import Participant
from core.pagination import InvalidCursor, keyset_page

pytestmark = pytest.mark.django_db

LIST = "/api/v1/participants/"
SEARCH = "/api/v1/participants/search/"


def _newest_first(site):
    return list(
        Participant.objects.filter(site=site)
        .order_by("-registered_at", "-pk")
        .values_list("study_number", flat=True)
    )


@pytest.fixture
def seven(register, nurse_a, site_a):
    """Seven participants at site A; four share one registration moment (ties)."""
    made = [register(nurse_a, site_a) for _ in range(7)]
    moment = made[3].registered_at
    Participant.objects.filter(pk__in=[p.pk for p in made[1:5]]).update(registered_at=moment)
    return made


def test_api_pages_walk_the_list_once_in_order_and_back(api_client_for, nurse_a, site_a, seven):
    client = api_client_for(nurse_a)
    body = client.get(LIST, {"page_size": 3}).json()
    assert set(body) == {"next", "previous", "results"} and body["previous"] is None
    pages = [body]
    while pages[-1]["next"]:
        pages.append(client.get(pages[-1]["next"]).json())
    seen = [r["study_number"] for page in pages for r in page["results"]]
    assert seen == _newest_first(site_a) and len(seen) == 7
    assert [len(p["results"]) for p in pages] == [3, 3, 1]
    back = [pages[-1]]
    while back[-1]["previous"]:
        back.append(client.get(back[-1]["previous"]).json())
    assert [r["study_number"] for page in reversed(back) for r in page["results"]] == seen


@pytest.mark.parametrize(
    "cursor",
    ["not-base64!", "bm9uc2Vuc2U", "WyJuIixbIngiLDFdXQ", "WyJuIixbXV0", "WyJxIixbMSwyXV0"],
)
def test_api_refuses_a_cursor_it_did_not_make(api_client_for, nurse_a, seven, cursor):
    response = api_client_for(nurse_a).get(LIST, {"cursor": cursor})
    assert response.status_code == 404
    assert set(response.json()) >= {"detail"}


def test_post_search_pages_with_the_same_body(api_client_for, nurse_a, site_a, seven):
    client = api_client_for(nurse_a)
    first = client.post(SEARCH + "?page_size=4", {"status": "active"}, format="json").json()
    assert len(first["results"]) == 4 and "cursor=" in first["next"]
    second = client.post(first["next"], {"status": "active"}, format="json").json()
    seen = [r["study_number"] for r in first["results"] + second["results"]]
    assert seen == _newest_first(site_a) and second["next"] is None


def test_keyset_page_needs_one_direction_and_refuses_foreign_cursors(seven, site_a):
    qs = Participant.objects.filter(site=site_a)
    with pytest.raises(ValueError):
        keyset_page(qs.order_by("-registered_at", "pk"), cursor=None, size=2)
    page = keyset_page(qs.order_by("-registered_at", "-pk"), cursor=None, size=2)
    with pytest.raises(InvalidCursor):  # a cursor of a list in another order
        keyset_page(qs.order_by("-pk"), cursor=page.next_cursor, size=2)


# --- the study-number search -----------------------------------------------------------------
NUMBERS = ["PRE-00042", "PRE-00142", "PRE-04200", "PRE-100042", "PRE-12345", "PRE-99999"]


@pytest.fixture
def numbered(register, nurse_a, site_a):
    made = [register(nurse_a, site_a) for _ in NUMBERS]
    for p, number in zip(made, NUMBERS, strict=True):
        Participant.objects.filter(pk=p.pk).update(study_number=number)
    return made


def _substring_search(term: str) -> set[str]:
    """What the list found before the indexes: ``icontains`` plus the exact number."""
    from django.db.models import Q

    from cohort.rules import format_study_number, parse_study_number

    cond = Q(study_number__icontains=term)
    number = parse_study_number(term)
    if number:
        cond |= Q(study_number=format_study_number(number))
    return set(Participant.objects.filter(cond).values_list("study_number", flat=True))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(term=st.text(alphabet="PRE-pre0123456789xZ ", min_size=1, max_size=10))
def test_study_number_search_finds_what_a_substring_search_finds(numbered, nurse_a, term):
    term = term.strip()
    if not term:
        return
    found = set(
        selectors.participant_list(user=nurse_a, search=term).values_list("study_number", flat=True)
    )
    assert found == _substring_search(term[:40]), term


@pytest.mark.parametrize(
    "term", ["42", "0042", "PRE-0004", "e-1", "RE", "-", "PRE-100042", "7", "PRE-00000"]
)
def test_study_number_search_examples(numbered, nurse_a, term):
    found = set(
        selectors.participant_list(user=nurse_a, search=term).values_list("study_number", flat=True)
    )
    assert found == _substring_search(term)
