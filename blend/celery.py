"""The Celery application: Redis broker, JSON only, acks-late, one static beat schedule.

The database, not the broker, is the source of truth for what is due; beat only
rings the doorbell every few minutes and the tasks find their work in
PostgreSQL, so a lost message delays work by one period and never loses it.
"""

import os

from celery import Celery
from celery.schedules import crontab  # noqa: F401  (kept for schedule entries below)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "blend.settings")

app = Celery("blend")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# One static schedule, reviewed like code. Each entry calls an idempotent sweep.
app.conf.beat_schedule = {
    "worker-heartbeat": {
        "task": "core.tasks.heartbeat",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # crf: invitations, reminders, retries and window closes, found in PostgreSQL.
    "crf-questionnaires-sweep": {
        "task": "crf.tasks.questionnaires_sweep",
        "schedule": float(os.environ.get("QUESTIONNAIRE_SWEEP_INTERVAL_SECONDS", "120")),
        "options": {"expires": 110},
    },
}
