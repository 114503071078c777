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
    page, make_prom_participant, site_a, nurse_a, blend, screenshot, browser_login
):
    from datetime import timedelta

    from django.utils import timezone

    from crf import services
    from crf.models import Questionnaire

    p = make_prom_participant(site_a)
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


def test_patient_skips_questions_on_a_phone_is_warned_and_sends_anyway(
    phone_page, participant, open_questionnaire, screenshot
):
    """No item is forced; the final screen says how many are unanswered (go back / send
    anyway); scoring applies the missing-item rules."""
    q, token = open_questionnaire(participant, "week2")  # pain, then the C15-PAL
    base = phone_page.base_url
    phone_page.goto(base + reverse("crf:patient_start", args=[token]))
    phone_page.locator("button[type=submit]").click()
    answer_screen(phone_page, {"worst": 5})  # pain: only the worst pain
    phone_page.locator("button[value=next]").click()
    c15 = {k: v for k, v in full_answers("c15pal").items() if k not in ("q14", "q15")}
    answer_screen(phone_page, c15)
    phone_page.locator("button[value=next]").click()

    warning = phone_page.locator("[data-unanswered]")
    assert warning.get_attribute("data-unanswered") == "13"  # 11 pain + 2 C15-PAL
    assert "13" in warning.inner_text()
    assert (
        phone_page.locator("a", has_text="Ga terug").count()
        + phone_page.locator("a", has_text="Go back").count()
        >= 1
    )
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone_page, "crf-phone-skip-warning", full_page=False)
    q.refresh_from_db()
    assert q.status == "sent"

    phone_page.locator("button[name=send_anyway]").click()
    phone_page.wait_for_load_state("networkidle")
    assert "/q/done/" in phone_page.url
    q.refresh_from_db()
    assert q.status == "completed" and q.mode == "epro"
    assert q.scores["pain"]["worst"] == 5.0 and q.scores["pain"]["severity"] is None
    assert q.scores["c15pal"]["EF"] is None and q.scores["c15pal"]["PF2"] is not None


def test_pain_page_keeps_the_medication_rows_and_shows_the_first_error_on_a_phone(
    phone_page, participant, open_questionnaire, screenshot
):
    from crf.models import InstrumentResponse

    q, token = open_questionnaire(participant, "week2")
    base = phone_page.base_url
    phone_page.goto(base + reverse("crf:patient_start", args=[token]))
    phone_page.locator("button[type=submit]").click()
    pain = full_answers("pain", choice_index=0)  # painkillers: yes
    pain["analgesics"] = [
        {"drug": "morphine", "route": "oral", "daily_dose": "abc", "unit": "mg/day"},
        {"drug": "paracetamol", "route": "oral", "daily_dose": 3000, "unit": "mg/day"},
    ]
    answer_screen(phone_page, pain)
    phone_page.locator("button[value=next]").click()
    phone_page.wait_for_selector(".has-error")
    phone_page.wait_for_load_state("networkidle")

    drugs = phone_page.locator('select[name="analgesics__drug"]')
    doses = phone_page.locator('input[name="analgesics__dose"]')
    assert [drugs.nth(0).input_value(), drugs.nth(1).input_value()] == ["morphine", "paracetamol"]
    assert [doses.nth(0).input_value(), doses.nth(1).input_value()] == ["abc", "3000"]
    assert phone_page.locator('select[name="analgesics__route"]').nth(0).input_value() == "oral"
    # the first error is on screen (the page does not open at the top)
    box = phone_page.locator("#item-analgesics").bounding_box()
    height = phone_page.evaluate("window.innerHeight")
    assert box is not None and -2 <= box["y"] < height / 3, box  # its question on top
    assert phone_page.evaluate("window.scrollY") > 0
    focused = phone_page.evaluate("document.activeElement.name")
    assert focused == "analgesics__drug"
    screenshot(phone_page, "crf-phone-pain-error", full_page=False)
    assert not InstrumentResponse.objects.filter(questionnaire=q).exists()


def test_score_table_in_the_instruments_order_with_names(
    page, participant, nurse_a, blend, screenshot, browser_login
):
    from datetime import timedelta

    from django.utils import timezone

    from crf import services
    from crf.models import Questionnaire

    services.schedule_anchor(
        participant=participant,
        trial=blend,
        day0=timezone.localdate() - timedelta(days=28),
        is_actual=True,
    )
    q = Questionnaire.objects.get(participant=participant, timepoint__code="week4")
    answers = {c: full_answers(c) for c in q.timepoint.instruments}
    answers["c15pal"] |= {"q1": 2, "q2": 2, "q3": 1}  # PF2 60.0
    answers["eq5d5l"] |= {"mo": 2, "sc": 1, "ua": 3, "pd": 4, "ad": 5}  # index 0.050
    services.questionnaire_enter(
        questionnaire=q,
        user=nurse_a,
        mode="paper",
        completed_on=timezone.localdate(),
        answers=answers,
    )
    browser_login(page, page.base_url, "nurse_a")
    page.goto(page.base_url + reverse("crf:questionnaire_detail", args=[q.pk]))
    rows = page.locator('table[data-scores="c15pal"] tbody tr')
    assert rows.first.get_attribute("data-score") == "PF2"
    assert "Lichamelijk functioneren" in rows.first.inner_text()
    assert "60,0" in rows.first.inner_text()
    index = page.locator('table[data-scores="eq5d5l"] tr[data-score="index"]').inner_text()
    assert "0,050" in index
    crumb = page.locator("nav[aria-label=breadcrumb] a", has_text=participant.study_number)
    assert crumb.count() == 1
    page.locator('table[data-scores="c15pal"]').scroll_into_view_if_needed()
    screenshot(page, "crf-nurse-score-table", full_page=False)
    crumb.click()
    page.wait_for_load_state("networkidle")
    assert participant.study_number in page.url
