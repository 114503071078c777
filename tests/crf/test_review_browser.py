"""The data review in a real browser (headless Chromium): a monitor raises a query on the
discharge date with a suggested value; the nurse changes the date on the form with a reason
for change and answers; the monitor closes the query; the investigator signs (a wrong
password first, refused); a later edit shows the signature as invalidated on the form
screen. Screenshots: test-artifacts/ (or the folder in REVIEW_SCREENSHOTS)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from crf import services
from crf.models import ClinicalRecord, DataQuery, ESignature
from tests.conftest import ARTIFACTS, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(pg, name: str, full_page: bool = True) -> Path:
    folder = Path(os.environ.get("REVIEW_SCREENSHOTS") or ARTIFACTS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    pg.screenshot(path=str(path), full_page=full_page)
    return path


def day(days_ago: int):
    return timezone.localdate() - timedelta(days=days_ago)


@pytest.fixture
def as_user(browser, live_server):
    """as_user("nurse_a") -> a logged-in page of that user, in a context of its own."""
    contexts = []

    def _open(username):
        context = browser.new_context(locale="nl-NL", timezone_id="Europe/Amsterdam")
        context.set_default_timeout(15000)
        contexts.append(context)
        pg = context.new_page()
        login(pg, live_server.url, username)
        return pg

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def admission(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    allocation = randomised(site_a, nurse_a, arm="control")
    return services.clinical_record_create(
        user=nurse_a,
        allocation=allocation,
        form_code="admission",
        data={
            "admitted_on": day(6).isoformat(),
            "discharged_on": day(3).isoformat(),
            "icu": False,
            "discharge_destination": "home",
        },
        complete=True,
    )


def test_query_answered_with_a_data_change_closed_then_signed_and_invalidated(
    as_user, live_server, make_user, site_a, nurse_a, investigator_a, admission
):
    make_user("data_manager", site_a, username="dm_site_a")
    sn = admission.participant.study_number
    form = live_server.url + reverse("crf:form_screen", args=[sn, "admission", "1"])

    # --- the monitor raises a query on the discharge date ----------------------------------
    monitor = as_user("dm_site_a")
    monitor.goto(form)
    expect(monitor.locator('[data-testid="read-only"]')).to_be_visible()
    monitor.select_option("#raise-item", "discharged_on")
    monitor.fill("#raise-text", "De ontslagbrief noemt een dag later.")
    monitor.fill("#raise-suggested_value", day(2).strftime("%d-%m-%Y"))
    with monitor.expect_navigation():
        monitor.locator('[data-testid="raise"]').click()
    query = DataQuery.objects.get()
    article = monitor.locator(f"#query-{query.pk}")
    expect(article).to_have_attribute("data-status", "open")
    expect(article).to_contain_text("De ontslagbrief noemt een dag later.")
    shot(monitor, "review-1-monitor-raised-query")

    # --- the nurse changes the date with a reason, then answers -----------------------------
    nurse = as_user("nurse_a")
    nurse.goto(form)
    expect(nurse.locator(f"#query-{query.pk}")).to_be_visible()
    # the open query's badge is shown next to the field too (review.js)
    expect(nurse.locator("#item-discharged_on .crf-review-badge")).to_be_visible()
    nurse.fill("#id-discharged_on", day(2).strftime("%d-%m-%Y"))
    nurse.fill("#id-reason", "Ontslagdatum volgens de ontslagbrief")
    with nurse.expect_navigation():
        nurse.locator('[data-testid="save-changes"]').click()
    admission.refresh_from_db()
    assert admission.data["discharged_on"] == day(2).isoformat() and admission.revision == 2
    nurse.goto(form)
    nurse.fill(f"#answer-{query.pk}", "Datum aangepast volgens de ontslagbrief.")
    with nurse.expect_navigation():
        nurse.locator(f'#query-{query.pk} [data-testid="answer"]').click()
    expect(nurse.locator(f"#query-{query.pk}")).to_have_attribute("data-status", "answered")
    nurse.locator("#review").scroll_into_view_if_needed()
    shot(nurse, "review-2-nurse-answered")

    # --- the monitor closes it ---------------------------------------------------------------
    monitor.goto(form)
    with monitor.expect_navigation():
        monitor.locator(f'#query-{query.pk} [data-testid="close"]').click()
    expect(monitor.locator(f"#query-{query.pk}")).to_have_attribute("data-status", "closed")
    query.refresh_from_db()
    assert query.status == "closed"
    assert [m.action for m in query.messages.all()] == ["raise", "answer", "close"]
    shot(monitor, "review-3-monitor-closed")

    # --- the investigator signs: a wrong password first ----------------------------------------
    investigator = as_user("investigator_a")
    investigator.goto(form)
    with investigator.expect_navigation():
        investigator.locator('[data-testid="sign-link"]').click()
    expect(investigator.locator('[data-testid="meaning"]')).to_be_visible()
    investigator.fill("#id_password", "niet-het-wachtwoord")
    with investigator.expect_navigation():
        investigator.locator('[data-testid="sign"]').click()
    expect(investigator.locator('[data-testid="password-error"]')).to_be_visible()
    assert ESignature.objects.count() == 0
    shot(investigator, "review-4-wrong-password")
    investigator.fill("#id_password", "correct-horse-battery-9")
    with investigator.expect_navigation():
        investigator.locator('[data-testid="sign"]').click()
    expect(investigator.locator('[data-testid="signature-valid"]')).to_be_visible()
    signature = ESignature.objects.get()
    assert signature.revision == 2 and signature.is_valid
    shot(investigator, "review-5-signed", full_page=False)

    # --- an edit invalidates the signature, and the form screen says so ------------------------
    nurse.goto(form)
    nurse.locator('input[name="icu"][value="yes"]').check()
    nurse.fill("#id-reason", "Toch op de IC geweest")
    with nurse.expect_navigation():
        nurse.locator('[data-testid="save-changes"]').click()
    nurse.goto(form)
    banner = nurse.locator('[data-testid="signature-invalidated"]')
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("nurse_a")
    signature.refresh_from_db()
    assert signature.invalidated_by == nurse_a
    assert ClinicalRecord.objects.get(pk=admission.pk).data["icu"] is True
    shot(nurse, "review-6-signature-invalidated", full_page=False)
