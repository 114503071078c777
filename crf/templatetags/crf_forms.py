"""Template filters of the clinical form screens."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from crf.selectors import form_status_badge

register = template.Library()


@register.filter
def status_badge(status: str) -> SafeString:
    """The coloured badge of a form status (draft, complete, overdue, …)."""
    return form_status_badge(status)
