"""A nurse enters the clinical forms of a randomised participant in a real browser
(headless Chromium): baseline clinical with the SINS total updating live as the six
components are chosen, surgery, SBRT delivery (a repeat row) and two adverse events, the
second with the keyboard only (Tab, typing, Space, arrow keys, Enter). The records in the
database are complete with the data entered. Screenshots: test-artifacts/ (or the folder
in FORM_SCREENSHOTS)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from crf.models import ClinicalRecord
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BACK_PAIN = "10003988"
WOUND = "10053692"


def shot(pg, name: str, full_page: bool = True) -> Path:
    folder = Path(os.environ.get("FORM_SCREENSHOTS") or ARTIFACTS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    pg.screenshot(path=str(path), full_page=full_page)
    return path


def form_url(pg, sn, form_code, occurrence="1"):
    return pg.base_url + reverse("crf:form_screen", args=[sn, form_code, occurrence])


def typed_day(days_ago: int) -> str:
    return (timezone.localdate() - timedelta(days=days_ago)).strftime("%d-%m-%Y")


def iso_day(days_ago: int) -> str:
    return (timezone.localdate() - timedelta(days=days_ago)).isoformat()


def radio(pg, name, value):
    pg.locator(f'input[name="{name}"][value="{value}"]').check()


def complete(pg):
    """Complete the form (the save may first wait for an autosave under way)."""
    with pg.expect_navigation():
        pg.locator('[data-testid="complete"]').click()
    pg.wait_for_load_state("networkidle")


def focused(pg) -> dict:
    return pg.evaluate(
        "() => { const e = document.activeElement;"
        " return {name: e.name || '', value: e.value || '', tag: e.tagName,"
        " testid: e.dataset ? (e.dataset.testid || '') : ''}; }"
    )


def tab_to(pg, name: str, value: str | None = None, limit: int = 120) -> None:
    """Press Tab until the field ``name`` (its option ``value``) has the focus."""
    for _ in range(limit):
        now = focused(pg)
        if (now["name"] == name or now["testid"] == name) and value in (None, now["value"]):
            return
        pg.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {name} {value or ''}")


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a, arm="intervention")


def test_nurse_completes_the_clinical_forms_and_an_adverse_event_by_keyboard(
    page, browser_login, nurse_a, allocation
):
    sn = allocation.participant.study_number
    browser_login(page, page.base_url, "nurse_a")
    page.goto(page.base_url + reverse("cohort:participant_detail", args=[sn]))
    assert page.locator('[data-testid="forms-panel"]').is_visible()
    page.locator('[data-testid="forms-panel"] a[data-status="not_started"]').first.click()
    page.wait_for_load_state("networkidle")

    # --- baseline clinical: SINS total follows the six components live -------------------
    assert "/forms/baseline_clinical/1/" in page.url
    page.fill("#id-assessed_on", typed_day(2))
    radio(page, "primary_tumour", "breast")
    assert page.locator("#item-primary_tumour_other").is_hidden()  # only after "other"
    page.locator('input[name="index_levels"][value="T10"]').check()
    total = page.locator("#computed-sins_total")
    sins_class = page.locator("#computed-sins_class")
    assert total.inner_text() == "—"
    for name, value in [
        ("sins_location", "junctional"),  # 3
        ("sins_pain", "mechanical"),  # 3
        ("sins_lesion", "lytic"),  # 2
        ("sins_alignment", "normal"),  # 0
        ("sins_collapse", "none_over_50_involved"),  # 1
    ]:
        radio(page, name, value)
        page.wait_for_timeout(150)
        assert total.inner_text() == "—"  # not all six yet
    radio(page, "sins_posterolateral", "none")
    expect(total).to_have_text("9")
    assert sins_class.inner_text() == "mogelijk instabiel"
    total.scroll_into_view_if_needed()
    shot(page, "form-1-baseline-sins-9", full_page=False)
    radio(page, "sins_posterolateral", "bilateral")  # + 3 = 12
    expect(total).to_have_text("12")
    radio(page, "sins_alignment", "subluxation")  # + 4 = 16: unstable
    expect(total).to_have_text("16")
    assert sins_class.inner_text() == "instabiel"
    radio(page, "bilsky", "1b")
    radio(page, "asia", "E")
    radio(page, "who_ps", "1")
    page.fill("#id-worst_pain", "11")  # out of range: the message appears next to the field
    page.locator("#id-worst_pain").blur()
    expect(page.locator("#err-worst_pain")).to_contain_text("10")
    shot(page, "form-2-baseline-inline-error", full_page=False)
    page.fill("#id-worst_pain", "7")
    page.locator("#id-worst_pain").blur()
    expect(page.locator("#err-worst_pain")).to_have_text("")
    radio(page, "uses_analgesics", "no")
    radio(page, "systemic_therapy", "no")
    page.wait_for_selector('#autosave-status [data-saved="1"]', timeout=10000)  # autosaved
    assert "Concept opgeslagen om" in page.locator("#autosave-status").inner_text()
    expect(page.locator('#form-status [data-status="draft"]')).to_have_text("Concept")
    shot(page, "form-3-baseline-filled")
    complete(page)
    assert page.url.endswith(reverse("cohort:participant_detail", args=[sn]))
    baseline = ClinicalRecord.objects.get(form_code="baseline_clinical")
    assert baseline.status == "complete"
    assert baseline.data["sins_total"] == 16 and baseline.data["sins_class"] == "unstable"
    assert baseline.data["worst_pain"] == 7 and baseline.data["index_levels"] == ["T10"]
    assert baseline.data["assessed_on"] == iso_day(2) and baseline.data["uses_analgesics"] is False

    # --- surgery ----------------------------------------------------------------------------
    page.goto(form_url(page, sn, "surgery"))
    page.fill("#id-started_at", f"{typed_day(1)} 08:30")
    page.fill("#id-ended_at", f"{typed_day(1)} 11:15")
    radio(page, "technique", "percutaneous")
    page.locator('input[name="levels_instrumented"][value="T9"]').check()
    page.locator('input[name="levels_instrumented"][value="T11"]').check()
    radio(page, "decompression", "no")
    assert page.locator("#item-decompression_type").is_hidden()
    page.fill("#id-blood_loss_ml", "150")
    radio(page, "complication", "no")
    shot(page, "form-4-surgery")
    complete(page)
    surgery = ClinicalRecord.objects.get(form_code="surgery")
    assert surgery.status == "complete"
    assert surgery.data["started_at"] == f"{iso_day(1)}T08:30"
    assert surgery.data["levels_instrumented"] == ["T9", "T11"]
    assert surgery.data["blood_loss_ml"] == 150 and surgery.data["decompression"] is False

    # --- SBRT delivery: one target row, then "add row" for a second -------------------------
    page.goto(form_url(page, sn, "sbrt_delivery"))
    page.fill("#id-started_at", f"{typed_day(1)} 14:00")
    page.locator('input[name="targets-0-levels"][value="T10"]').check()
    page.fill("#id-targets-0-dose_gy", "24")
    page.fill("#id-targets-0-fractions", "3")
    page.locator('[data-testid="add-row-targets"]').click()
    page.wait_for_load_state("networkidle")
    page.locator('input[name="targets-1-levels"][value="L1"]').check()
    page.fill("#id-targets-1-dose_gy", "16,5")
    page.fill("#id-targets-1-fractions", "1")
    radio(page, "site_sparing", "yes")
    radio(page, "completed_as_planned", "yes")
    radio(page, "deviation", "no")
    shot(page, "form-5-sbrt")
    complete(page)
    sbrt = ClinicalRecord.objects.get(form_code="sbrt_delivery")
    assert sbrt.status == "complete", sbrt.data
    assert sbrt.data["targets"] == [
        {"levels": ["T10"], "dose_gy": 24, "fractions": 3},
        {"levels": ["L1"], "dose_gy": 16.5, "fractions": 1},
    ]

    # --- adverse event 1 (mouse) --------------------------------------------------------------
    page.goto(form_url(page, sn, "adverse_event", "new"))
    page.select_option("#id-term", BACK_PAIN)
    radio(page, "grade", "2")
    page.fill("#id-onset_on", typed_day(1))
    radio(page, "resolved", "yes")
    page.fill("#id-resolved_on", iso_day(0))
    radio(page, "serious", "no")
    radio(page, "relation_sbrt", "possible")
    radio(page, "relation_surgery", "unlikely")
    radio(page, "wound_complication", "no")
    page.locator('input[name="action"][value="medication"]').check()
    radio(page, "outcome", "recovered")
    complete(page)
    first = ClinicalRecord.objects.get(form_code="adverse_event", occurrence="1")
    assert first.status == "complete"
    assert first.data["term"] == BACK_PAIN and first.data["resolved_on"] == iso_day(0)

    # --- adverse event 2: the keyboard only ---------------------------------------------------
    page.goto(form_url(page, sn, "adverse_event", "new"))
    tab_to(page, "term")
    for _ in range(40):  # arrow down through the list to the wound complication
        if focused(page)["value"] == WOUND:
            break
        page.keyboard.press("ArrowDown")
    assert focused(page)["value"] == WOUND
    tab_to(page, "grade")
    page.keyboard.press("Space")  # grade 1
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")  # grade 3
    tab_to(page, "onset_on")
    page.keyboard.type(typed_day(3))
    tab_to(page, "resolved")
    page.keyboard.press("Space")  # ja
    page.keyboard.press("ArrowRight")  # nee: resolved_on stays hidden
    tab_to(page, "serious")
    page.keyboard.press("Space")  # ja: the criteria appear
    tab_to(page, "serious_criteria", "hospitalisation")
    page.keyboard.press("Space")
    tab_to(page, "relation_sbrt")
    page.keyboard.press("Space")  # not related
    tab_to(page, "relation_surgery")
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # not related, unlikely, possible, probable
    tab_to(page, "wound_complication")
    page.keyboard.press("Space")  # ja
    tab_to(page, "action", "reoperation")
    page.keyboard.press("Space")
    tab_to(page, "action", "hospitalisation")
    page.keyboard.press("Space")
    tab_to(page, "outcome")
    page.keyboard.press("ArrowRight")  # recovering
    tab_to(page, "description")
    page.keyboard.type("Wound leakage after surgery, revised")
    shot(page, "form-6-ae-keyboard")
    tab_to(page, "complete")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(reverse("cohort:participant_detail", args=[sn]))
    second = ClinicalRecord.objects.get(form_code="adverse_event", occurrence="2")
    assert second.status == "complete", second.data
    assert second.data == {
        "term": WOUND,
        "grade": 3,
        "onset_on": iso_day(3),
        "resolved": False,
        "serious": True,
        "serious_criteria": ["hospitalisation"],
        "relation_sbrt": "not_related",
        "relation_surgery": "probable",
        "wound_complication": True,
        "action": ["reoperation", "hospitalisation"],
        "outcome": "recovering",
        "description": "Wound leakage after surgery, revised",
    }
    assert ClinicalRecord.objects.filter(form_code="adverse_event").count() == 2

    # --- the participant page shows it all ---------------------------------------------------
    panel = page.locator('[data-testid="forms-panel"]')
    assert panel.locator('tr[data-form="baseline_clinical"] a[data-status="complete"]').count() == 1
    assert panel.locator('[data-log="adverse_event"] tbody tr').count() == 2
    assert "Wondcomplicatie" in panel.locator('[data-log="adverse_event"]').inner_text()
    panel.scroll_into_view_if_needed()
    shot(page, "form-7-participant-panel")
