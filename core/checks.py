"""System checks for the platform configuration."""

from collections.abc import Iterable
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model


@register()
def audit_trail_is_append_only(
    app_configs: Iterable[AppConfig] | None, **kwargs: Any
) -> list[Error]:
    errors: list[Error] = []
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


def _site_path_error(model: type[Model], path: str) -> str | None:
    """Why ``path`` does not lead from ``model`` to a site, or None when it does."""
    from core.models import Site

    current = model
    for name in path.split("__"):
        try:
            field = current._meta.get_field(name)
        except FieldDoesNotExist:
            return f"{current._meta.label} has no field {name!r}"
        related = field.related_model
        if (
            not field.is_relation
            or field.many_to_many
            or field.one_to_many
            or not isinstance(related, type)
        ):
            return f"{current._meta.label}.{name} is not a foreign key"
        current = related
    if current is not Site:
        return f"it ends at {current._meta.label}, not at core.Site"
    return None


def audit_scope_errors(models: Iterable[type[Model]]) -> list[Error]:
    """core.E010: a tracked model must declare who may read its audit trail, either
    ``audit_site_path`` (a lookup to its participant's site), or ``audit_scope =
    "configuration"``, or ``audit_scope = "concealed"`` (with ``audit_permission``);
    core.E011: its ``audit_hidden_fields`` must be fields of the model."""
    from core.selectors import UndeclaredAuditScope, audit_scope

    errors = []
    for model in models:
        try:
            scope = audit_scope(model)
        except UndeclaredAuditScope as exc:
            errors.append(
                Error(
                    str(exc),
                    hint='Declare audit_site_path = "participant__site" (or the path to the '
                    'participant\'s site), audit_scope = "configuration", or audit_scope = '
                    '"concealed" on the model.',
                    obj=model,
                    id="core.E010",
                )
            )
            continue
        if scope.site_path:
            problem = _site_path_error(model, scope.site_path)
            if problem:
                errors.append(
                    Error(
                        f"{model._meta.label}.audit_site_path {scope.site_path!r}: {problem}.",
                        obj=model,
                        id="core.E010",
                    )
                )
                continue
        for name in getattr(model, "audit_hidden_fields", ()) or ():
            try:
                model._meta.get_field(name)
            except FieldDoesNotExist:
                errors.append(
                    Error(
                        f"{model._meta.label}.audit_hidden_fields names no field {name!r}.",
                        obj=model,
                        id="core.E011",
                    )
                )
    return errors


@register()
def audit_scope_declared(app_configs: Iterable[AppConfig] | None, **kwargs: Any) -> list[Error]:
    from core.selectors import tracked_models

    return audit_scope_errors(tracked_models())
