"""Reads for platform screens: the audit trail as a person reads it, health."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pghistory.models
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models

from core.access import access_for
from core.audit import AuditEntry
from core.models import Role, User

_HIDDEN_FIELDS = {"password"}


def tracked_models() -> list[type[models.Model]]:
    """Every model with an audit event table, sorted by label."""
    found: list[type[models.Model]] = []
    for model in apps.get_models():
        # pghistory sets pgh_tracked_model on each concrete event model (None on the base).
        tracked = getattr(model, "pgh_tracked_model", None)
        if issubclass(model, pghistory.models.Event) and tracked:
            found.append(tracked)
    return sorted(set(found), key=lambda m: m._meta.label_lower)


# --- audit scope: declared on every tracked model, checked at start-up (core.checks) ----------
AUDIT_CONFIGURATION = "configuration"
AUDIT_CONCEALED = "concealed"
AUDIT_SCOPES = (AUDIT_CONFIGURATION, AUDIT_CONCEALED)


@dataclass(frozen=True)
class AuditScope:
    """Who may read a tracked model's trail, as the model declares it.

    - ``site``: clinical records, with ``site_path`` the lookup from a record to its
      participant's site (``audit_site_path = "screening__participant__site"``); read by
      data managers/monitors of that site.
    - ``configuration``: platform and trial configuration (``audit_scope =
      "configuration"``); read by administrators and data managers/monitors.
    - ``concealed``: the allocation sequence and everything that predicts it
      (``audit_scope = "concealed"``); read only by a statistician holding
      ``permission`` (``audit_permission``), by nobody when none is declared.
    """

    kind: str
    site_path: str | None = None
    permission: str | None = None


class UndeclaredAuditScope(LookupError):
    pass


def audit_scope(model: type[models.Model]) -> AuditScope:
    """The declared scope of a tracked model; never guessed from its fields."""
    path = getattr(model, "audit_site_path", None)
    declared = getattr(model, "audit_scope", None)
    if path and not declared:
        return AuditScope(kind="site", site_path=path)
    if declared in AUDIT_SCOPES and not path:
        permission = getattr(model, "audit_permission", None)
        return AuditScope(
            kind=declared, permission=permission if declared == AUDIT_CONCEALED else None
        )
    raise UndeclaredAuditScope(
        f"{model._meta.label} declares no valid audit scope (audit_site_path or audit_scope)"
    )


def audit_site_path(model: type[models.Model]) -> str | None:
    """The lookup path from a record to its site, or None for configuration and secrets."""
    return audit_scope(model).site_path


def audit_hidden_fields(model: type[models.Model]) -> set[str]:
    """Column names never shown in the audit screens (``audit_hidden_fields`` on the model:
    e.g. an allocation's sequence, stratum and slot, which would reveal the list)."""
    names = getattr(model, "audit_hidden_fields", ()) or ()
    hidden = set()
    for name in names:
        field = model._meta.get_field(name)
        hidden.update({field.name, getattr(field, "attname", field.name)})
    return hidden


def _may_read_concealed(user: User, scope: AuditScope) -> bool:
    return bool(
        scope.permission
        and getattr(user, "is_authenticated", False)
        and access_for(user).has_role(Role.STATISTICIAN)
        and user.has_perm(scope.permission)
    )


def audit_models_for(user: User) -> list[type[models.Model]]:
    """Audited models a user may read the trail of: administrators only configuration;
    data managers/monitors configuration and the clinical records of their sites; the
    sequence secrets only a statistician holding the model's permission."""
    access = access_for(user)
    readable: list[type[models.Model]] = []
    for model in tracked_models():
        try:
            scope = audit_scope(model)
        except UndeclaredAuditScope:  # refused by the system check; never shown meanwhile
            continue
        if scope.kind == AUDIT_CONCEALED:
            ok = _may_read_concealed(user, scope)
        elif scope.kind == AUDIT_CONFIGURATION:
            ok = access.has_role(Role.DATA_MANAGER, Role.ADMINISTRATOR)
        else:
            ok = access.has_role(Role.DATA_MANAGER)
        if ok:
            readable.append(model)
    return readable


def _scoped_pks(
    user: User, model: type[models.Model]
) -> models.QuerySet[models.Model, dict[str, Any]] | None:
    """None when every record is readable, else a queryset of readable primary keys."""
    path = audit_site_path(model)
    if path is None:
        return None
    access = access_for(user)
    manager = model._base_manager
    return access.scope(manager.all(), site_field=path, roles={Role.DATA_MANAGER}).values("pk")


def _clean_pk(model: type[models.Model], pk: Any) -> Any:
    """The primary key as the model's type, or None when it cannot be one (no 500)."""
    try:
        return model._meta.pk.to_python(pk)
    except ValidationError:
        return None


def audit_record_visible(user: User, model: type[models.Model], pk: Any) -> bool:
    if model not in audit_models_for(user):
        return False
    pk = _clean_pk(model, pk)
    if pk is None:
        return False
    scoped = _scoped_pks(user, model)
    return scoped is None or model._base_manager.filter(pk=pk, pk__in=scoped).exists()


def _mask_identifying(
    user: User, model: type[models.Model], pk: Any, entries: list[AuditEntry]
) -> list[AuditEntry]:
    """Identifying values are shown only to staff of the record's own site."""
    if not getattr(model, "audit_identifying", False):
        return entries
    path = audit_site_path(model)
    site_id = (
        model._base_manager.filter(pk=pk)
        .values_list(f"{path}__pk" if path else "pk", flat=True)
        .first()
    )
    if site_id is not None and access_for(user).can_see_identifying(site_id):
        return entries
    masked = []
    for e in entries:
        changes = {
            k: ("•••" if o is not None else None, "•••" if n is not None else None)
            for k, (o, n) in e.changes.items()
        }
        masked.append(AuditEntry(**{**e.__dict__, "changes": changes}))
    return masked


def event_model_for(model: type[models.Model]) -> type[pghistory.models.Event]:
    for candidate in apps.get_models():
        if (
            issubclass(candidate, pghistory.models.Event)
            and getattr(candidate, "pgh_tracked_model", None) is model
        ):
            return candidate
    raise LookupError(f"{model._meta.label} is not audited")


def _diff(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> dict[str, tuple[Any, Any]]:
    before = before or {}
    after = after or {}
    changes: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(before) | set(after)):
        if key in _HIDDEN_FIELDS:
            continue
        old, new = before.get(key), after.get(key)
        if old != new:
            changes[key] = (old, new)
    return changes


def _expanded(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """``data`` with each JSON object column of ``fields`` (``audit_expand_fields`` on the
    model: a clinical record's answers) spread into one key per item, ``"data.sins_pain"``,
    so the trail shows each item's old and new value instead of two whole objects."""
    out = {k: v for k, v in data.items() if k not in fields}
    for name in fields:
        value = data.get(name)
        if isinstance(value, dict):
            for key, item in value.items():
                out[f"{name}.{key}"] = item
        elif value is not None:
            out[name] = value
    return out


def _context_metadata(event: pghistory.models.Event) -> dict[str, Any]:
    """The request context (user, IP, reason) an event was recorded with; empty without one.

    pghistory adds ``pgh_obj`` and ``pgh_context`` to each concrete event model it creates
    (``pghistory.create_event_model``); the abstract ``Event`` base that mypy sees declares
    neither, hence the ``misc`` ignores on the lookups through them below."""
    context = getattr(event, "pgh_context", None)
    return context.metadata if context is not None else {}


def audit_trail(*, model: type[models.Model], pk: Any, limit: int = 500) -> list[AuditEntry]:
    """Every recorded change of one record, oldest first, with old and new values."""
    event_model = event_model_for(model)
    events = list(
        event_model.objects.filter(pgh_obj_id=pk)  # type: ignore[misc]  # see _context_metadata
        .select_related("pgh_context")
        .order_by("pgh_created_at", "pgh_id")[:limit]
    )
    field_names = [f.attname for f in model._meta.concrete_fields]
    expand = tuple(getattr(model, "audit_expand_fields", ()) or ())
    user_ids: set[int] = set()
    for ev in events:
        meta = _context_metadata(ev)
        if meta.get("user"):
            user_ids.add(meta["user"])
    users = {u.pk: str(u) for u in User.objects.filter(pk__in=user_ids)}

    entries: list[AuditEntry] = []
    previous: dict[str, Any] | None = None
    for ev in events:
        data: dict[str, Any] = {
            name: getattr(ev, name, None) for name in field_names if hasattr(ev, name)
        }
        data = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}
        if expand:
            data = _expanded(data, expand)
        if ev.pgh_label == "delete":
            changes = {k: (v, None) for k, v in data.items() if k not in _HIDDEN_FIELDS}
        else:
            changes = _diff(previous, data)
        previous = data
        meta = _context_metadata(ev)
        user_id: int | None = meta.get("user")
        username: str = meta.get("username", "")
        entries.append(
            AuditEntry(
                at=ev.pgh_created_at,
                label=ev.pgh_label,
                model=model._meta.label,
                object_id=str(pk),
                user_id=user_id,
                user=users.get(user_id, username) if user_id is not None else username,
                actor=meta.get("actor", ""),
                ip=meta.get("ip", ""),
                reason=meta.get("reason", ""),
                changes=changes,
            )
        )
    return entries


def audit_trail_for(*, user: User, model: type[models.Model], pk: Any) -> list[AuditEntry]:
    """The trail of one record as ``user`` may see it (empty when not allowed)."""
    if not audit_record_visible(user, model, pk):
        return []
    pk = _clean_pk(model, pk)
    entries = _mask_identifying(user, model, pk, audit_trail(model=model, pk=pk))
    hidden = audit_hidden_fields(model)
    if not hidden:
        return entries
    return [
        AuditEntry(
            **{
                **e.__dict__,
                "changes": {k: v for k, v in e.changes.items() if k not in hidden},
            }
        )
        for e in entries
    ]


def recent_events(
    *, model: type[models.Model], limit: int = 100, user: User | None = None
) -> list[dict[str, Any]]:
    """The latest audit events of a model, newest first (only records ``user`` may read)."""
    event_model = event_model_for(model)
    events = event_model.objects.all()
    if user is not None:
        if model not in audit_models_for(user):
            return []
        scoped = _scoped_pks(user, model)
        if scoped is not None:
            events = events.filter(pgh_obj_id__in=scoped)  # type: ignore[misc]  # as above
    rows = (
        events.select_related("pgh_context")  # type: ignore[misc]  # see _context_metadata
        .order_by("-pgh_id")  # insertion order: a backward scan of the primary key
        .values("pgh_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "pgh_context__metadata")[
            :limit
        ]
    )
    return [
        {
            "id": r["pgh_id"],
            "at": r["pgh_created_at"],
            "label": r["pgh_label"],
            "object_id": r["pgh_obj_id"],
            "username": (r["pgh_context__metadata"] or {}).get("username")
            or (r["pgh_context__metadata"] or {}).get("actor", ""),
            "reason": (r["pgh_context__metadata"] or {}).get("reason", ""),
        }
        for r in rows
    ]
