"""Writes to users, sites and memberships. Every write is audited by triggers."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.audit import reason as audit_reason
from core.models import Role, Site, SiteMembership, User


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
