"""Nurse side: worklist (scoped, fixed query count), questionnaire page, paper/phone entry
(mode recorded, scores computed), correction with a reason (scores recomputed, audited),
the participant-page panel, the demo mail page, and the role refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from core.selectors import audit_trail
from crf import selectors, services
from crf.models import InstrumentResponse, Questionnaire
from tests import factories
from tests.crf.conftest import full_answers, local_noon, post_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def week2(blend, participant):
    """Week 2 (pain + C15-PAL) of a participant, window open now, not answered."""
    return factories.QuestionnaireFactory(trial=blend, participant=participant, timepoint="week2")


def entry_data(q, mode="paper", **overrides):
    data = {"mode": mode, "completed_on": timezone.localdate().isoformat()}
    for code in q.timepoint.instruments:
        answers = full_answers(code) | overrides.get(code, {})
        data |= post_data(code, answers, prefix=f"{code}-")
    return data


def test_paper_entry_records_mode_user_and_scores(client, nurse_a, week2):
    client.force_login(nurse_a)
    url = reverse("crf:questionnaire_entry", args=[week2.pk])
    assert client.get(url).status_code == 200
    data = entry_data(week2, mode="phone", c15pal={"q1": 1, "q2": 1, "q3": 1})
    response = client.post(url, data)
    assert response.status_code == 302
    week2.refresh_from_db()
    assert week2.status == "completed" and week2.mode == "phone" and week2.entered_by == nurse_a
    assert week2.scores["c15pal"]["PF2"] == pytest.approx(14 * 100 / 15, abs=0.05)  # s = 9
    last = audit_trail(model=Questionnaire, pk=week2.pk)[-1]
    assert last.user_id == nurse_a.pk and last.changes["status"][1] == "completed"
    # the page shows it
    page = client.get(reverse("crf:questionnaire_detail", args=[week2.pk])).content.decode()
    row = page[page.index('<tr data-score="PF2"') :]
    row = row[: row.index("</tr>")]
    assert "93,3" in row or "93.3" in row


def test_invalid_entry_shows_field_errors_and_writes_nothing(client, nurse_a, week2):
    client.force_login(nurse_a)
    url = reverse("crf:questionnaire_entry", args=[week2.pk])
    data = entry_data(week2) | {"c15pal-q2": "9", "completed_on": "2999-01-01"}
    response = client.post(url, data)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="err-c15pal-q2"' in html
    assert "future" in html.lower() or "toekomst" in html
    week2.refresh_from_db()
    assert week2.status == "scheduled"
    assert not InstrumentResponse.objects.filter(questionnaire=week2).exists()


def test_correction_needs_a_reason_and_recomputes_scores(client, nurse_a, week2):
    client.force_login(nurse_a)
    client.post(reverse("crf:questionnaire_entry", args=[week2.pk]), entry_data(week2))
    week2.refresh_from_db()
    before = week2.scores["c15pal"]["PF2"]
    url = reverse("crf:questionnaire_correct", args=[week2.pk, "c15pal"])
    answers = full_answers("c15pal") | {"q1": 4, "q2": 4, "q3": 4}  # s = 0 -> 0
    data = post_data("c15pal", answers, prefix="c15pal-")
    # without a reason: refused, nothing changes
    response = client.post(url, data | {"reason": "  "})
    assert response.status_code == 400
    week2.refresh_from_db()
    assert week2.scores["c15pal"]["PF2"] == before
    response = client.post(url, data | {"reason": "typing error against the paper form"})
    assert response.status_code == 302
    week2.refresh_from_db()
    assert week2.scores["c15pal"]["PF2"] == 0
    r = InstrumentResponse.objects.get(questionnaire=week2, instrument="c15pal")
    answers_change = audit_trail(model=InstrumentResponse, pk=r.pk)[-2:]
    assert any(e.changes.get("answers") for e in answers_change)
    assert all(e.reason == "typing error against the paper form" for e in answers_change)
    score_change = audit_trail(model=Questionnaire, pk=week2.pk)[-1]
    assert score_change.reason == "typing error against the paper form"
    assert score_change.user_id == nurse_a.pk


def test_correction_service_refuses_without_reason(nurse_a, week2):
    services.questionnaire_enter(
        questionnaire=week2,
        user=nurse_a,
        mode="paper",
        completed_on=timezone.localdate(),
        answers={c: full_answers(c) for c in week2.timepoint.instruments},
    )
    with pytest.raises(services.ReasonRequired):
        services.questionnaire_answers_correct(
            questionnaire=week2,
            instrument="pain",
            answers=full_answers("pain"),
            user=nurse_a,
            reason="",
        )
    with pytest.raises(services.AlreadyCompleted):
        services.questionnaire_enter(
            questionnaire=week2,
            user=nurse_a,
            mode="paper",
            completed_on=timezone.localdate(),
            answers={},
        )


@pytest.mark.parametrize("who", ["nurse_b", "monitor", "statistician", "administrator"])
def test_entry_is_refused_to_other_roles_and_sites(client, request, week2, who):
    user = request.getfixturevalue(who)
    client.force_login(user)
    response = client.post(reverse("crf:questionnaire_entry", args=[week2.pk]), entry_data(week2))
    assert response.status_code in (403, 404)
    week2.refresh_from_db()
    assert week2.status == "scheduled"


@pytest.mark.parametrize(
    ("who", "status"),
    [("nurse_b", 404), ("statistician", 403), ("administrator", 403), ("monitor", 200)],
)
def test_detail_access(client, request, week2, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("crf:questionnaire_detail", args=[week2.pk])).status_code == status


def test_worklist_is_scoped_and_has_a_fixed_query_count(
    client, blend, make_prom_participant, site_a, site_b, nurse_a, django_assert_max_num_queries
):
    def make(site, n):
        for _ in range(n):
            p = make_prom_participant(site)
            services.schedule_anchor(
                participant=p,
                trial=blend,
                day0=timezone.localdate() - timedelta(days=28),
                is_actual=True,
            )

    make(site_a, 2)
    make(site_b, 1)
    client.force_login(nurse_a)
    url = reverse("crf:worklist")
    with django_assert_max_num_queries(12) as small:
        response = client.get(url + "?bucket=overdue")
    assert response.status_code == 200
    rows = list(response.context["page"].object_list)
    assert rows and {q.participant.site_id for q in rows} == {site_a.pk}
    make(site_a, 6)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url + "?bucket=overdue")
    assert len(response.context["page"].object_list) == 8  # week 4 overdue for 8 of ours


def test_worklist_pages_and_capped_counts(
    client, blend, make_prom_participant, site_a, nurse_a, monkeypatch
):
    """Next / previous through the bucket, closing soonest first; the tab counts stop at
    the cap ("2+", "more than 2" for screen readers) instead of counting every row."""
    import html as html_lib
    import re

    from core import pagination
    from crf import views

    monkeypatch.setattr(views, "WORKLIST_PAGE_SIZE", 2)
    monkeypatch.setattr(pagination, "COUNT_CAP", 2)
    for days in (28, 29, 30):
        services.schedule_anchor(
            participant=make_prom_participant(site_a),
            trial=blend,
            day0=timezone.localdate() - timedelta(days=days),
            is_actual=True,
        )
    client.force_login(nurse_a)
    url = reverse("crf:worklist")
    first = client.get(url + "?bucket=overdue")
    rows = list(first.context["page"].object_list)
    html = first.content.decode()
    assert len(rows) == 2 and "2+" in html and "meer dan 2" in html  # Dutch: the default language
    nxt = html_lib.unescape(re.search(r'rel="next" href="([^"]+)"', html).group(1))
    assert nxt.startswith("?bucket=overdue&cursor=")
    second = client.get(url + nxt)
    more = list(second.context["page"].object_list)
    assert len(more) == 1 and not second.context["page"].has_next
    everything = rows + more
    assert [q.pk for q in everything] == [
        q.pk for q in selectors.worklist(user=nurse_a, bucket="overdue")
    ]
    assert [q.closes_at for q in everything] == sorted(q.closes_at for q in everything)


def test_worklist_buckets(blend, participant, nurse_a, nurse_b):
    services.schedule_anchor(
        participant=participant,
        trial=blend,
        day0=timezone.localdate() - timedelta(days=28),
        is_actual=True,
    )
    now = timezone.now()
    codes = {q.timepoint.code for q in selectors.worklist(user=nurse_a, bucket="open", at=now)}
    assert codes == {"week4"}  # week 4 window (-7..+7) is the only one open
    assert [q.timepoint.code for q in selectors.worklist(user=nurse_a, bucket="overdue")] == [
        "week4"
    ]
    Questionnaire.objects.filter(participant=participant, timepoint__code="week4").update(
        status="failed", next_action_at=None, last_error="SMTPException"
    )
    assert [q.timepoint.code for q in selectors.worklist(user=nurse_a, bucket="failed")] == [
        "week4"
    ]
    assert not selectors.worklist(user=nurse_b, bucket="failed").exists()


def test_worklist_refused_to_statistician_and_admin(client, statistician, administrator):
    for user in (statistician, administrator):
        client.force_login(user)
        assert client.get(reverse("crf:worklist")).status_code == 403


def test_participant_panel(client, nurse_a, nurse_b, statistician, week2, participant):
    services.questionnaire_enter(
        questionnaire=week2,
        user=nurse_a,
        mode="paper",
        completed_on=timezone.localdate(),
        answers={c: full_answers(c) for c in week2.timepoint.instruments},
    )
    panel = selectors.participant_panel(user=nurse_a, participant=participant)
    assert panel["template"] == "crf/_participant_panel.html" and panel["banner"] is None
    rows = panel["context"]["questionnaire_rows"]
    assert len(rows) == 9
    row = next(r for r in rows if r["q"].timepoint.code == "week2")
    assert row["q"].status == "completed"
    assert {k: v for k, v, _decimals in row["scores"]}["PF2"] is not None
    texts = [entry["text"] for entry in panel["timeline"]]
    assert any("completed" in text or "ingevuld" in text for text in texts)
    assert selectors.participant_panel(user=nurse_b, participant=participant) is None
    assert selectors.participant_panel(user=statistician, participant=participant) is None
    from django.template.loader import render_to_string

    html = render_to_string(panel["template"], panel["context"])
    assert 'data-timepoint="week2"' in html and 'data-score="PF2"' in html


def test_demo_mail_page_lists_files_for_staff_in_debug_only(
    client, nurse_a, tmp_path, statistician, participant, open_questionnaire
):
    _q, token = open_questionnaire(participant)  # a mail of nurse_a's site (test_demo_mail.py)
    (tmp_path / "20260101-000000-1.log").write_text(
        f"Subject: Uw PRESENT-vragenlijst\n\nhttp://testserver/crf/q/{token}/\n"
    )
    with override_settings(EMAIL_FILE_PATH=str(tmp_path), DEBUG=True):
        client.force_login(nurse_a)
        page = client.get(reverse("crf:demo_mail")).content.decode()
        assert "20260101-000000-1.log" in page
        page = client.get(reverse("crf:demo_mail_file", args=["20260101-000000-1.log"]))
        assert "Uw PRESENT-vragenlijst" in page.content.decode()
        assert client.get(reverse("crf:demo_mail_file", args=["..%2Fsecret"])).status_code == 404
        client.force_login(statistician)
        assert client.get(reverse("crf:demo_mail")).status_code == 403
    with override_settings(EMAIL_FILE_PATH=str(tmp_path), DEBUG=False):
        client.force_login(nurse_a)
        assert client.get(reverse("crf:demo_mail")).status_code == 404


def test_nurse_can_send_a_failed_invitation_again(client, nurse_a, nurse_b, week2, mailoutbox):
    Questionnaire.objects.filter(pk=week2.pk).update(
        status="failed", attempts=5, last_error="SMTPException", next_action_at=None
    )
    url = reverse("crf:questionnaire_send_retry", args=[week2.pk])
    client.force_login(nurse_b)
    assert client.post(url).status_code == 404
    client.force_login(nurse_a)
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 302
    week2.refresh_from_db()
    assert week2.status == "open" and week2.attempts == 0 and week2.last_error == ""
    last = audit_trail(model=Questionnaire, pk=week2.pk)[-1]
    assert last.user_id == nurse_a.pk and last.reason == "invitation to be sent again"
    services.questionnaires_sweep(now=local_noon(1))
    week2.refresh_from_db()
    assert week2.status == "sent" and len(mailoutbox) == 1
    # a sent one cannot be "sent again" this way
    with pytest.raises(services.NotAnswerable):
        services.questionnaire_send_retry(questionnaire=week2, user=nurse_a)


@pytest.mark.parametrize("who", ["nurse_b", "monitor", "statistician", "administrator"])
def test_correction_is_refused_to_other_roles_and_sites(client, request, nurse_a, week2, who):
    services.questionnaire_enter(
        questionnaire=week2,
        user=nurse_a,
        mode="paper",
        completed_on=timezone.localdate(),
        answers={c: full_answers(c) for c in week2.timepoint.instruments},
    )
    before = InstrumentResponse.objects.get(questionnaire=week2, instrument="c15pal").answers
    client.force_login(request.getfixturevalue(who))
    url = reverse("crf:questionnaire_correct", args=[week2.pk, "c15pal"])
    data = post_data("c15pal", full_answers("c15pal", choice_index=3), prefix="c15pal-")
    response = client.post(url, data | {"reason": "try"})
    assert response.status_code in (403, 404)
    assert (
        InstrumentResponse.objects.get(questionnaire=week2, instrument="c15pal").answers == before
    )


def test_staff_pages_need_a_login(client, week2):
    for url in (
        reverse("crf:worklist"),
        reverse("crf:questionnaire_detail", args=[week2.pk]),
        reverse("crf:questionnaire_entry", args=[week2.pk]),
        reverse("crf:demo_mail"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_participant_panel_query_count_is_fixed(
    blend, make_prom_participant, site_a, nurse_a, django_assert_max_num_queries
):
    p = make_prom_participant(site_a)
    services.schedule_anchor(participant=p, trial=blend, day0=timezone.localdate(), is_actual=True)
    from core.access import access_for

    access_for(nurse_a).grants  # noqa: B018 - loaded once per request in real use
    with django_assert_max_num_queries(1):
        panel = selectors.participant_panel(user=nurse_a, participant=p)
    assert len(panel["context"]["questionnaire_rows"]) == 9


def test_patient_pages_refuse_other_methods(client, participant, open_questionnaire):
    from django.urls import reverse as r

    q, token = open_questionnaire(participant)
    assert client.put(r("crf:patient_start", args=[token])).status_code == 405
    assert client.delete(r("crf:patient_submit", args=[token])).status_code == 405


def test_score_table_in_instrument_order_with_names_precision_and_breadcrumb(
    client, nurse_a, blend, participant
):
    """Scales in the instrument's order with their names (PF2 first), each value with its
    scale's precision (EQ-5D-5L index to 3 decimals), and a way back to the participant."""
    services.schedule_anchor(
        participant=participant,
        trial=blend,
        day0=timezone.localdate() - timedelta(days=28),
        is_actual=True,
    )
    week4 = Questionnaire.objects.get(participant=participant, timepoint__code="week4")
    answers = {c: full_answers(c) for c in week4.timepoint.instruments}
    answers["eq5d5l"] = answers["eq5d5l"] | {"mo": 2, "sc": 1, "ua": 3, "pd": 4, "ad": 5}
    services.questionnaire_enter(
        questionnaire=week4,
        user=nurse_a,
        mode="paper",
        completed_on=timezone.localdate(),
        answers=answers,
    )
    week4.refresh_from_db()
    assert week4.scores["eq5d5l"]["index"] == 0.05
    client.force_login(nurse_a)
    response = client.get(
        reverse("crf:questionnaire_detail", args=[week4.pk]), HTTP_ACCEPT_LANGUAGE="en"
    )
    html = response.content.decode()
    c15 = html[html.index('data-scores="c15pal"') :]
    c15 = c15[: c15.index("</table>")]
    order = [c15.index(f'data-score="{k}"') for k in ("PF2", "EF", "FA", "NV", "PA", "QL")]
    assert order == sorted(order)
    assert "Physical functioning" in c15
    assert c15.index("Physical functioning") < c15.index("Global quality of life")
    eq5d = html[html.index('data-scores="eq5d5l"') :]
    eq5d = eq5d[: eq5d.index("</table>")]
    assert "0.050" in eq5d
    participant_url = reverse("cohort:participant_detail", args=[participant.study_number])
    crumbs = html[html.index('class="breadcrumb') :]
    assert f'href="{participant_url}"' in crumbs[: crumbs.index("</ol>")]
    # the participant page's panel shows the index with three decimals too
    page = client.get(participant_url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    row = page[page.index('data-timepoint="week4"') :]
    assert "0.050" in row[: row.index("</tr>")]
