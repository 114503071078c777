"""Admin: the follow-up schedule is trial configuration (timepoints are data, SPEC.md
§3.5). Questionnaires and answers are changed only through the crf services and screens,
so they are not in the admin. Nothing can be deleted here. Form definitions are listed
read-only: they come from the definition files (a new version is a new file release)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from crf.models import CodeList, CodeListTerm, FormDefinition, Timepoint


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


class ReadOnlyAdmin(admin.ModelAdmin):
    """Listed and shown; written only by its service (nothing added, changed or deleted here)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(FormDefinition)
class FormDefinitionAdmin(ReadOnlyAdmin):
    """The shipped definitions and their versions; nothing can be added, changed or deleted."""

    list_display = ("code", "version", "kind", "occurs", "title_display", "loaded_at")
    list_filter = ("kind", "occurs")
    search_fields = ("code", "version")
    ordering = ("kind", "code", "-loaded_at")
    fields = (
        "code",
        "version",
        "kind",
        "occurs",
        "title_display",
        "sha256",
        "loaded_at",
        "content_display",
    )
    readonly_fields = fields

    @admin.display(description=_("title"))
    def title_display(self, obj: FormDefinition) -> str:
        return obj.title_in()

    @admin.display(description=_("content"))
    def content_display(self, obj: FormDefinition) -> str:
        text = json.dumps(obj.content, ensure_ascii=False, indent=1)
        return format_html("<pre style='max-height:40em;overflow:auto'>{}</pre>", text)


class CodeListTermInline(admin.TabularInline):
    model = CodeListTerm
    fields = ("code", "term", "term_nl", "soc", "grades")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(CodeList)
class CodeListAdmin(ReadOnlyAdmin):
    """The loaded versions of code lists (CTCAE): loaded with ``manage.py load_ctcae``."""

    list_display = ("code", "version", "is_current", "loaded_at", "loaded_by")
    list_filter = ("code", "is_current")
    fields = ("code", "version", "is_current", "source", "loaded_at", "loaded_by")
    readonly_fields = fields
    inlines = [CodeListTermInline]
