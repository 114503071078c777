"""Admin: the follow-up schedule is trial configuration (timepoints are data, SPEC.md
§3.5). Questionnaires and answers are changed only through the crf services and screens,
so they are not in the admin. Nothing can be deleted here."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from crf.models import Timepoint


@admin.register(Timepoint)
class TimepointAdmin(admin.ModelAdmin):
    list_display = (
        "trial",
        "code",
        "label_nl",
        "day_offset",
        "window_before",
        "window_after",
        "is_primary",
        "is_active",
    )
    list_filter = ("trial", "is_active")
    ordering = ("trial", "day_offset")

    def has_delete_permission(self, request: HttpRequest, obj: Timepoint | None = None) -> bool:
        return False

    def get_readonly_fields(
        self, request: HttpRequest, obj: Timepoint | None = None
    ) -> tuple[str, ...]:
        # A timepoint in use keeps its identity; new windows apply to schedules anchored
        # from now on (existing rows keep the window they were given).
        return ("trial", "code") if obj is not None else ()
