"""Small template helpers for the cohort screens."""

from django import template
from django.forms import BoundField
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def field_widget(field: BoundField) -> SafeString:
    """Render a bound field's widget, marked invalid (and tied to its error) when it has errors."""
    if not field.errors:
        return field.as_widget()
    attrs = dict(field.field.widget.attrs)
    css = attrs.get("class", "")
    attrs["class"] = f"{css} is-invalid".strip()
    attrs["aria-invalid"] = "true"
    attrs["aria-describedby"] = f"{field.id_for_label}_err"
    return field.as_widget(attrs=attrs)
