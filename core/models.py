"""Users, sites and role memberships: who may do what, where.

A membership ties a user to a role at one site, or (site empty) to a
sponsor-wide role: statisticians, administrators and central monitors work
across all sites. Memberships are ended, never deleted.
"""

from __future__ import annotations

import pghistory
import pgtrigger
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.audit import track

# Trial data is never hard-deleted (ENGINEERING §3): every clinical model carries this
# trigger. Its name stays ``no_delete`` (the installed triggers are named after it).
NO_DELETE = pgtrigger.Protect(name="no_delete", operation=pgtrigger.Delete)


class Role(models.TextChoices):
    NURSE = "nurse", _("Research nurse")
    INVESTIGATOR = "investigator", _("Investigator")
    DATA_MANAGER = "data_manager", _("Data manager / monitor")
    STATISTICIAN = "statistician", _("Statistician")
    ADMINISTRATOR = "administrator", _("Administrator")


@track(exclude=["password", "last_login"])
class User(AbstractUser):
    """A person with a login. Password hashes are never copied into the audit
    trail; `password_changed_at` records that a change happened."""

    audit_scope = "configuration"

    password_changed_at = models.DateTimeField(_("password changed at"), null=True, blank=True)
    preferred_language = models.CharField(
        _("preferred language"),
        max_length=2,
        choices=[("nl", "Nederlands"), ("en", "English")],
        default="nl",
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        triggers = [
            pgtrigger.Protect(name="users_no_delete", operation=pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username


@track()
class Site(models.Model):
    audit_scope = "configuration"

    code = models.SlugField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        triggers = [pgtrigger.Protect(name="sites_no_delete", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return self.name


class MembershipQuerySet(models.QuerySet["SiteMembership"]):
    def active(self) -> MembershipQuerySet:
        return self.filter(ended_at__isnull=True, user__is_active=True)


@track()
class SiteMembership(models.Model):
    """A role held by a user at a site (or at every site when `site` is empty)."""

    audit_scope = "configuration"

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="memberships")
    site = models.ForeignKey(
        Site,
        on_delete=models.PROTECT,
        related_name="memberships",
        null=True,
        blank=True,
        help_text=_("Empty for a sponsor-wide role (all sites)."),
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        verbose_name = _("site membership")
        verbose_name_plural = _("site memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "site", "role"],
                condition=Q(ended_at__isnull=True),
                name="one_active_membership_per_user_site_role",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="membership_ends_after_start",
            ),
        ]
        triggers = [pgtrigger.Protect(name="memberships_no_delete", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        where = self.site.name if self.site is not None else _("all sites")
        return f"{self.user} — {self.get_role_display()} @ {where}"


__all__ = ["NO_DELETE", "Role", "User", "Site", "SiteMembership", "pghistory"]
