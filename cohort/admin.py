"""Admin: consent form versions are configuration (created and closed through services);
clinical records are read-only and visible only to users holding a clinical role.
Identifying data is not in the admin at all. Nothing can be deleted here."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from cohort import services
from cohort.models import (
    ConsentFormVersion,
    ConsentRecord,
    Death,
    IdentityAccess,
    Participant,
    Withdrawal,
)
from core.access import CLINICAL_READERS, access_for
from core.models import Role
from core.refusals import Refusal


class ReadOnlyClinicalAdmin(admin.ModelAdmin):
    """View only, and only for clinical readers (an administrator role alone reads nothing)."""

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return access_for(request.user).has_role(*CLINICAL_READERS) and super().has_view_permission(
            request, obj
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)
        site_field = "site" if self.model is Participant else "participant__site"
        return access_for(request.user).scope(qs, site_field=site_field)


@admin.register(ConsentFormVersion)
class ConsentFormVersionAdmin(admin.ModelAdmin):
    list_display = ("code", "version", "language", "effective_from", "effective_to")
    list_filter = ("code", "language")

    def get_readonly_fields(
        self, request: HttpRequest, obj: ConsentFormVersion | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("code", "version", "language", "effective_from", "effective_to")

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(
        self,
        request: HttpRequest,
        obj: ConsentFormVersion,
        form: forms.ModelForm[Any],
        change: bool,
    ) -> None:
        if change:
            return
        try:
            # The admin's change view already runs in a transaction: join it.
            created = services.consent_form_version_create.nested(
                code=obj.code,
                version=obj.version,
                language=obj.language,
                effective_from=obj.effective_from,
                effective_to=obj.effective_to,
            )
        except Refusal as exc:
            messages.error(request, "; ".join(exc.messages))
            return
        obj.pk = created.pk


@admin.register(Participant)
class ParticipantAdmin(ReadOnlyClinicalAdmin):
    list_display = (
        "study_number",
        "site",
        "sex",
        "year_of_birth",
        "primary_tumour",
        "registered_at",
    )
    list_filter = ("site", "primary_tumour")
    search_fields = ("study_number",)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyClinicalAdmin):
    list_display = ("participant", "element", "answer", "given_on", "form_version", "mode")
    list_filter = ("element", "answer", "mode")
    list_select_related = ("participant", "form_version")


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyClinicalAdmin):
    list_display = ("participant", "scope", "effective_on", "recorded_at")
    list_select_related = ("participant",)


@admin.register(Death)
class DeathAdmin(ReadOnlyClinicalAdmin):
    list_display = ("participant", "died_on", "source", "recorded_at")
    list_select_related = ("participant",)


@admin.register(IdentityAccess)
class IdentityAccessAdmin(ReadOnlyClinicalAdmin):
    """Who was shown whose identifying data: an audit record of the participant's site,
    readable like its audit trail, by data managers/monitors of that site (an
    administrator without a clinical role reads none of it)."""

    list_display = ("at", "user", "participant", "context")
    list_filter = ("context",)
    list_select_related = ("user", "participant")

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if not (request.user.is_staff and access_for(request.user).has_role(Role.DATA_MANAGER)):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return access_for(request.user).scope(
            admin.ModelAdmin.get_queryset(self, request),
            site_field="participant__site",
            roles={Role.DATA_MANAGER},
        )
