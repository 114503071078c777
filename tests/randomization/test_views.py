"""Screens: the nurse flow through the views, refusals by role, query-count pins."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from randomization.models import (
    Allocation,
    ControlDisclosure,
    InterventionOffer,
    Screening,
    Sequence,
)
from tests import factories

pytestmark = pytest.mark.django_db


def _screening_post(eligible_answers, **overrides):
    data = {"screened_on": timezone.localdate().isoformat()}
    data.update({f"c_{k}": v for k, v in {**eligible_answers, **overrides}.items()})
    return data


def test_nurse_screens_randomises_and_records_the_decision(
    client, active_sequence, make_participant, eligible_answers, nurse_a, site_a, trial_form
):
    active_sequence()
    participant = make_participant(site_a)
    client.force_login(nurse_a)
    url = reverse("randomization:screening_create", args=["BLEND", participant.study_number])
    assert client.get(url).status_code == 200
    # Live verdict (htmx): writes nothing.
    verdict = client.post(
        reverse("randomization:screening_verdict", args=["BLEND", participant.study_number]),
        _screening_post(eligible_answers, interfering_medication="yes"),
        HTTP_HX_REQUEST="true",
    )
    assert verdict.status_code == 200
    assert b"verdict-ineligible" in verdict.content and b"Bevacizumab" in verdict.content
    assert Screening.objects.count() == 0
    response = client.post(url, _screening_post(eligible_answers))
    randomise_url = reverse("randomization:randomise", args=["BLEND", participant.study_number])
    assert response.status_code == 302 and response["Location"] == randomise_url
    page = client.get(randomise_url)
    assert b"eligibility-summary" in page.content
    # Without the confirmation tick nothing happens.
    assert client.post(randomise_url, {}).status_code == 200
    assert Allocation.objects.count() == 0
    response = client.post(randomise_url, {"confirm": "on"})
    allocation = Allocation.objects.get()
    assert response["Location"] == reverse(
        "randomization:allocation_detail", args=["BLEND", allocation.trial_number]
    )
    # A double submit goes to the same allocation.
    again = client.post(randomise_url, {"confirm": "on"})
    assert again["Location"] == response["Location"] and Allocation.objects.count() == 1
    detail = client.get(response["Location"])
    assert allocation.arm.name.encode() in detail.content
    if allocation.arm.is_intervention:
        today = timezone.localdate().isoformat()
        r = client.post(
            reverse("randomization:offer_decision", args=["BLEND", allocation.trial_number]),
            {"offered_on": today, "decision": "refused", "decided_on": today, "refusal_reason": ""},
        )
        assert r.status_code == 200 and b"invalid-feedback" in r.content
        r = client.post(
            reverse("randomization:offer_decision", args=["BLEND", allocation.trial_number]),
            {
                "offered_on": today,
                "decision": "refused",
                "decided_on": today,
                "refusal_reason": "no",
            },
        )
        assert r.status_code == 302
        assert InterventionOffer.objects.get().decision == "refused"
    else:
        assert b"not-informed-banner" in detail.content
        r = client.post(
            reverse("randomization:disclosure_create", args=["BLEND", allocation.trial_number]),
            {"disclosed_on": timezone.localdate().isoformat(), "description": "letter"},
        )
        assert r.status_code == 302 and ControlDisclosure.objects.count() == 1


def test_ineligible_screening_goes_to_its_detail_with_reasons(
    client, blend, make_participant, eligible_answers, nurse_a, site_a
):
    participant = make_participant(site_a, consents={"cohort": True})
    client.force_login(nurse_a)
    url = reverse("randomization:screening_create", args=["BLEND", participant.study_number])
    data = _screening_post(eligible_answers)
    data.pop("c_present_randomisation_consent")  # derived from the consent records
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    content = response.content.decode()
    assert "Consent (c)" in content or "Toestemming (c)" in content or "(c)" in content
    screening = Screening.objects.get()
    assert screening.verdict == "ineligible"


def test_screening_form_with_a_missing_answer_shows_the_error_and_writes_nothing(
    client, blend, make_participant, eligible_answers, nurse_a, site_a
):
    participant = make_participant(site_a)
    client.force_login(nurse_a)
    data = _screening_post(eligible_answers)
    data.pop("c_fit_for_radiosurgery")
    response = client.post(
        reverse("randomization:screening_create", args=["BLEND", participant.study_number]), data
    )
    assert response.status_code == 200 and b"invalid-feedback" in response.content
    assert Screening.objects.count() == 0


@pytest.mark.parametrize(
    "who,status",
    [("nurse_b", 404), ("monitor", 403), ("statistician", 403), ("administrator", 403)],
)
def test_screening_and_randomise_pages_refused(
    request, client, who, status, active_sequence, eligible_participant, nurse_a, site_a
):
    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    client.force_login(request.getfixturevalue(who))
    for name in ("screening_create", "randomise"):
        url = reverse(f"randomization:{name}", args=["BLEND", participant.study_number])
        assert client.get(url).status_code == status
        assert client.post(url, {"confirm": "on"}).status_code == status
    assert Allocation.objects.count() == 0


def test_sequence_screens_for_the_permission_holder_only(
    client, blend, sequence_statistician, statistician, site_a
):
    client.force_login(statistician)
    assert client.get(reverse("randomization:sequence_list", args=["BLEND"])).status_code == 403
    assert (
        client.post(
            reverse("randomization:sequence_generate", args=["BLEND"]),
            {"method": "permuted_blocks", "environment": "test", "factors": ["site"]},
        ).status_code
        == 403
    )
    client.force_login(sequence_statistician)
    response = client.post(
        reverse("randomization:sequence_generate", args=["BLEND"]),
        {
            "method": "permuted_blocks",
            "environment": "test",
            "factors": ["site"],
            "block_sizes": "4,6",
            "slots_per_stratum": "20",
            "probability": "0.8",
        },
    )
    sequence = Sequence.objects.get()
    assert response.status_code == 302
    detail = client.get(response["Location"] + "?verify=1")
    assert sequence.fingerprint.encode() in detail.content
    assert b'data-testid="verified"' in detail.content and b"alert-success" in detail.content
    client.post(reverse("randomization:sequence_activate", args=["BLEND", sequence.pk]))
    sequence.refresh_from_db()
    assert sequence.status == "active" and sequence.activated_by == sequence_statistician
    # Bad block sizes: a field error, no sequence.
    response = client.post(
        reverse("randomization:sequence_generate", args=["BLEND"]),
        {
            "method": "permuted_blocks",
            "environment": "test",
            "factors": ["site"],
            "block_sizes": "3,5",
            "probability": "0.8",
        },
    )
    assert response.status_code == 200 and b"invalid-feedback" in response.content
    assert Sequence.objects.count() == 1


def test_corrections_two_person_through_the_screens(
    client, active_sequence, randomised, investigator_a, statistician, nurse_a, site_a
):
    active_sequence()
    allocation = randomised(site_a, nurse_a)
    client.force_login(investigator_a)
    r = client.post(
        reverse("randomization:correction_propose", args=["BLEND", allocation.trial_number]),
        {"reason": "screened on the wrong scan"},
    )
    assert r.status_code == 302
    correction = allocation.corrections.get()
    # The proposer's own confirm is refused.
    client.post(
        reverse("randomization:correction_decide", args=["BLEND", correction.pk]), {"confirm": "1"}
    )
    allocation.refresh_from_db()
    assert allocation.status == "active"
    client.force_login(statistician)
    page = client.get(reverse("randomization:correction_list", args=["BLEND"]))
    assert b"screened on the wrong scan" in page.content
    client.post(
        reverse("randomization:correction_decide", args=["BLEND", correction.pk]), {"confirm": "1"}
    )
    allocation.refresh_from_db()
    assert allocation.status == "corrected_in_error"


def test_arm_counts_only_for_sponsor_roles(
    client, active_sequence, randomised, nurse_a, investigator_a, monitor, site_a
):
    active_sequence()
    randomised(site_a, nurse_a)
    url = reverse("randomization:trial_overview", args=["BLEND"])
    for user, shown in ((nurse_a, False), (investigator_a, False), (monitor, True)):
        client.force_login(user)
        assert (b'data-testid="arm-counts"' in client.get(url).content) is shown


def test_overview_query_count_is_flat(
    client, active_sequence, randomised, nurse_a, site_a, django_assert_max_num_queries
):
    active_sequence()
    client.force_login(nurse_a)
    url = reverse("randomization:trial_overview", args=["BLEND"])
    randomised(site_a, nurse_a)
    with django_assert_max_num_queries(15):
        assert client.get(url).status_code == 200
    for _ in range(6):
        randomised(site_a, nurse_a)
    with django_assert_max_num_queries(15):
        assert client.get(url).status_code == 200


def test_overview_pages_allocations_newest_first_at_own_sites_only(
    client, active_sequence, randomised, nurse_a, nurse_b, site_a, site_b, monkeypatch
):
    """The overview lists allocations a keyset page at a time, newest first, with the
    pager's Dutch texts; every page holds only the user's own sites' allocations."""
    from randomization import views

    monkeypatch.setattr(views, "OVERVIEW_ALLOCATIONS_PAGE_SIZE", 2)
    active_sequence()
    own = [randomised(site_a, nurse_a) for _ in range(5)]
    other = randomised(site_b, nurse_b)
    newest_first = [
        a.trial_number
        for a in Allocation.objects.filter(pk__in=[a.pk for a in own]).order_by(
            "-randomised_at", "-pk"
        )
    ]
    client.force_login(nurse_a)
    url = reverse("randomization:trial_overview", args=["BLEND"])
    seen, pages, response = [], [], client.get(url)
    while True:
        assert response.status_code == 200
        page = response.context["allocations"]
        html = response.content.decode()
        assert 'data-testid="pager"' in html and "Volgende" in html and "Vorige" in html
        assert other.trial_number not in html
        pages.append([a.trial_number for a in page])
        seen += pages[-1]
        if not page.has_next:
            break
        response = client.get(url, {"cursor": page.next_cursor})
    assert seen == newest_first and [len(p) for p in pages] == [2, 2, 1]
    # back from the last page to the one before it
    back = client.get(url, {"cursor": page.previous_cursor})
    assert [a.trial_number for a in back.context["allocations"]] == pages[1]
    # a cursor edited by hand shows the first page
    assert [a.trial_number for a in client.get(url, {"cursor": "x!"}).context["allocations"]] == (
        pages[0]
    )
    # nothing was written by reading
    assert Allocation.objects.count() == 6


