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


# ignore_result=False: the re-check page reads its progress and counts from the result.
@shared_task(name="crf.tasks.records_recheck", bind=True, acks_late=True, ignore_result=False)
def records_recheck(self: Any, form_code: str | None = None) -> dict:
    """Re-run the edit checks (idempotent: a retry after a crash repeats nothing); the
    task's state carries the progress (``PROGRESS`` with done/total) for a progress bar."""
    from crf import services

    def progress(done: int, total: int) -> None:
        self.update_state(state="PROGRESS", meta={"done": done, "total": total})

    with system_actor("celery:crf.records_recheck"):
        return services.records_recheck(form_code=form_code, progress=progress).as_dict()
