"""Reads for platform screens: the audit trail as a person reads it, health."""

from __future__ import annotations

from typing import Any

import pghistory.models
from django.apps import apps
from django.db import models

from core.audit import AuditEntry
from core.models import User

_HIDDEN_FIELDS = {"password"}


def tracked_models() -> list[type[models.Model]]:
    """Every model with an audit event table, sorted by label."""
    found = []
    for model in apps.get_models():
        if issubclass(model, pghistory.models.Event) and getattr(model, "pgh_tracked_model", None):
            found.append(model.pgh_tracked_model)
    return sorted(set(found), key=lambda m: m._meta.label_lower)


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


def audit_trail(*, model: type[models.Model], pk: Any, limit: int = 500) -> list[AuditEntry]:
    """Every recorded change of one record, oldest first, with old and new values."""
    event_model = event_model_for(model)
    events = list(
        event_model.objects.filter(pgh_obj_id=pk)
        .select_related("pgh_context")
        .order_by("pgh_created_at", "pgh_id")[:limit]
    )
    field_names = [f.attname for f in model._meta.concrete_fields]
    user_ids = set()
    for ev in events:
        meta = ev.pgh_context.metadata if ev.pgh_context_id else {}
        if meta.get("user"):
            user_ids.add(meta["user"])
    users = {u.pk: str(u) for u in User.objects.filter(pk__in=user_ids)}

    entries: list[AuditEntry] = []
    previous: dict[str, Any] | None = None
    for ev in events:
        data = {name: getattr(ev, name, None) for name in field_names if hasattr(ev, name)}
        data = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}
        if ev.pgh_label == "delete":
            changes = {k: (v, None) for k, v in data.items() if k not in _HIDDEN_FIELDS}
        else:
            changes = _diff(previous, data)
        previous = data
        meta = ev.pgh_context.metadata if ev.pgh_context_id else {}
        entries.append(
            AuditEntry(
                at=ev.pgh_created_at,
                label=ev.pgh_label,
                model=model._meta.label,
                object_id=str(pk),
                user_id=meta.get("user"),
                user=users.get(meta.get("user"), meta.get("username", "")),
                actor=meta.get("actor", ""),
                ip=meta.get("ip", ""),
                reason=meta.get("reason", ""),
                changes=changes,
            )
        )
    return entries


def recent_events(*, model: type[models.Model], limit: int = 100) -> list[dict[str, Any]]:
    """The latest audit events of a model (all records), newest first."""
    event_model = event_model_for(model)
    rows = (
        event_model.objects.select_related("pgh_context")
        .order_by("-pgh_created_at", "-pgh_id")
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