def test_overview_pages_cost_the_same_queries(
    client, active_sequence, randomised, nurse_a, site_a, monkeypatch, django_assert_num_queries
):
    """A later page of the overview costs exactly the queries of the first, however many
    allocations there are (keyset pages, no count)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from randomization import views

    monkeypatch.setattr(views, "OVERVIEW_ALLOCATIONS_PAGE_SIZE", 2)
    active_sequence()
    for _ in range(3):
        randomised(site_a, nurse_a)
    client.force_login(nurse_a)
    url = reverse("randomization:trial_overview", args=["BLEND"])
    client.get(url)  # the session and the caches, once
    with CaptureQueriesContext(connection) as first:
        page = client.get(url).context["allocations"]
    assert len(first.captured_queries) <= 12
    for _ in range(4):
        randomised(site_a, nurse_a)
    with django_assert_num_queries(len(first.captured_queries)):
        assert client.get(url, {"cursor": page.next_cursor}).status_code == 200


def test_overview_without_a_second_page_shows_no_pager(
    client, active_sequence, randomised, nurse_a, site_a
):
    active_sequence()
    randomised(site_a, nurse_a)
    client.force_login(nurse_a)
    html = client.get(reverse("randomization:trial_overview", args=["BLEND"])).content.decode()
    assert 'data-testid="allocations"' in html and 'data-testid="pager"' not in html


def test_treatment_start_page_says_which_date_is_day_0(
    client, active_sequence, randomised, nurse_a, site_a
):
    active_sequence()
    control = randomised(site_a, nurse_a, arm="control")
    client.force_login(nurse_a)
    page = client.get(
        reverse("randomization:treatment_start", args=["BLEND", control.trial_number])
    )
    assert b'data-testid="day0-help"' in page.content
    assert b"not-informed-banner" in page.content


@pytest.mark.django_db
def test_no_screening_offer_for_a_deceased_participant(nurse_a, site_a, blend):
    """The participant panel offers 'Screen for BLEND' to the living only."""
    from cohort.models import Death, Participant
    from randomization.selectors import participant_panel

    participant = factories.ParticipantFactory(
        site=site_a, by=nurse_a, consents=False, sex="male", primary_tumour="lung"
    )
    assert participant_panel(user=nurse_a, participant=participant)["context"]["trials"]
    Death.objects.create(
        participant=participant, died_on="2026-01-01", source="family", recorded_by=nurse_a
    )
    participant = Participant.objects.select_related("death").get(pk=participant.pk)
    assert participant_panel(user=nurse_a, participant=participant)["context"]["trials"] == []
