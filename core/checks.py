"""System checks for the platform configuration."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def audit_trail_is_append_only(app_configs, **kwargs):
    errors = []
    if not getattr(settings, "PGHISTORY_APPEND_ONLY", False):
        errors.append(
            Error(
                "PGHISTORY_APPEND_ONLY must be True: the audit trail may not be edited.",
                id="core.E001",
            )
        )
    if (
        settings.PASSWORD_HASHERS
        and "Argon2" not in settings.PASSWORD_HASHERS[0]
        and not settings.DEBUG
    ):
        errors.append(
            Error("Argon2 must be the first password hasher in production.", id="core.E002")
        )
    return errors
