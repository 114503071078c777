"""Admin for users, sites and memberships. Nothing can be deleted here: rows are ended or deactivated."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Model
from django.http import HttpRequest

from core.models import Site, SiteMembership, User


class NoDeleteAdmin(admin.ModelAdmin):
    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = SiteMembership
    extra = 0
    fields = ("role", "site", "started_at", "ended_at")

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [MembershipInline]
    list_display = ("username", "first_name", "last_name", "email", "is_active", "last_login")
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("BLEND", {"fields": ("preferred_language", "password_changed_at")}),
    )
    readonly_fields = ("password_changed_at", "last_login", "date_joined")

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Site)
class SiteAdmin(NoDeleteAdmin):
    list_display = ("code", "name", "is_active")


@admin.register(SiteMembership)
class SiteMembershipAdmin(NoDeleteAdmin):
    list_display = ("user", "role", "site", "started_at", "ended_at")
    list_filter = ("role", "site")
