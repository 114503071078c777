"""Questionnaire settings, read when used (never at import time).

Each value comes from Django settings when defined there, else from the
environment variable of the same name, else the default. Reading the
environment too lets a worker subprocess be configured per test.
"""

from __future__ import annotations

import os

from django.conf import settings


def _int(name: str, default: int) -> int:
    value = getattr(settings, name, None)
    if value is None:
        raw = os.environ.get(name, "")
        value = int(raw) if raw.strip() else default
    return int(value)


def _float(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        raw = os.environ.get(name, "")
        value = float(raw) if raw.strip() else default
    return float(value)


def contact_hours() -> tuple[int, int]:
    start, end = getattr(settings, "PATIENT_CONTACT_HOURS", (8, 21))
    return int(start), int(end)


def reminder_days() -> list[int]:
    return [int(d) for d in getattr(settings, "QUESTIONNAIRE_REMINDER_DAYS", [3, 7])]


def max_send_attempts() -> int:
    """Failed sends of an invitation before the questionnaire is marked failed."""
    return max(1, _int("QUESTIONNAIRE_MAX_SEND_ATTEMPTS", 5))


def retry_base_seconds() -> int:
    """First retry delay after a failed send; doubles per attempt (capped at 6 h)."""
    return max(1, _int("QUESTIONNAIRE_RETRY_BASE_SECONDS", 300))


def sending_stale_seconds() -> int:
    """How long a claim (status ``sending``) may last before it counts as a crashed send.

    Must exceed the longest possible send: the Celery hard time limit kills a task
    long before (CELERY_TASK_TIME_LIMIT, 90 s by default), so a claim this old
    cannot belong to a send still in progress.
    """
    floor = int(getattr(settings, "CELERY_TASK_TIME_LIMIT", 90) or 90) + 1
    return max(floor, _int("QUESTIONNAIRE_SENDING_STALE_SECONDS", 600))


def sweep_batch() -> int:
    return max(1, _int("QUESTIONNAIRE_SWEEP_BATCH", 200))


def sweep_time_budget() -> float:
    """Seconds one sweep may spend sending before it leaves the rest to the next beat.

    Kept below the task's soft time limit minus one SMTP timeout, so the last send of a
    sweep still finishes (and is marked) before Celery interrupts the task.
    """
    wanted = _float("QUESTIONNAIRE_SWEEP_SECONDS_BUDGET", 45.0)
    soft = float(getattr(settings, "CELERY_TASK_SOFT_TIME_LIMIT", 60) or 60)
    smtp = float(getattr(settings, "EMAIL_TIMEOUT", 20) or 20)
    return max(1.0, min(wanted, soft - smtp - 5))


def email_backend() -> str | None:
    """A mail backend only for questionnaire mail (default: Django's EMAIL_BACKEND)."""
    return getattr(settings, "QUESTIONNAIRE_EMAIL_BACKEND", None) or (
        os.environ.get("QUESTIONNAIRE_EMAIL_BACKEND") or None
    )


def public_base_url() -> str:
    return getattr(settings, "PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")
