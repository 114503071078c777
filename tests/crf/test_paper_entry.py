"""Paper and phone entry by a nurse (SPEC.md §3.6): a blank entry is refused; a partial one
is saved only after the nurse confirmed how many questions are unanswered; the date answered
may not lie before registration, before consent (b), after death or in the future; a date
outside the timepoint's window needs a confirmation and flags the record "outside window";
a date without a time is stored as a date (no invented 12:00)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.selectors import audit_trail
from crf import services
from crf.models import InstrumentResponse, Questionnaire
from tests import factories
from tests.crf.conftest import full_answers, post_data

pytestmark = pytest.mark.django_db

REGISTERED_ON = date(2024, 1, 5)  # consent (a) and (b) follow on 10 Jan 2024 (conftest)


@pytest.fixture
def participant(make_prom_participant, site_a):
    """Registered on 5 Jan 2024 (consent on 10 Jan 2024), so earlier dates can be tried."""
    return factories.backdate_registration(make_prom_participant(site_a), REGISTERED_ON, time(9, 0))


@pytest.fixture
def week2(blend, participant):
    """Week 2 (pain + C15-PAL); its window is today - 3 .. today + 3."""
    return factories.QuestionnaireFactory(trial=blend, participant=participant, timepoint="week2")


def entry_url(q):
    return reverse("crf:questionnaire_entry", args=[q.pk])


def all_answers(q):
    return {code: full_answers(code) for code in q.timepoint.instruments}


def entry_post(q, answers, *, day=None, **extra):
    data = {"mode": "paper", "completed_on": (day or timezone.localdate()).isoformat()}
    for code, values in answers.items():
        data |= post_data(code, values, prefix=f"{code}-")
    return data | extra


def state(q):
    """What a refused entry must leave untouched."""
    q.refresh_from_db()
    return (
        q.status,
        q.completed_on,
        q.completed_at,
        q.mode,
        q.outside_window,
        InstrumentResponse.objects.filter(questionnaire=q).count(),
        len(audit_trail(model=Questionnaire, pk=q.pk)),
    )


# --- item 2: blank and partial entries -------------------------------------------------------
def test_service_refuses_an_entry_without_any_answer(nurse_a, week2):
    before = state(week2)
    with pytest.raises(services.EntryRefused) as exc:
        services.questionnaire_enter(
            questionnaire=week2,
            user=nurse_a,
            mode="paper",
            completed_on=timezone.localdate(),
            answers={"pain": {}, "c15pal": {"q1": None}},
        )
    assert "__all__" in exc.value.errors
    assert state(week2) == before
    assert week2.status == "scheduled"


def test_blank_entry_page_is_refused_with_a_message_and_writes_nothing(client, nurse_a, week2):
    client.force_login(nurse_a)
    before = state(week2)
    response = client.post(entry_url(week2), entry_post(week2, {}))
    assert response.status_code == 400
    html = response.content.decode()
    assert "No question has been answered" in html or "Er is geen enkele vraag" in html
    assert state(week2) == before


def test_partial_entry_shows_the_unanswered_count_and_saves_only_when_confirmed(
    client, nurse_a, week2
):
    client.force_login(nurse_a)
    answers = all_answers(week2)
    answers["c15pal"] = {k: v for k, v in answers["c15pal"].items() if k not in ("q14", "q15")}
    before = state(week2)
    response = client.post(entry_url(week2), entry_post(week2, answers))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-unanswered="2"' in html
    assert 'name="confirm_unanswered" value="2"' in html
    assert state(week2) == before  # nothing saved before the confirmation

    # a confirmation of another count (the answers changed since) asks again
    response = client.post(entry_url(week2), entry_post(week2, answers, confirm_unanswered="3"))
    assert response.status_code == 200 and state(week2) == before

    response = client.post(entry_url(week2), entry_post(week2, answers, confirm_unanswered="2"))
    assert response.status_code == 302
    week2.refresh_from_db()
    assert week2.status == "completed" and week2.entered_by == nurse_a
    # scored with the missing-item rules: EF needs both items, QL its single item
    assert week2.scores["c15pal"]["EF"] is None and week2.scores["c15pal"]["QL"] is None
    assert week2.scores["c15pal"]["PF2"] is not None
    assert (
        InstrumentResponse.objects.get(questionnaire=week2, instrument="c15pal").answers
        == (answers["c15pal"])
    )


def test_service_asks_for_confirmation_of_unanswered_items(nurse_a, week2):
    answers = all_answers(week2)
    answers["pain"] = {"worst": 3}
    before = state(week2)
    with pytest.raises(services.ConfirmationRequired) as exc:
        services.questionnaire_enter(
            questionnaire=week2,
            user=nurse_a,
            mode="phone",
            completed_on=timezone.localdate(),
            answers=answers,
        )
    assert exc.value.unanswered == 11  # 12 pain items apply, 1 answered
    assert exc.value.unanswered_by_instrument == {"pain": 11}
    assert exc.value.outside_window is False
    assert state(week2) == before
    services.questionnaire_enter(
        questionnaire=week2,
        user=nurse_a,
        mode="phone",
        completed_on=timezone.localdate(),
        answers=answers,
        confirm_unanswered=11,
    )
    week2.refresh_from_db()
    assert week2.status == "completed" and week2.scores["pain"]["worst"] == 3.0
    assert week2.scores["pain"]["severity"] is None


# --- item 3: impossible dates; outside the window -------------------------------------------
@pytest.mark.parametrize(
    ("day", "words"),
    [
        (date(2024, 1, 3), ("registration", "5 Jan 2024")),
        (date(2024, 1, 8), ("consent (b)", "10 Jan 2024")),
        ("tomorrow", ("future",)),
    ],
)
def test_impossible_completion_dates_are_refused_naming_the_stored_date(
    client, nurse_a, week2, day, words
):
    if day == "tomorrow":
        day = timezone.localdate() + timedelta(days=1)
    before = state(week2)
    with pytest.raises(services.EntryRefused) as exc:
        services.questionnaire_enter(
            questionnaire=week2,
            user=nurse_a,
            mode="paper",
            completed_on=day,
            answers=all_answers(week2),
            confirm_outside_window=day,
        )
    message = exc.value.errors["completed_on"]
    assert state(week2) == before
    client.force_login(nurse_a)
    response = client.post(
        entry_url(week2),
        entry_post(week2, all_answers(week2), day=day, confirm_outside_window=day.isoformat()),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    html = response.content.decode()
    for word in words:
        assert word in html, (word, message)
    assert state(week2) == before


def test_a_completion_dated_after_death_is_refused(nurse_a, week2, participant):
    from cohort.models import Death

    Questionnaire.objects.filter(pk=week2.pk).update(status="missed", next_action_at=None)
    died = timezone.localdate() - timedelta(days=2)
    Death.objects.create(
        participant=participant, died_on=died, source="family", recorded_by=nurse_a
    )
    before = state(week2)
    with pytest.raises(services.EntryRefused) as exc:
        services.questionnaire_enter(
            questionnaire=week2,
            user=nurse_a,
            mode="paper",
            completed_on=timezone.localdate(),
            answers=all_answers(week2),
        )
    assert (
        died.isoformat() in exc.value.errors["completed_on"]
        or str(died.year) in (exc.value.errors["completed_on"])
    )
    assert state(week2) == before


def test_a_date_outside_the_window_needs_a_confirmation_and_is_flagged(
    client, nurse_a, week2, participant, api_client_for
):
    client.force_login(nurse_a)
    day = timezone.localdate() - timedelta(days=5)  # window opens today - 3
    before = state(week2)
    response = client.post(entry_url(week2), entry_post(week2, all_answers(week2), day=day))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-outside-window="1"' in html
    assert f'name="confirm_outside_window" value="{day.isoformat()}"' in html
    assert state(week2) == before

    response = client.post(
        entry_url(week2),
        entry_post(week2, all_answers(week2), day=day, confirm_outside_window=day.isoformat()),
    )
    assert response.status_code == 302
    week2.refresh_from_db()
    assert week2.status == "completed" and week2.outside_window is True
    assert week2.completed_on == day
    last = audit_trail(model=Questionnaire, pk=week2.pk)[-1]
    assert last.changes["outside_window"][1] is True and last.user_id == nurse_a.pk
    # shown on the nurse pages and in the API
    page = client.get(reverse("crf:questionnaire_detail", args=[week2.pk])).content.decode()
    assert 'data-testid="outside-window"' in page
    participant_page = client.get(
        reverse("cohort:participant_detail", args=[participant.study_number])
    ).content.decode()
    assert 'data-testid="outside-window"' in participant_page
    body = api_client_for(nurse_a).get(
        reverse("api:participant-questionnaires", args=[participant.study_number])
    )
    row = next(r for r in body.json()["results"] if r["timepoint"]["code"] == "week2")
    assert row["outside_window"] is True and row["completed_on"] == day.isoformat()


def test_an_in_window_entry_is_not_flagged(nurse_a, week2):
    services.questionnaire_enter(
        questionnaire=week2,
        user=nurse_a,
        mode="paper",
        completed_on=timezone.localdate() - timedelta(days=3),  # the first window day
        answers=all_answers(week2),
    )
    week2.refresh_from_db()
    assert week2.status == "completed" and week2.outside_window is False


# --- item 5: no invented times ---------------------------------------------------------------
def test_a_date_without_a_time_is_stored_as_a_date_only(client, nurse_a, week2):
    client.force_login(nurse_a)
    day = timezone.localdate() - timedelta(days=1)
    response = client.post(entry_url(week2), entry_post(week2, all_answers(week2), day=day))
    assert response.status_code == 302
    week2.refresh_from_db()
    assert week2.completed_on == day
    assert week2.completed_at is None  # the time is unknown, not 12:00
    assert week2.completion_recorded_at is not None
    page = client.get(reverse("crf:questionnaire_detail", args=[week2.pk])).content.decode()
    assert "12:00" not in page


def test_a_known_time_is_kept(nurse_a, week2):
    day = timezone.localdate() - timedelta(days=1)
    services.questionnaire_enter(
        questionnaire=week2,
        user=nurse_a,
        mode="phone",
        completed_on=day,
        completed_time=time(9, 30),
        answers=all_answers(week2),
    )
    week2.refresh_from_db()
    assert timezone.localtime(week2.completed_at).time() == time(9, 30)
    assert week2.completed_on == day


def test_a_time_later_today_is_in_the_future(nurse_a, week2):
    later = timezone.localtime() + timedelta(minutes=2)
    if later.date() != timezone.localdate():
        pytest.skip("too close to midnight")
    before = state(week2)
    with pytest.raises(services.EntryRefused):
        services.questionnaire_enter(
            questionnaire=week2,
            user=nurse_a,
            mode="phone",
            completed_on=later.date(),
            completed_time=later.time().replace(microsecond=0),
            answers=all_answers(week2),
        )
    assert state(week2) == before


def test_migration_drops_the_invented_noon_and_rounds_stored_indexes(nurse_a, week2):
    """Rows entered before this change: the 12:00 of a paper entry was invented (only a
    date was entered), and the EQ-5D-5L index was stored at full float precision."""
    import importlib

    from django.apps import apps

    backfill = importlib.import_module(
        "crf.migrations.0006_completion_date_outside_window"
    ).backfill
    noon = timezone.make_aware(datetime.combine(timezone.localdate(), time(12, 0)))
    Questionnaire.objects.filter(pk=week2.pk).update(
        status="completed",
        mode="paper",
        completed_at=noon,
        completed_on=timezone.localdate(),
        completion_recorded_at=noon,
        scores={"eq5d5l": {"index": 0.9179999999999999, "vas": 70.0}},
    )
    backfill(apps, None)
    week2.refresh_from_db()
    assert week2.completed_at is None and week2.completed_on == timezone.localdate()
    assert week2.scores["eq5d5l"]["index"] == 0.918
    assert week2.outside_window is False
