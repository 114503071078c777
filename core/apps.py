from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("Platform: users, sites, roles, audit")

    def ready(self) -> None:
        from core import checks, schema  # noqa: F401  (registers checks and schema extensions)
