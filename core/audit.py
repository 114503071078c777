"""The audit trail: one way to track a model, attach a reason, and read history.

Every model that holds trial data is decorated with :func:`track`. It records
inserts, updates (including ``QuerySet.update()``, bulk writes and raw SQL, as
the tracking is done by PostgreSQL triggers) and deletes into an append-only
event table. The event tables refuse UPDATE and DELETE (pghistory's
append-only trigger) and TRUNCATE (a statement trigger added here).

Who, from where and why come from the pghistory context: the request
middleware adds user, role, IP and URL; services add a ``reason`` with
:func:`reason`; Celery tasks and management commands open :func:`system_actor`.

Every audit trigger calls two helper functions per row: pgtrigger's
``_pgtrigger_should_ignore`` and pghistory's ``_pgh_attach_context``. Both
libraries read their settings inside ``BEGIN ... EXCEPTION WHEN OTHERS``, which
raises and catches an error whenever the setting is absent (always for
``pgtrigger.ignore``; for the context outside ``pghistory.context``). Each caught
error rolls back a subtransaction, and PostgreSQL's subtransaction rollback walks
the transaction's whole queue of pending deferred-constraint events (Django's
foreign keys are DEFERRABLE INITIALLY DEFERRED: one queued check per inserted
row). So the n-th row cost O(n) and a big insert O(n^2). :func:`install_trigger_helpers`
replaces both functions with versions that read the settings with
``current_setting(name, true)`` and never raise; same results, no subtransaction.
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
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

_M = TypeVar("_M", bound=type[Model])

NO_TRUNCATE = pgtrigger.Trigger(
    name="audit_no_truncate",
    operation=pgtrigger.Truncate,
    level=pgtrigger.Statement,
    when=pgtrigger.Before,
    func="RAISE EXCEPTION 'audit trail is append-only: TRUNCATE refused on %', TG_TABLE_NAME;",
)


# pgtrigger's helper, same signature and results: true when the trigger is named in
# the transaction's ``pgtrigger.ignore`` list (set by ``pgtrigger.ignore()``).
# An absent or empty setting means "ignore nothing"; a malformed one raises (the
# statement fails) instead of silently skipping the check.
IGNORE_FUNC_SQL = """
CREATE OR REPLACE FUNCTION "public"._pgtrigger_should_ignore(trigger_name NAME)
RETURNS BOOLEAN AS $$
    DECLARE
        _pgtrigger_ignore TEXT := NULLIF(CURRENT_SETTING('pgtrigger.ignore', TRUE), '');
    BEGIN
        IF _pgtrigger_ignore IS NULL THEN
            RETURN FALSE;
        END IF;
        RETURN COALESCE(trigger_name = ANY(_pgtrigger_ignore::TEXT[]), FALSE);
    END;
$$ LANGUAGE plpgsql STABLE;
"""

# pghistory's context function, same contract: returns the context id set by
# ``pghistory.context`` (NULL outside one) and makes sure the context row exists
# with the current metadata. The row is only written when it is missing or its
# metadata changed; every other event of the context just reads it, so many rows in
# one context leave one context row version, not a lock or an upsert per row.
CONTEXT_FUNC_SQL = """
CREATE OR REPLACE FUNCTION _pgh_attach_context()
RETURNS pghistory_context.id%TYPE AS $$
    DECLARE
        _pgh_context_id UUID := NULLIF(CURRENT_SETTING('pghistory.context_id', TRUE), '');
        _pgh_context_metadata JSONB :=
            NULLIF(CURRENT_SETTING('pghistory.context_metadata', TRUE), '');
    BEGIN
        IF _pgh_context_id IS NULL OR _pgh_context_metadata IS NULL THEN
            RETURN NULL;
        END IF;
        PERFORM 1 FROM pghistory_context
            WHERE id = _pgh_context_id AND metadata = _pgh_context_metadata;
        IF NOT FOUND THEN
            INSERT INTO pghistory_context (id, metadata, created_at, updated_at)
                VALUES (_pgh_context_id, _pgh_context_metadata, NOW(), NOW())
                ON CONFLICT (id) DO UPDATE
                    SET metadata = EXCLUDED.metadata,
                        updated_at = EXCLUDED.updated_at
                    WHERE pghistory_context.metadata IS DISTINCT FROM EXCLUDED.metadata;
        END IF;
        RETURN _pgh_context_id;
    END;
$$ LANGUAGE plpgsql;
"""


def install_trigger_helpers(connection: BaseDatabaseWrapper) -> None:
    """(Re)install the two per-row trigger helpers without exception blocks.

    pgtrigger rewrites its helper with every trigger it installs (any migration
    adding a trigger), so this runs from a migration and again after every
    ``migrate`` (post_migrate, registered in ``CoreConfig.ready``).
    """
    if connection.vendor != "postgresql":  # pragma: no cover - PostgreSQL only
        return
    with connection.cursor() as cursor:
        cursor.execute(IGNORE_FUNC_SQL)
        cursor.execute(CONTEXT_FUNC_SQL)


def install_trigger_helpers_after_migrate(*, using: str, **kwargs: Any) -> None:
    """post_migrate receiver: the helpers as :func:`install_trigger_helpers` has them."""
    from django.db import connections

    install_trigger_helpers(connections[using])


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
