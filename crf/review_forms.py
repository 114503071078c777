"""Forms of the data review screens (crf.review_views): they parse input only; every rule
about state and roles is the services' (crf.services), shown as their refusal's message."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crf import expected, instruments
from crf.models import QueryStatus

MAX_TEXT = 2000


def _set_choices(form: forms.Form, name: str, choices: list[tuple[str, Any]]) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices


def form_choices(language: str) -> list[tuple[str, str]]:
    return [
        (code, instruments.load(code).title.in_language(language)) for code in expected.FORM_CODES
    ]


class QueryFilterForm(forms.Form):
    """The query worklist's filters (GET); an invalid one is dropped and named."""

    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Unresolved (open and answered)")), *QueryStatus.choices],
    )
    form_code = forms.ChoiceField(label=_("Form"), required=False)
    raised_by = forms.TypedChoiceField(label=_("Raised by"), required=False, coerce=int)
    site = forms.TypedChoiceField(label=_("Site"), required=False, coerce=int)

    def __init__(
        self,
        data: Any,
        *,
        language: str,
        raisers: list[tuple[int, str]],
        sites: list[tuple[int, str]] | None,
    ):
        super().__init__(data)
        everything = [("", _("All"))]
        _set_choices(self, "form_code", everything + form_choices(language))
        _set_choices(self, "raised_by", everything + [(str(pk), name) for pk, name in raisers])
        if sites is None:
            del self.fields["site"]
        else:
            _set_choices(self, "site", everything + [(str(pk), name) for pk, name in sites])

    def filters(self) -> dict[str, Any]:
        """The valid filters (the invalid ones left out), as crf.selectors.query_worklist
        takes them."""
        self.is_valid()
        values = getattr(self, "cleaned_data", {})
        return {
            "status": values.get("status") or None,
            "form_code": values.get("form_code") or None,
            "raised_by": values.get("raised_by") or None,
            "site_id": values.get("site") or None,
        }


class QueryRaiseForm(forms.Form):
    item = forms.ChoiceField(label=_("About"), required=False)
    text = forms.CharField(label=_("Question"), max_length=MAX_TEXT, widget=forms.Textarea)
    suggested_value = forms.CharField(
        label=_("Suggested value (optional)"), required=False, max_length=200
    )

    def __init__(self, data: Any = None, *, items: list[tuple[str, str]]):
        super().__init__(data, prefix="raise")
        _set_choices(self, "item", [("", _("The whole form")), *items])


class QueryStepForm(forms.Form):
    """An answer, a re-opening (text required) or a closing (text optional, ``optional``)."""

    text = forms.CharField(
        label=_("Text"), max_length=MAX_TEXT, required=False, widget=forms.Textarea
    )


class SignForm(forms.Form):
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class ReasonForm(forms.Form):
    """A lock (reason optional) or an unlock (the service refuses one without a reason)."""

    reason = forms.CharField(label=_("Reason"), max_length=300, required=False)


class VerifyForm(forms.Form):
    SCOPES = [
        ("key", _("Key items")),
        ("all", _("Every answered item")),
        ("items", _("The items ticked")),
    ]
    scope = forms.ChoiceField(choices=SCOPES, initial="key")
    items = forms.MultipleChoiceField(required=False)

    def __init__(self, data: Any = None, *, items: list[tuple[str, str]]):
        super().__init__(data)
        _set_choices(self, "items", items)

    def chosen(self) -> list[str] | None:
        """What crf.services.record_verify takes: None (key items), ["*"] or the items."""
        scope = self.cleaned_data["scope"]
        if scope == "key":
            return None
        if scope == "all":
            return ["*"]
        return list(self.cleaned_data["items"])


class RecheckForm(forms.Form):
    form_code = forms.ChoiceField(label=_("Form"), required=False)

    def __init__(self, data: Any = None, *, language: str):
        super().__init__(data)
        _set_choices(self, "form_code", [("", _("Every form")), *form_choices(language)])
