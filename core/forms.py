"""Platform forms, and the one adapter that shows a service refusal on any HTML form."""

from __future__ import annotations

from typing import Any, TypeVar

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.refusals import Refusal, flat_messages, not_future

_F = TypeVar("_F", bound=forms.Field)


def form_field(form: forms.BaseForm, name: str, kind: type[_F]) -> _F:
    """``form.fields[name]`` as the field class it is declared with (``fields`` holds plain
    ``Field`` for the type checker), e.g. to give it a per-request ``queryset`` or
    ``choices``. A field of another class is a programming error (``TypeError``)."""
    field = form.fields[name]
    if not isinstance(field, kind):
        raise TypeError(f"{type(form).__name__}.{name} is no {kind.__name__}")
    return field


class LoginForm(AuthenticationForm):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


# --- service refusals on forms ----------------------------------------------------------------
def add_refusal(form: forms.BaseForm, exc: Refusal | ValidationError) -> None:
    """Show a service's refusal on ``form`` (after ``is_valid()``): each field error next to
    its field, everything else (unknown fields, the refusal's message) on top.

    Takes a :class:`~core.refusals.Refusal` or a Django ``ValidationError`` (a model's
    ``clean``). A form whose field names differ from the service's arguments maps them with
    a ``refusal_field(name) -> str`` method. An access refusal is no form error: it is
    raised again (the screen answers 403).
    """
    if isinstance(exc, PermissionDenied):
        raise exc
    if isinstance(exc, Refusal):
        by_field: dict[str, Any] = dict(exc.field_errors)
        on_top = list(exc.non_field_errors)
    elif hasattr(exc, "error_dict"):
        by_field = dict(exc.message_dict)
        on_top = by_field.pop(NON_FIELD_ERRORS, [])
    else:
        by_field, on_top = {}, list(exc.messages)
    rename = getattr(form, "refusal_field", None)
    for name, messages in by_field.items():
        field = rename(name) if rename is not None else name
        form.add_error(field if field in form.fields else None, flat_messages(messages))
    for message in on_top:
        form.add_error(None, message)


def refusal_notice(exc: Refusal | ValidationError) -> str:
    """A service's refusal as one line, for a screen without a form to show it on (a
    ``messages`` notice). An access refusal is raised again (403), as in :func:`add_refusal`."""
    if isinstance(exc, PermissionDenied):
        raise exc
    return " ".join(str(m) for m in exc.messages)


# --- fields ----------------------------------------------------------------------------------
class NotFutureDateField(forms.DateField):
    """A date field that applies the one "not in the future" rule (``core.refusals``) and
    tells the browser's date picker the latest day (``max``)."""

    def validate(self, value: Any) -> None:
        super().validate(value)
        try:
            not_future(value, field="")
        except Refusal as refusal:
            raise forms.ValidationError(str(refusal.message), code=refusal.code) from None

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        attrs["max"] = timezone.localdate().isoformat()
        return attrs
