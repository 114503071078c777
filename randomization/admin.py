"""Admin for trial configuration only: trials, arms and eligibility criteria.

Sequences, slots, strata and allocations are deliberately NOT registered: the
allocation sequence is concealed (statisticians with the sequence permission use the
sequence screens), and allocations are trial data, written only through services.
"""

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from randomization.models import Arm, Criterion, Trial


class NoDeleteAdmin(admin.ModelAdmin):
    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ArmInline(admin.TabularInline):
    model = Arm
    extra = 0
    fields = ("code", "name", "ratio", "is_intervention")

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Trial)
class TrialAdmin(NoDeleteAdmin):
    list_display = ("code", "name", "status", "protocol_version", "target_size")
    # The status follows the lifecycle (sequence go-live; closing with a reason on the
    # trial status screen), never a free edit here.
    readonly_fields = ("status",)
    inlines = [ArmInline]


@admin.register(Criterion)
class CriterionAdmin(NoDeleteAdmin):
    list_display = ("trial", "protocol_version", "order", "code", "derived_from")
    list_filter = ("trial", "protocol_version", "kind")
    ordering = ("trial", "protocol_version", "order")
