"""The patient's pages: GET changes nothing, POST starts; one instrument per screen, saved
per screen; submit once; every unusable link gets the same neutral page; private headers;
Dutch by default, English if preferred; no staff navigation; PRESENT branding only."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from core.selectors import audit_trail
from crf.models import InstrumentResponse, Questionnaire, QuestionnaireLink
from tests.crf.conftest import full_answers, post_data

pytestmark = pytest.mark.django_db

FORBIDDEN_WORDS = ("BLEND", "trial", "Trial", "arm", "allocation", "loting", "randomis", "SBRT")


def start_url(token):
    return reverse("crf:patient_start", args=[token])


def step_url(token, n):
    return reverse("crf:patient_step", args=[token, n])


def submit_url(token):
    return reverse("crf:patient_submit", args=[token])


def assert_private(response):
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"


def assert_neutral(response):
    assert response.status_code == 404
    assert_private(response)
    assert "Deze link werkt niet" in response.content.decode()


def test_get_shows_start_page_and_changes_nothing(client, participant, open_questionnaire):
    q, token = open_questionnaire(participant)
    before = [(e.label, e.changes) for e in audit_trail(model=Questionnaire, pk=q.pk)]
    for _ in range(3):
        response = client.get(start_url(token))
        assert response.status_code == 200
        assert_private(response)
    q.refresh_from_db()
    assert q.started_at is None and q.status == "sent"
    assert [(e.label, e.changes) for e in audit_trail(model=Questionnaire, pk=q.pk)] == before
    html = response.content.decode()
    assert "PRESENT" in html and 'lang="nl"' in html
    assert "Start de vragenlijst" in html or "Start the questionnaire" in html
    for word in FORBIDDEN_WORDS:
        assert word not in html, word
    assert "navbar" not in html and "/logout/" not in html  # no staff chrome


def test_post_starts_then_screens_save_and_submit_once(client, participant, open_questionnaire):
    q, token = open_questionnaire(participant)  # week 2: pain, then C15-PAL
    response = client.post(start_url(token))
    assert response.status_code == 302 and response["Location"] == step_url(token, 1)
    q.refresh_from_db()
    assert q.started_at is not None

    # screen 1: pain; only one instrument on it
    page = client.get(step_url(token, 1)).content.decode()
    assert 'name="worst"' in page and 'name="q1"' not in page
    pain = full_answers("pain", choice_index=3)
    response = client.post(step_url(token, 1), post_data("pain", pain))
    assert response.status_code == 302 and response["Location"] == step_url(token, 2)
    saved = InstrumentResponse.objects.get(questionnaire=q, instrument="pain")
    assert saved.answers["worst"] == pain["worst"]

    # leave and come back: the answers are still there
    page = client.get(step_url(token, 1)).content.decode()
    assert f'name="worst" value="{pain["worst"]}" checked' in page

    c15 = full_answers("c15pal", choice_index=1)  # all "2", item 15 = 2
    response = client.post(step_url(token, 2), post_data("c15pal", c15))
    assert response.status_code == 302 and response["Location"] == submit_url(token)

    response = client.post(submit_url(token))
    assert response.status_code == 302 and response["Location"].startswith(
        reverse("crf:patient_done")
    )
    q.refresh_from_db()
    assert q.status == "completed" and q.mode == "epro" and q.completed_at
    # items 1-3 all "2": s = 12 - 6 = 6 -> 7 x 100/15 (SPEC.md §4.2)
    assert q.scores["c15pal"]["PF2"] == pytest.approx(7 * 100 / 15, abs=0.05)
    completed_at = q.completed_at
    events = len(audit_trail(model=Questionnaire, pk=q.pk))

    # a second submit (double click) is harmless: same landing page, nothing changes
    response = client.post(submit_url(token))
    assert response.status_code == 302 and response["Location"].startswith(
        reverse("crf:patient_done")
    )
    q.refresh_from_db()
    assert q.completed_at == completed_at
    assert len(audit_trail(model=Questionnaire, pk=q.pk)) == events
    # ... but the used link no longer opens anything
    assert_neutral(client.get(start_url(token)))
    assert_neutral(client.post(step_url(token, 1), post_data("pain", pain)))


def test_pf2_score_stored_with_the_completed_questionnaire(client, participant, open_questionnaire):
    q, token = open_questionnaire(participant)
    client.post(start_url(token))
    client.post(step_url(token, 1), post_data("pain", full_answers("pain")))
    c15 = full_answers("c15pal") | {"q1": 2, "q2": 2, "q3": 1}  # s = 12 - 5 = 7 -> 9 x 100/15
    client.post(step_url(token, 2), post_data("c15pal", c15))
    client.post(submit_url(token))
    q.refresh_from_db()
    assert q.scores["c15pal"]["PF2"] == pytest.approx(60.0, abs=0.05)
    response = InstrumentResponse.objects.get(questionnaire=q, instrument="c15pal")
    assert response.instrument_version and response.scores["PF2"] == pytest.approx(60.0, abs=0.05)


def test_invalid_answers_get_field_messages_and_no_write(client, participant, open_questionnaire):
    q, token = open_questionnaire(participant)
    client.post(start_url(token))
    data = post_data("pain", full_answers("pain")) | {"worst": "11"}
    response = client.post(step_url(token, 1), data)
    assert response.status_code == 400
    assert 'class="patient-error"' in response.content.decode()
    assert not InstrumentResponse.objects.filter(questionnaire=q).exists()
    # submitting with nothing answered at all is refused on the final screen
    response = client.post(submit_url(token))
    assert response.status_code == 400
    q.refresh_from_db()
    assert q.status == "sent" and q.completed_on is None
    assert not InstrumentResponse.objects.filter(questionnaire=q).exists()


def test_forged_expired_used_and_stopped_links_get_the_same_neutral_page(
    client, participant, make_prom_participant, site_a, open_questionnaire, nurse_a
):
    from crf import services

    q, token = open_questionnaire(participant)
    forged = "A" * 43
    assert_neutral(client.get(start_url(forged)))
    assert_neutral(client.post(start_url(forged)))
    assert_neutral(client.get(step_url(forged, 1)))
    assert_neutral(client.get(start_url("x" * 500)))
    neutral_forged = client.get(start_url(forged)).content

    # expired: the link's validity ends with the window
    QuestionnaireLink.objects.filter(questionnaire=q).update(expires_at=timezone.now())
    response = client.get(start_url(token))
    assert_neutral(response)
    assert response.content == neutral_forged

    # stopped: a questionnaire withdrawal cancels it, the link dies with it
    other = make_prom_participant(site_a, email="other@example.invalid")
    q2, token2 = open_questionnaire(other)
    assert client.get(start_url(token2)).status_code == 200
    services.questionnaires_cancel_pending(participant=other, reason="withdrawal")
    response = client.get(start_url(token2))
    assert_neutral(response)
    assert response.content == neutral_forged


def test_a_token_never_opens_another_participants_questionnaire(
    client, make_prom_participant, site_a, site_b, open_questionnaire
):
    p1 = make_prom_participant(site_a, email="one@example.invalid")
    p2 = make_prom_participant(site_b, email="two@example.invalid")
    q1, token1 = open_questionnaire(p1)
    q2, token2 = open_questionnaire(p2)
    assert token1 != token2
    client.post(start_url(token1))
    client.post(step_url(token1, 1), post_data("pain", full_answers("pain", choice_index=7)))
    # answers saved through token 1 land on questionnaire 1 only
    assert InstrumentResponse.objects.filter(questionnaire=q1).count() == 1
    assert not InstrumentResponse.objects.filter(questionnaire=q2).exists()
    page2 = client.get(step_url(token2, 1)).content.decode()
    assert 'value="7" checked' not in page2
    # only the SHA-256 of a token is stored
    assert not QuestionnaireLink.objects.filter(token_hash=token1).exists()
    assert QuestionnaireLink.objects.filter(questionnaire=q1).count() == 1


def test_english_when_preferred(
    client, make_prom_participant, site_a, open_questionnaire, mailoutbox
):
    p = make_prom_participant(site_a, email="en@example.invalid", language="en")
    q, token = open_questionnaire(p)
    mail = [m for m in mailoutbox if "en@example.invalid" in m.to][-1]
    assert mail.subject == "Your PRESENT questionnaire"
    html = client.get(start_url(token)).content.decode()
    assert 'lang="en"' in html and "Start the questionnaire" in html


def test_invitation_mail_is_present_branded_and_names_no_trial(
    participant, open_questionnaire, mailoutbox
):
    q, token = open_questionnaire(participant)
    mail = mailoutbox[-1]
    assert "PRESENT" in mail.subject
    bodies = [mail.subject, mail.body] + [alt[0] for alt in mail.alternatives]
    for text in bodies:
        for word in FORBIDDEN_WORDS:
            assert word not in text, word
    assert token in mail.body


def test_patient_writes_keep_the_token_out_of_the_audit_context(
    client, participant, open_questionnaire
):
    import pghistory.models

    q, token = open_questionnaire(participant)
    client.post(start_url(token))
    metadata = [c.metadata for c in pghistory.models.Context.objects.all()]
    assert metadata
    assert all(token not in str(m) for m in metadata)


def test_posts_work_with_the_origin_a_no_referrer_page_sends(participant, open_questionnaire):
    """Browsers send ``Origin: null`` from a no-referrer page; the link token is the
    CSRF secret of these pages, so the POST is accepted (and no CSRF cookie is set)."""
    from django.test import Client

    q, token = open_questionnaire(participant)
    strict = Client(enforce_csrf_checks=True)
    get = strict.get(start_url(token))
    assert "csrftoken" not in get.cookies
    response = strict.post(start_url(token), HTTP_ORIGIN="null")
    assert response.status_code == 302
    # a forged token is still only the neutral page, with or without an origin
    assert_neutral(strict.post(start_url("B" * 43), HTTP_ORIGIN="https://evil.example"))


def test_link_dies_when_the_window_closes(client, participant, open_questionnaire):
    """Started but not submitted: at the close the row is missed and the link shows the
    neutral page; the saved answers stay (nothing is deleted)."""
    from crf import services

    q, token = open_questionnaire(participant)
    client.post(start_url(token))
    client.post(step_url(token, 1), post_data("pain", full_answers("pain")))
    services.questionnaires_sweep(now=q.closes_at)
    q.refresh_from_db()
    assert q.status == "missed"
    assert_neutral(client.get(start_url(token)))
    assert_neutral(client.post(submit_url(token)))
    assert InstrumentResponse.objects.filter(questionnaire=q).count() == 1


# --- a patient may skip any question (SPEC.md §3.6) -------------------------------------------
def test_patient_may_skip_questions_is_told_how_many_and_may_send_anyway(
    client, participant, open_questionnaire
):
    q, token = open_questionnaire(participant)  # week 2: pain (12 items apply), C15-PAL (15)
    client.post(start_url(token))
    page = client.get(step_url(token, 1)).content.decode()
    assert " required" not in page and "Please answer" not in page
    # pain: only the worst pain; nothing is forced
    response = client.post(step_url(token, 1), {"worst": "6", "action": "next"})
    assert response.status_code == 302 and response["Location"] == step_url(token, 2)
    assert InstrumentResponse.objects.get(questionnaire=q, instrument="pain").answers == {
        "worst": 6
    }
    # C15-PAL without items 14 and 15
    c15 = {k: v for k, v in full_answers("c15pal").items() if k not in ("q14", "q15")}
    response = client.post(step_url(token, 2), post_data("c15pal", c15))
    assert response.status_code == 302 and response["Location"] == submit_url(token)

    page = client.get(submit_url(token)).content.decode()
    assert 'data-unanswered="13"' in page  # 11 pain + 2 C15-PAL
    assert "13" in page
    assert step_url(token, 1) in page and step_url(token, 2) in page  # go back
    assert 'name="send_anyway"' in page
    q.refresh_from_db()
    assert q.status == "sent"

    response = client.post(submit_url(token), {"send_anyway": "1"})
    assert response.status_code == 302
    q.refresh_from_db()
    assert q.status == "completed" and q.mode == "epro"
    assert q.completed_on == timezone.localdate() and q.completed_at is not None
    assert q.outside_window is False
    # the missing-item rules: PF2 needs all three items (given), EF both (q14 missing),
    # QL its one item (missing); BPI severity needs all four severity items
    assert q.scores["c15pal"]["PF2"] is not None
    assert q.scores["c15pal"]["EF"] is None and q.scores["c15pal"]["QL"] is None
    assert q.scores["pain"]["worst"] == 6.0 and q.scores["pain"]["severity"] is None


def test_a_complete_questionnaire_has_no_skip_warning(client, participant, open_questionnaire):
    q, token = open_questionnaire(participant)
    client.post(start_url(token))
    client.post(step_url(token, 1), post_data("pain", full_answers("pain")))
    client.post(step_url(token, 2), post_data("c15pal", full_answers("c15pal")))
    page = client.get(submit_url(token)).content.decode()
    assert "data-unanswered" not in page
    assert client.post(submit_url(token)).status_code == 302
    q.refresh_from_db()
    assert q.status == "completed"


def test_pain_page_keeps_the_medication_rows_and_focuses_the_first_error(
    client, participant, open_questionnaire
):
    q, token = open_questionnaire(participant)
    client.post(start_url(token))
    data = post_data("pain", full_answers("pain", choice_index=0))  # uses painkillers: yes
    data |= {
        "analgesics__drug": ["morphine", "paracetamol"],
        "analgesics__route": ["oral", "oral"],
        "analgesics__dose": ["abc", "3000"],
        "analgesics__unit": ["mg/day", "mg/day"],
    }
    response = client.post(step_url(token, 1), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'value="morphine" selected' in html and 'value="paracetamol" selected' in html
    assert 'value="abc"' in html and 'value="3000"' in html
    assert html.count('value="oral" selected') == 2
    # the first error is focused on load (no script needed; CSP allows no inline script)
    first = html.index("has-error")
    assert "autofocus" in html[first:]
    assert html.count("autofocus") == 1
    assert 'href="#item-analgesics"' in html  # the alert links to the first error
    assert not InstrumentResponse.objects.filter(questionnaire=q).exists()


def test_mails_are_signed_with_the_participants_site(
    make_prom_participant, site_b, open_questionnaire, mailoutbox
):
    p = make_prom_participant(site_b, email="partner@example.invalid")
    open_questionnaire(p)
    mail = [m for m in mailoutbox if "partner@example.invalid" in m.to][-1]
    for text in [mail.body] + [alt[0] for alt in mail.alternatives]:
        assert "UMC Utrecht" not in text
        assert "Site B" in text


def test_patient_pages_name_the_participants_site_not_umc_utrecht(
    client, make_prom_participant, site_b, open_questionnaire
):
    p = make_prom_participant(site_b, email="partner2@example.invalid")
    q, token = open_questionnaire(p)
    html = client.get(start_url(token)).content.decode()
    assert "UMC Utrecht" not in html and "Site B" in html
