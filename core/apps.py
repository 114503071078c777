from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("Platform: users, sites, roles, audit")

    def ready(self) -> None:
        from core import checks, schema  # noqa: F401  (registers checks and schema extensions)
        from core.audit import install_trigger_helpers_after_migrate

        # After pgtrigger and pghistory (earlier in INSTALLED_APPS) installed theirs.
        post_migrate.connect(
            install_trigger_helpers_after_migrate, sender=self, dispatch_uid="core-trigger-helpers"
        )
