"""Browser: a nurse screens an eligible participant (live verdict), randomises after the
confirmation step, records the offer and the decision; a control participant's pages show
the "not informed" banner. Screenshots land in test-artifacts/."""

from __future__ import annotations

import pytest
from django.utils import timezone

from randomization import services
from randomization.models import Allocation, InterventionOffer, Screening, Slot, Stratum

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _consume_until_next_is(arm, *, sequence, site, nurse, blend, eligible_participant):
    """Test set-up only: use up slots until the next one in ``site`` has ``arm``."""
    key = f"site={site.code}"
    for _ in range(20):
        used = Stratum.objects.get(sequence=sequence, key=key).used
        if Slot.objects.get(sequence=sequence, stratum=key, position=used + 1).arm.code == arm:
            return
        services.allocation_randomise(
            by=nurse, trial=blend, participant=eligible_participant(site, nurse)
        )
    raise AssertionError("list without the wanted arm")


def test_nurse_screens_randomises_and_records_the_decision(
    page,
    browser_login,
    screenshot,
    blend,
    active_sequence,
    make_participant,
    eligible_participant,
    criteria_codes,
    nurse_a,
    site_a,
    trial_form,
):
    sequence = active_sequence()
    _consume_until_next_is(
        "intervention",
        sequence=sequence,
        site=site_a,
        nurse=nurse_a,
        blend=blend,
        eligible_participant=eligible_participant,
    )
    participant = make_participant(site_a)
    browser_login(page, page.base_url, "nurse_a")
    page.goto(f"{page.base_url}/trials/BLEND/")
    page.fill("[data-testid=screen-lookup] input[name=participant]", participant.study_number)
    page.click("[data-testid=screen-lookup] button[type=submit]")
    page.wait_for_selector("[data-testid=verdict]")
    assert "verdict-pending" in page.get_attribute("[data-testid=verdict]", "class")
    # Criteria the stored data decide are shown as derived (no buttons to press).
    codes = [
        (code, kind)
        for code, kind in criteria_codes.items()
        if not page.query_selector(f"[data-testid=derived-{code}]")
    ]
    assert len(codes) < len(criteria_codes)
    for code, kind in codes[:-1]:
        page.click(f"label[for=id_c_{code}_{0 if kind == 'inclusion' else 1}]")
    # One exclusion answered "yes" first: the live verdict says not eligible...
    last_code, _kind = codes[-1]
    page.click(f"label[for=id_c_{last_code}_0]")
    page.wait_for_selector("[data-testid=verdict].verdict-ineligible")
    screenshot(page, "randomization-screening-ineligible")
    # ...then corrected to "no": eligible.
    page.click(f"label[for=id_c_{last_code}_1]")
    page.wait_for_selector("[data-testid=verdict].verdict-eligible")
    screenshot(page, "randomization-screening-eligible")
    page.click("[data-testid=save-screening]")
    page.wait_for_selector("[data-testid=eligibility-summary]")
    screenshot(page, "randomization-confirm")
    assert not Allocation.objects.filter(participant=participant).exists()
    page.check("[data-testid=confirm-check]")
    page.click("[data-testid=randomise-button]")
    page.wait_for_selector("[data-testid=allocation-result]")
    allocation = Allocation.objects.get(participant=participant)
    assert allocation.arm.code == "intervention"
    assert page.inner_text("[data-testid=trial-number]") == allocation.trial_number
    assert page.inner_text("[data-testid=arm-name]") == allocation.arm.name
    screenshot(page, "randomization-allocation-intervention")

    page.click("[data-testid=offer-link]")
    today = timezone.localdate().isoformat()
    page.fill("input[name=offered_on]", today)
    page.check("input[name=decision][value=accepted]")
    page.fill("input[name=decided_on]", today)
    page.select_option("select[name=consent_form_version]", str(trial_form.pk))
    page.fill("input[name=consent_date]", today)
    screenshot(page, "randomization-offer-form")
    page.click("[data-testid=save-decision]")
    page.wait_for_selector("[data-testid=offer-card] [data-testid=decision]")
    offer = InterventionOffer.objects.get(allocation=allocation)
    assert offer.decision == "accepted" and offer.consent_form_version == trial_form
    assert offer.offered_by == nurse_a
    screenshot(page, "randomization-decision-recorded")
    page.goto(f"{page.base_url}/trials/BLEND/")
    assert allocation.trial_number in page.inner_text("[data-testid=allocations]")
    screenshot(page, "randomization-trial-overview")


