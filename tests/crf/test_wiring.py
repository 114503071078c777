"""Wiring: the sweep is on the static beat schedule (every few minutes, next to the
heartbeat), the task runs the service as a system actor, patient URLs are scrubbed from
log lines, and the demo seed skips quietly without randomised participants."""

from __future__ import annotations

import io
import logging

import pytest
from django.urls import reverse

from blend.celery import app
from core.logging import ScrubTokenFilter


def test_sweep_is_on_the_beat_schedule_every_two_to_five_minutes(monkeypatch):
    schedule = app.conf.beat_schedule
    assert "worker-heartbeat" in schedule
    entry = schedule["crf-questionnaires-sweep"]
    assert entry["task"] == "crf.tasks.questionnaires_sweep"
    assert 120 <= float(entry["schedule"]) <= 300
    assert entry["options"]["expires"] < float(entry["schedule"])


def test_task_is_registered_and_acks_late():
    from crf.tasks import questionnaires_sweep

    assert questionnaires_sweep.name in app.tasks
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost


@pytest.mark.django_db
def test_task_body_runs_the_sweep(blend):
    from crf.tasks import questionnaires_sweep

    result = questionnaires_sweep.run()
    assert set(result) >= {"invitations", "reminders", "missed", "failed", "examined"}


def test_patient_links_are_scrubbed_from_log_lines():
    token = "Zx9_-" * 8
    path = reverse("crf:patient_step", args=[token, 2])
    record = logging.LogRecord(
        "django.request", logging.WARNING, "", 0, "Bad Request: %s", (path,), None
    )
    ScrubTokenFilter().filter(record)
    assert token not in record.getMessage()
    assert "/q/[redacted]" in record.getMessage()


@pytest.mark.django_db
def test_demo_seed_skips_quietly_without_randomised_participants():
    from crf import demo

    out = io.StringIO()
    demo.seed(out)
    assert out.getvalue() == ""
