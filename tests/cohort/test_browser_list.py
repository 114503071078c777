"""The participant list's keyset pager in headless Chromium: next/previous, and the capped
count (screenshot kept in test-artifacts/)."""

from __future__ import annotations

import pytest

from cohort import views as cohort_views
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_participant_list_pages_forward_and_back(
    page, browser_login, screenshot, nurse_a, site_a, monkeypatch
):
    monkeypatch.setattr(cohort_views, "PAGE_SIZE", 2)
    made = [factories.ParticipantFactory(site=site_a) for _ in range(5)]
    browser_login(page, page.base_url, "nurse_a")
    page.goto(f"{page.base_url}/cohort/")
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    first_page = rows.all_inner_texts()
    assert made[-1].study_number in first_page[0]  # newest first
    screenshot(page, "cohort-participant-list-pager")
    page.locator("a[rel=next]").first.click()
    assert page.locator("tbody tr").count() == 2
    assert page.locator("tbody tr").all_inner_texts() != first_page
    page.locator("a[rel=prev]").first.click()
    assert page.locator("tbody tr").all_inner_texts() == first_page
