"""Celery tasks of the crf app: thin, idempotent, state in the database."""

from __future__ import annotations

from typing import Any

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


@shared_task(
    name="crf.tasks.records_recheck",
    bind=True,
    acks_late=True,
    # a re-run over every record takes minutes, not the default seconds
    soft_time_limit=3600,
    time_limit=3700,
)
def records_recheck(self: Any, form_code: str | None = None, run_id: int | None = None) -> dict:
    """Re-run the edit checks (idempotent: a retry after a crash repeats nothing); the
    progress is written to the request's crf.models.RecheckRun after each batch (the
    database is the state, there is no result backend)."""
    from crf import services

    with system_actor("celery:crf.records_recheck"):
        return services.recheck_run(run_id=run_id, form_code=form_code).as_dict()
