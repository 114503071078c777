"""Writes to users, sites and memberships (every write is audited by triggers), and the
transaction boundary every app's top-level services share (:func:`top_level`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

from django.db import connection, transaction
from django.utils import timezone

from core.audit import reason as audit_reason
from core.models import Role, Site, SiteMembership, User

P = ParamSpec("P")
R = TypeVar("R")


class TopLevel(Generic[P, R]):
    """A top-level service (called by a view, an API, a task or a command): it runs in its
    own durable transaction (``atomic(durable=True)``), so a caller that is already inside
    a transaction fails loudly instead of silently widening it. ``.nested`` is the same
    service for the few callers that must join their own transaction: another service, or
    a seed that writes all or nothing (it runs as a savepoint)."""

    def __init__(self, func: Callable[P, R]) -> None:
        functools.update_wrapper(self, func)
        self._func = func
        self._durable = transaction.atomic(durable=True)(func)
        self._savepoint = transaction.atomic(func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._durable(*args, **kwargs)

    def nested(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """The same service inside the caller's transaction (a savepoint)."""
        return self._savepoint(*args, **kwargs)


def top_level(func: Callable[P, R]) -> TopLevel[P, R]:
    """Decorate a top-level service: see :class:`TopLevel`."""
    return TopLevel(func)


def _outside_transactions(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        # The rule of ``atomic(durable=True)``: a test's wrapping transaction does not count.
        if any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks):
            raise RuntimeError(
                f"{func.__name__} commits its own write: call it outside a transaction."
            )
        return func(*args, **kwargs)

    return run


class SingleStatement(TopLevel[P, R]):
    """A top-level service whose write is a single statement that the database commits on
    its own (autocommit): its reads run outside a transaction, and no lock it takes waits
    for a round trip to Python before it is released. Like :class:`TopLevel` it refuses to
    run inside a caller's transaction; ``.nested`` joins one (the statement then runs in a
    savepoint). The service keeps any multi-statement write in its own ``atomic`` block."""

    def __init__(self, func: Callable[P, R]) -> None:
        super().__init__(func)
        self._durable = _outside_transactions(func)
        self._savepoint = func


def single_statement(func: Callable[P, R]) -> SingleStatement[P, R]:
    """Decorate a top-level service whose write is one self-committing statement: see
    :class:`SingleStatement`."""
    return SingleStatement(func)


@transaction.atomic
def user_password_changed(*, user: User) -> None:
    """Record that a password changed (the hash itself never enters the audit trail)."""
    User.objects.filter(pk=user.pk).update(password_changed_at=timezone.now())


@transaction.atomic
def membership_grant(
    *, user: User, role: str, site: Site | None, reason: str = ""
) -> SiteMembership:
    """Give a user a role at a site (or sponsor-wide). Granting an active role twice is a no-op."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    with audit_reason(reason):
        existing = SiteMembership.objects.active().filter(user=user, role=role, site=site).first()
        if existing:
            return existing
        return SiteMembership.objects.create(user=user, role=role, site=site)


@transaction.atomic
def membership_end(*, membership: SiteMembership, reason: str) -> SiteMembership:
    """End a role; the row stays, with its end time, in the audit trail."""
    if not reason.strip():
        raise ValueError("a reason is required to end a membership")
    with audit_reason(reason):
        membership.ended_at = timezone.now()
        membership.save(update_fields=["ended_at"])
    return membership
