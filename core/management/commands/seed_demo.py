"""Demo data: the two sites and one user per role (credentials in the README).

Idempotent. Refuses to run when DEBUG is off unless --force is given, so demo
passwords never reach a production database by accident.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from core import hooks
from core.audit import system_actor
from core.demo_accounts import DEMO_PASSWORD, SITES, USERS
from core.models import Site, User
from core.services import membership_grant

if TYPE_CHECKING:  # pragma: no cover
    from django.contrib.auth.models import Permission
    from django.db.models import QuerySet

ADMIN_MODELS = [
    ("core", "user"),
    ("core", "site"),
    ("core", "sitemembership"),
    ("randomization", "trial"),
    ("randomization", "arm"),
]


def administrator_permissions() -> QuerySet[Permission]:
    """Model permissions of the administrator role: users, sites, roles and trial set-up only."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    query = Q(pk__in=[])
    for app_label, model in ADMIN_MODELS:
        query |= Q(content_type__app_label=app_label, content_type__model=model) & ~Q(
            codename__startswith="delete_"
        )
    return Permission.objects.filter(query)


class Command(BaseCommand):
    help = "Create demo sites and one user per role (idempotent; DEBUG only unless --force)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="run even when DEBUG is off")

    def handle(self, *args: str, force: bool = False, **options: Any) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "Refusing to load demo data with DEBUG off (use --force on a test system)."
            )
        with transaction.atomic(), system_actor("seed_demo"):
            sites = {}
            for code, name in SITES:
                sites[code], _ = Site.objects.get_or_create(code=code, defaults={"name": name})
            for username, first, last, role, site_code, staff in USERS:
                user = User.objects.filter(username=username).first()
                if user is None:
                    # The administrator works in the Django admin through model permissions,
                    # not as a superuser: no clinical data without a clinical role.
                    user = User(
                        username=username,
                        first_name=first,
                        last_name=last,
                        is_staff=staff,
                        is_superuser=False,
                        email=f"{username}@demo.invalid",
                    )
                    user.set_password(DEMO_PASSWORD)
                    user.save()
                membership_grant(
                    user=user,
                    role=role,
                    site=sites[site_code] if site_code else None,
                    reason="demo data",
                )
                if staff:
                    user.user_permissions.set(administrator_permissions())
        self.stdout.write(
            self.style.SUCCESS(f"Demo data ready: {len(SITES)} sites, {len(USERS)} users.")
        )
        # Each app adds its own demo data: its `demo.seed` subscribes to the hook (in
        # INSTALLED_APPS order); all of it or none.
        with transaction.atomic(), system_actor("seed_demo"):
            hooks.demo_seed.fire(stdout=self.stdout)
