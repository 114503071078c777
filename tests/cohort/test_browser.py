"""A nurse registers a participant, records the four consent elements and sees them on the
timeline (headless Chromium; screenshots kept in test-artifacts/)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_nurse_registers_records_four_consents_and_sees_the_timeline(
    page, browser_login, screenshot, nurse_a, site_a, form_version
):
    from cohort.models import ConsentRecord, Participant

    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    browser_login(page, page.base_url, "nurse_a")

    # register
    page.goto(f"{page.base_url}/cohort/")
    page.click("[data-testid=register-link]")
    page.fill("input[name=given_name]", "Lotte")
    page.fill("input[name=family_name]", "van der Berg")
    page.fill("input[name=date_of_birth]", "1962-03-04")
    page.fill("input[name=hospital_number]", "UMC-778899")
    page.fill("input[name=email]", "lotte@example.invalid")
    page.select_option("select[name=sex]", "female")
    page.select_option("select[name=primary_tumour]", "lung")
    page.select_option("select[name=referring_department]", "orthopaedic_surgery")
    diagnosed = (timezone.localdate() - timedelta(days=20)).isoformat()
    page.fill("input[name=bone_metastases_diagnosed_on]", diagnosed)
    screenshot(page, "cohort-register-form")
    page.click("[data-testid=register-submit]")
    page.wait_for_load_state("networkidle")
    participant = Participant.objects.get()
    assert page.url.endswith(f"/cohort/{participant.study_number}/")
    assert page.locator("[data-testid=study-number]").inner_text() == participant.study_number

    # record the four consent elements in one form
    page.click("[data-testid=consent-link]")
    page.fill("input[name=given_on]", (timezone.localdate() - timedelta(days=1)).isoformat())
    page.select_option("select[name=form_version]", str(form_version.pk))
    page.check("input[name=mode][value=paper]")
    for element in ("cohort", "proms", "randomisation_offer", "control_uninformed"):
        page.click(f"label[for=id_element_{element}_0]")  # "yes"
    screenshot(page, "cohort-consent-form")
    page.click("[data-testid=consent-submit]")
    page.wait_for_load_state("networkidle")

    assert ConsentRecord.objects.filter(participant=participant, answer=True).count() == 4
    timeline = page.locator("[data-testid=timeline]")
    assert timeline.locator("li.timeline-consent").count() == 4
    assert timeline.locator("li.timeline-registered").count() == 1
    for element in ("cohort", "proms", "randomisation_offer", "control_uninformed"):
        badge = page.locator(
            f"[data-testid=consent-summary] [data-element={element}] [data-answer]"
        )
        assert badge.get_attribute("data-answer") == "yes"
    assert "UMC-778899" in page.locator("[data-testid=identity-card]").inner_text()
    screenshot(page, "cohort-participant-timeline")

    # the list shows the new participant with its status
    page.goto(f"{page.base_url}/cohort/")
    row = page.locator("table.participant-table tbody tr")
    assert row.count() == 1
    assert participant.study_number in row.inner_text()
    assert row.locator("[data-status=active]").count() == 1
    screenshot(page, "cohort-participant-list")
    # a hospital number search (POSTed, never in a URL) opens the participant page
    page.fill("input[name=q]", "umc-778899")
    page.click("form.participant-search button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/cohort/{participant.study_number}/")
    assert not [p for p in problems if "Content Security Policy" in p], problems


def test_registration_errors_are_shown_next_to_the_field(
    page, browser_login, screenshot, nurse_a, site_a
):
    from cohort.models import Participant

    browser_login(page, page.base_url, "nurse_a")
    page.goto(f"{page.base_url}/cohort/register/")
    page.fill("input[name=given_name]", "<script>alert(1)</script>")
    page.fill("input[name=date_of_birth]", "2999-01-01")
    page.click("[data-testid=register-submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator(".field-error[data-field=given_name]").count() == 1
    assert page.locator(".field-error[data-field=family_name]").count() == 1
    assert page.locator(".field-error[data-field=date_of_birth]").count() == 1
    assert page.locator("input[name=given_name].is-invalid").count() == 1
    screenshot(page, "cohort-register-errors")
    assert Participant.objects.count() == 0


def test_timeline_shows_correction_withdrawal_and_death_in_english(
    page, browser_login, screenshot, nurse_a, site_a, register, consented
):
    from datetime import timedelta

    from cohort import services
    from tests.cohort.conftest import registered_days_ago

    today = timezone.localdate()
    p = registered_days_ago(register(nurse_a, site_a), 30)
    records = consented(p, nurse_a, on=today - timedelta(days=30))
    services.consent_correct(
        record=records[3], by=nurse_a, reason="box (d) was ticked no on paper", answer=False
    )
    services.withdrawal_record(
        by=nurse_a,
        participant=p,
        scope="questionnaires",
        effective_on=today - timedelta(days=10),
        reason="too tiring",
    )
    services.death_record(
        by=nurse_a, participant=p, died_on=today - timedelta(days=2), source="hospital_record"
    )
    browser_login(page, page.base_url, "nurse_a")
    page.goto(f"{page.base_url}/cohort/{p.study_number}/")
    page.click("button[name=language][value=en]")
    page.wait_for_load_state("networkidle")
    assert page.get_attribute("html", "lang") == "en"
    timeline = page.locator("[data-testid=timeline]")
    assert timeline.locator("li.timeline-struck").count() == 1
    assert timeline.locator("li.timeline-withdrawal").count() == 1
    assert timeline.locator("li.timeline-death").count() == 1
    assert "box (d) was ticked no on paper" in timeline.inner_text()
    assert page.locator(".participant-header [data-status=deceased]").count() == 1
    assert (
        page.locator(
            "[data-testid=consent-summary] [data-element=control_uninformed] [data-answer]"
        ).get_attribute("data-answer")
        == "no"
    )
    assert page.locator("[data-testid=consent-link]").count() == 0  # no consent after death
    screenshot(page, "cohort-participant-timeline-corrections-en")
