"""The audit trail: one way to track a model, attach a reason, and read history.

Every model that holds trial data is decorated with :func:`track`. It records
inserts, updates (including ``QuerySet.update()``, bulk writes and raw SQL, as
the tracking is done by PostgreSQL triggers) and deletes into an append-only
event table. The event tables refuse UPDATE and DELETE (pghistory's
append-only trigger) and TRUNCATE (a statement trigger added here).

Who, from where and why come from the pghistory context: the request
middleware adds user, role, IP and URL; services add a ``reason`` with
:func:`reason`; Celery tasks and management commands open :func:`system_actor`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import pghistory
import pghistory.runtime as pghistory_runtime
import pgtrigger
from django.db.models import Model

_M = TypeVar("_M", bound=type[Model])

NO_TRUNCATE = pgtrigger.Trigger(
    name="audit_no_truncate",
    operation=pgtrigger.Truncate,
    level=pgtrigger.Statement,
    when=pgtrigger.Before,
    func="RAISE EXCEPTION 'audit trail is append-only: TRUNCATE refused on %', TG_TABLE_NAME;",
)


def track(*, exclude: list[str] | None = None, **kwargs: Any) -> Callable[[_M], _M]:
    """Track inserts, updates and deletes of a model in an append-only event table."""
    return pghistory.track(
        pghistory.InsertEvent(),
        pghistory.UpdateEvent(),
        pghistory.DeleteEvent(),
        exclude=exclude,
        append_only=True,
        meta={"triggers": [NO_TRUNCATE]},
        **kwargs,
    )


@contextlib.contextmanager
def reason(text: str | None) -> Iterator[None]:
    """Attach a reason for change to the audited writes inside the block, and only to them.

    pghistory keeps one context per request; adding a key to it would rewrite the
    metadata of every event of that request, including earlier writes made for
    another reason. So inside an open context the block gets a child context of its
    own: the parent's metadata (user, IP, roles) plus this reason, under a new id.
    """
    if not text:
        yield
        return
    parent = getattr(pghistory_runtime._tracker, "value", None)
    if parent is None:
        with pghistory.context(reason=text):
            yield
        return
    child = pghistory_runtime.Context(id=uuid.uuid4(), metadata={**parent.metadata, "reason": text})
    pghistory_runtime._tracker.value = child
    try:
        yield
    finally:
        pghistory_runtime._tracker.value = parent


@contextlib.contextmanager
def system_actor(name: str, **extra: Any) -> Iterator[None]:
    """Context for writes made by the system (Celery tasks, commands, migrations)."""
    with pghistory.context(actor=name, **extra):
        yield


@dataclass(frozen=True)
class AuditEntry:
    """One change as a person reads it: who, when, what, from what to what, why."""

    at: datetime
    label: str
    model: str
    object_id: str
    user_id: int | None
    user: str
    actor: str
    ip: str
    reason: str
    changes: dict[str, tuple[Any, Any]]
