"""The participant timeline: events known only by their date show the date (never an
invented time) and the timeline is ordered by date, then by the time the record was made."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from cohort.models import Participant
from core import hooks

pytestmark = pytest.mark.django_db


def _at(day, hour, minute=0):
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def _registered_at(participant, at):
    Participant.objects.filter(pk=participant.pk).update(registered_at=at)
    participant.refresh_from_db()


def _timeline_items(html: str) -> list[tuple[str, str]]:
    """(date/time shown, text) of every timeline entry, in page order."""
    block = html.split('data-testid="timeline"', 1)[1].split("</ol>", 1)[0]
    items = []
    for li in re.findall(r"<li.*?</li>", block, flags=re.S):
        shown = re.search(r'<div class="small text-muted">(.*?)</div>', li, flags=re.S)
        text = re.search(r'<div class="timeline-text">(.*?)</div>', li, flags=re.S)
        items.append((shown.group(1).strip(), re.sub(r"<.*?>", "", text.group(1)).strip()))
    return items


@pytest.fixture
def page_of(nurse_a):
    def _page(participant) -> list[tuple[str, str]]:
        client = Client()
        client.force_login(nurse_a)
        response = client.get(f"/cohort/{participant.study_number}/", HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 200
        return _timeline_items(response.content.decode())

    return _page


def test_same_day_consent_follows_the_registration_it_was_recorded_after(
    nurse_a, participant_a, consented, page_of
):
    # registered earlier today (this very minute, so it holds at any hour of the day)
    registered = timezone.localtime().replace(second=0, microsecond=0)
    today = registered.date()
    _registered_at(participant_a, registered)
    consented(participant_a, nurse_a, on=today)  # date only, recorded now (after registering)
    items = page_of(participant_a)
    assert items[0][1].startswith("Registered")
    assert items[0][0] == f"{registered:%Y-%m-%d %H:%M}"
    consent = [shown for shown, text in items if text.startswith("Consent")]
    assert consent == [today.isoformat()] * 4  # the date, no time


def test_date_only_panel_entries_show_no_time_and_sort_by_when_they_were_recorded(
    participant_a, page_of, monkeypatch
):
    """A decision entered with a date only, on the registration day: shown after the
    registration (recorded later), without an invented 12:00."""
    today = timezone.localdate()
    _registered_at(participant_a, _at(today, 13))

    def participant_panel(*, user, participant):
        return {
            "timeline": [
                {"on": today, "recorded_at": _at(today, 15), "text": "Intervention accepted"},
                {"on": _at(today, 9), "recorded_at": _at(today, 9), "text": "Screened early"},
                {
                    "on": today - timedelta(days=1),
                    "recorded_at": _at(today, 16),
                    "text": "Letter of yesterday",
                },
            ]
        }

    monkeypatch.setattr(hooks.participant_panels, "_subscribers", [participant_panel])
    items = page_of(participant_a)
    assert [text for _shown, text in items] == [
        "Letter of yesterday",
        "Screened early",
        items[2][1],  # registered
        "Intervention accepted",
    ]
    assert items[2][1].startswith("Registered")
    assert {t: s for s, t in items}["Intervention accepted"] == today.isoformat()
    assert {t: s for s, t in items}["Screened early"] == f"{today:%Y-%m-%d} 09:00"
    assert "12:00" not in " ".join(s for s, _t in items)


def test_questionnaire_completed_on_a_date_only_follows_its_invitation(
    blend,
    participant_a,
    page_of,
):
    """A paper questionnaire dated today (no time), entered after the invitation went out
    today: the invitation first, then the completion with its date only."""
    import importlib

    from django.apps import apps

    from crf.models import Questionnaire, Timepoint

    if not Timepoint.objects.filter(trial=blend).exists():
        importlib.import_module("crf.migrations.0002_blend_schedule").create_schedule(apps, None)
    tp = Timepoint.objects.filter(trial=blend).order_by("day_offset").first()
    today = timezone.localdate()
    _registered_at(participant_a, _at(today - timedelta(days=3), 9))
    Questionnaire.objects.create(
        participant=participant_a,
        trial=blend,
        timepoint=tp,
        status="completed",
        day0=today,
        opens_at=_at(today - timedelta(days=1), 0),
        due_at=_at(today, 0),
        closes_at=_at(today + timedelta(days=3), 0),
        sent_at=_at(today, 14),
        completed_on=today,
        completion_recorded_at=_at(today, 16),
        mode="paper",
    )
    items = page_of(participant_a)
    texts = [text for _shown, text in items]
    sent = next(i for i, t in enumerate(texts) if t.endswith("sent"))
    done = next(i for i, t in enumerate(texts) if t.endswith("completed"))
    assert sent < done
    assert items[sent][0] == f"{today:%Y-%m-%d} 14:00"
    assert items[done][0] == today.isoformat()