def test_control_participant_shows_the_not_informed_banner(
    page, browser_login, screenshot, blend, active_sequence, randomised, nurse_a, site_a
):
    active_sequence()
    control = randomised(site_a, nurse_a, arm="control")
    browser_login(page, page.base_url, "nurse_a")
    page.goto(f"{page.base_url}/trials/BLEND/allocations/{control.trial_number}/")
    banner = page.wait_for_selector("[data-testid=not-informed-banner]")
    assert banner.is_visible()
    screenshot(page, "randomization-control-not-informed")
    page.goto(f"{page.base_url}/trials/BLEND/allocations/{control.trial_number}/treatment-start/")
    assert page.is_visible("[data-testid=not-informed-banner]")
    page.goto(f"{page.base_url}/trials/BLEND/screen/{control.participant.study_number}/")
    assert page.is_visible("[data-testid=not-informed-banner]")
    # The cohort participant page (the cohort app includes our banner template).
    response = page.goto(f"{page.base_url}/cohort/{control.participant.study_number}/")
    if response is not None and response.status == 200:
        assert page.is_visible(".not-informed-banner")
        screenshot(page, "randomization-control-participant-page")


def test_statistician_generates_checks_the_fingerprint_and_activates(
    page, browser_login, screenshot, blend, sequence_statistician, site_a, site_b
):
    from randomization.models import Sequence

    browser_login(page, page.base_url, "seq_statistician")
    page.goto(f"{page.base_url}/trials/BLEND/sequences/")
    page.click("[data-testid=generate-link]")
    page.select_option("select[name=method]", "permuted_blocks")
    page.fill("input[name=block_sizes]", "4,6")
    page.fill("input[name=slots_per_stratum]", "24")
    screenshot(page, "randomization-sequence-form")
    page.click("[data-testid=generate-button]")
    fingerprint = page.inner_text("[data-testid=fingerprint]")
    sequence = Sequence.objects.get()
    assert fingerprint == sequence.fingerprint and sequence.status == "generated"
    page.click("[data-testid=verify-link]")
    page.wait_for_selector("[data-testid=verified].alert-success")
    page.click("[data-testid=activate-button]")
    page.wait_for_selector("[data-testid=sequence-status][data-status=active]")
    sequence.refresh_from_db()
    assert sequence.status == "active" and sequence.activated_by == sequence_statistician
    screenshot(page, "randomization-sequence-active")


def test_screening_screen_shows_derived_criteria(
    page, browser_login, screenshot, blend, make_participant, nurse_a, site_a, criteria_codes
):
    """Age, multiple myeloma and consent are derived from stored data and shown read-only;
    a 16-year-old (born 2010-01-01) is not eligible whatever the nurse answers."""
    from datetime import date

    participant = make_participant(
        site_a, primary_tumour="prostate", date_of_birth=date(2010, 1, 1)
    )
    browser_login(page, page.base_url, "nurse_a")
    page.goto(f"{page.base_url}/trials/BLEND/screen/{participant.study_number}/")
    age = page.locator("[data-testid=derived-age_over_18]")
    assert age.get_attribute("data-answer") == "no"
    assert "16" in age.inner_text() and "2010-01-01" not in page.content()
    assert page.locator("[data-testid=derived-multiple_myeloma]").get_attribute("data-answer") == (
        "no"
    )
    consent = page.locator("[data-testid=derived-present_randomisation_consent]")
    assert consent.get_attribute("data-answer") == "yes"
    assert page.locator("input[name=c_age_over_18]").count() == 0
    for code, kind in criteria_codes.items():
        if page.locator(f"[data-testid=derived-{code}]").count():
            continue
        page.click(f"label[for=id_c_{code}_{0 if kind == 'inclusion' else 1}]")
    page.wait_for_selector("[data-testid=verdict].verdict-ineligible")
    page.locator("[data-testid=derived-age_over_18]").scroll_into_view_if_needed()
    screenshot(page, "randomization-screening-derived")
    page.click("[data-testid=save-screening]")
    page.wait_for_load_state("networkidle")
    screening = Screening.objects.get(participant=participant)
    assert screening.verdict == "ineligible"
    assert screening.reasons == ["inclusion_not_met:age_over_18"]
    assert screening.answers.get(criterion__code="age_over_18").source == "derived"
