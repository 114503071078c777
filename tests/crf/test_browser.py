"""A patient on a phone opens the link, completes the questionnaire with the C15-PAL, and
the nurse's participant page shows it completed with the PF2 score. Screenshots are kept
in test-artifacts/ (crf-phone-*.png, crf-nurse-*.png)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.crf.conftest import full_answers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def answer_screen(pg, answers: dict) -> None:
    for code, value in answers.items():
        if isinstance(value, list):
            for i, row in enumerate(value):
                pg.locator(f'select[name="{code}__drug"]').nth(i).select_option(row["drug"])
                pg.locator(f'select[name="{code}__route"]').nth(i).select_option(row["route"])
                pg.locator(f'input[name="{code}__dose"]').nth(i).fill(str(row["daily_dose"]))
                pg.locator(f'select[name="{code}__unit"]').nth(i).select_option(row["unit"])
            continue
        pg.locator(f'input[name="{code}"][value="{value}"]').check()


def test_patient_completes_c15pal_on_a_phone_and_nurse_sees_pf2(
    phone_page, page, participant, nurse_a, open_questionnaire, screenshot, browser_login
):
    q, token = open_questionnaire(participant, "week2")  # pain, then the C15-PAL
    base = phone_page.base_url
    phone_page.goto(base + reverse("crf:patient_start", args=[token]))
    assert phone_page.locator("h1").inner_text() == "Uw PRESENT-vragenlijst" or "PRESENT" in (
        phone_page.locator("h1").inner_text()
    )
    screenshot(phone_page, "crf-phone-1-start")
    phone_page.locator("button[type=submit]").click()

    pain = full_answers("pain", choice_index=0)  # uses paracetamol (one medicine row)
    answer_screen(phone_page, pain)
    screenshot(phone_page, "crf-phone-2-pain")
    screenshot(phone_page, "crf-phone-2-pain-viewport", full_page=False)
    phone_page.locator("button[value=next]").click()

    # the C15-PAL: items 1-3 = 2, 2, 1 -> PF2 = 60
    c15 = full_answers("c15pal", choice_index=1) | {"q1": 2, "q2": 2, "q3": 1}
    assert phone_page.locator('input[name="q1"]').count() == 4
    answer_screen(phone_page, c15)
    screenshot(phone_page, "crf-phone-3-c15pal")
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # no sideways scrolling on a phone
    phone_page.locator("button[value=next]").click()

    screenshot(phone_page, "crf-phone-4-submit")
    phone_page.locator("button.btn-success").click()
    phone_page.wait_for_load_state("networkidle")
    screenshot(phone_page, "crf-phone-5-done")
    assert "/q/done/" in phone_page.url
    # the used link now shows only the neutral page
    response = phone_page.goto(base + reverse("crf:patient_start", args=[token]))
    assert response.status == 404 and response.headers["referrer-policy"] == "no-referrer"
    screenshot(phone_page, "crf-phone-6-used-link")

    q.refresh_from_db()
    assert q.status == "completed" and q.mode == "epro"
    assert q.scores["c15pal"]["PF2"] == pytest.approx(60.0, abs=0.05)

    browser_login(page, page.base_url, "nurse_a")
    page.goto(page.base_url + reverse("cohort:participant_detail", args=[participant.study_number]))
    row = page.locator('tr[data-timepoint="week2"]')
    assert "60,0" in row.inner_text() or "60.0" in row.inner_text()
    assert row.locator(".crf-status-completed").count() == 1
    screenshot(page, "crf-nurse-participant")
    page.goto(page.base_url + reverse("crf:questionnaire_detail", args=[q.pk]))
    assert page.locator("#q-status .crf-status-completed").count() == 1
    screenshot(page, "crf-nurse-questionnaire")


def test_nurse_worklist_and_phone_entry(
    page, make_participant, site_a, nurse_a, blend, screenshot, browser_login
):
    from datetime import timedelta

    from django.utils import timezone

    from crf import services
    from crf.models import Questionnaire

    p = make_participant(site_a)
    services.schedule_anchor(
        participant=p, trial=blend, day0=timezone.localdate() - timedelta(days=30), is_actual=True
    )
    browser_login(page, page.base_url, "nurse_a")
    page.goto(page.base_url + reverse("crf:worklist") + "?bucket=overdue")
    assert p.study_number in page.locator("table").inner_text()
    screenshot(page, "crf-nurse-worklist")
    q = Questionnaire.objects.get(participant=p, timepoint__code="week4")
    page.goto(page.base_url + reverse("crf:questionnaire_entry", args=[q.pk]))
    page.select_option("select[name=mode]", "phone")
    for code in q.timepoint.instruments:
        for item, value in full_answers(code).items():
            name = f"{code}-{item}"
            if isinstance(value, list):
                for i, row in enumerate(value):
                    page.locator(f'select[name="{name}__drug"]').nth(i).select_option(row["drug"])
                    page.locator(f'select[name="{name}__route"]').nth(i).select_option(row["route"])
                    page.locator(f'input[name="{name}__dose"]').nth(i).fill(str(row["daily_dose"]))
                    page.locator(f'select[name="{name}__unit"]').nth(i).select_option(row["unit"])
            elif page.locator(f'input[type=radio][name="{name}"]').count():
                page.locator(f'input[name="{name}"][value="{value}"]').check()
            else:
                page.locator(f'[name="{name}"]').fill(str(value))
    page.locator("form button.btn-primary").click()
    page.wait_for_load_state("networkidle")
    screenshot(page, "crf-nurse-entered")
    errors = page.locator(".patient-error, .invalid-feedback, .alert-danger").all_inner_texts()
    assert not errors, errors
    q.refresh_from_db()
    assert q.status == "completed" and q.mode == "phone" and q.entered_by == nurse_a
