"""Celery tasks of the crf app: thin, idempotent, state in the database."""

from __future__ import annotations

from celery import shared_task

from core.audit import system_actor


@shared_task(name="crf.tasks.questionnaires_sweep", ignore_result=True)
def questionnaires_sweep() -> dict:
    """Beat rings this every few minutes; it does whatever the database says is due.

    Running it twice at once, or again after a crash, sends nothing twice (see
    crf.services.questionnaires_sweep and crf.lifecycle).
    """
    from crf import services

    with system_actor("celery:crf.questionnaires_sweep"):
        return services.questionnaires_sweep().as_dict()
