"""Nurse forms. They parse and check field formats; the rules live in cohort.services,
whose refusals are attached to the same fields (see cohort.views)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from cohort.models import (
    ConsentElement,
    ConsentFormVersion,
    ConsentMode,
    DeathSource,
    Language,
    PrimaryTumour,
    ReferringDepartment,
    Sex,
    WithdrawalScope,
)
from cohort.rules import (
    Status,
    validate_hospital_number,
    validate_no_markup,
    validate_person_name,
    validate_phone,
)
from core import forms as core_forms
from core.forms import form_field
from core.models import Site

MAX_REASON = 2000


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs={"class": "form-control", **(attrs or {})}, format="%Y-%m-%d")


def _text(**attrs: Any) -> forms.TextInput:
    return forms.TextInput(attrs={"class": "form-control", **attrs})


def _select(**attrs: Any) -> forms.Select:
    return forms.Select(attrs={"class": "form-select", **attrs})


class NotFutureDateField(core_forms.NotFutureDateField):
    widget = DateInput


class ReasonField(forms.CharField):
    def __init__(self, *, required: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"class": "form-control", "rows": 2}))
        super().__init__(
            required=required,
            max_length=MAX_REASON,
            validators=[validate_no_markup],
            **kwargs,
        )


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=40,
        widget=forms.SearchInput(
            attrs={
                "class": "form-control",
                "placeholder": _("Study number or hospital record number"),
                "autocomplete": "off",
            }
        ),
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[
            ("", _("All")),
            (Status.ACTIVE, _("Active")),
            (Status.WITHDRAWN, _("Withdrawn")),
            (Status.DECEASED, _("Deceased")),
        ],
        widget=_select(),
    )


class RegistrationForm(forms.Form):
    site: forms.ModelChoiceField[Site] = forms.ModelChoiceField(
        label=_("Site"), queryset=None, empty_label=None, widget=_select()
    )
    # identifying data
    given_name = forms.CharField(
        label=_("Given name"),
        max_length=100,
        validators=[validate_person_name],
        widget=_text(autocomplete="off"),
    )
    family_name = forms.CharField(
        label=_("Family name"),
        max_length=100,
        validators=[validate_person_name],
        widget=_text(autocomplete="off"),
    )
    date_of_birth = NotFutureDateField(label=_("Date of birth"))
    hospital_number = forms.CharField(
        label=_("Hospital record number"),
        max_length=20,
        validators=[validate_hospital_number],
        widget=_text(autocomplete="off"),
    )
    email = forms.EmailField(
        label=_("Email"),
        required=False,
        max_length=254,
        widget=forms.EmailInput(attrs={"class": "form-control", "autocomplete": "off"}),
    )
    phone = forms.CharField(
        label=_("Phone"),
        required=False,
        max_length=20,
        validators=[validate_phone],
        widget=_text(autocomplete="off"),
    )
    preferred_language = forms.ChoiceField(
        label=_("Preferred language"), choices=Language.choices, widget=_select()
    )
    # clinical data
    sex = forms.ChoiceField(label=_("Sex"), choices=[("", "—"), *Sex.choices], widget=_select())
    primary_tumour = forms.ChoiceField(
        label=_("Primary tumour"), choices=[("", "—"), *PrimaryTumour.choices], widget=_select()
    )
    bone_metastases_diagnosed_on = NotFutureDateField(
        label=_("Date bone metastases were diagnosed"), required=False
    )
    referring_department = forms.ChoiceField(
        label=_("Referring department"),
        choices=[("", "—"), *ReferringDepartment.choices],
        widget=_select(),
    )

    IDENTITY = (
        "given_name",
        "family_name",
        "date_of_birth",
        "hospital_number",
        "email",
        "phone",
        "preferred_language",
    )
    CLINICAL = ("sex", "primary_tumour", "bone_metastases_diagnosed_on", "referring_department")

    def __init__(self, *args: Any, sites: QuerySet[Site], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "site", forms.ModelChoiceField).queryset = sites
        if sites.count() == 1:
            self.fields["site"].initial = sites.first()

    def identity_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.IDENTITY]

    def clinical_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.CLINICAL]


ANSWER_CHOICES = [("yes", _("Yes")), ("no", _("No")), ("", _("Not asked"))]


class ConsentForm(forms.Form):
    """The four consent elements of one consent conversation, as a nurse records them."""

    given_on = NotFutureDateField(label=_("Date of consent"))
    form_version = forms.ModelChoiceField(
        label=_("Consent form version"),
        queryset=ConsentFormVersion.objects.none(),
        widget=_select(),
    )
    mode = forms.ChoiceField(
        label=_("Mode"),
        choices=ConsentMode.choices,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )

    def __init__(
        self, *args: Any, form_versions: QuerySet[ConsentFormVersion], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "form_version", forms.ModelChoiceField).queryset = form_versions
        for element in ConsentElement:
            self.fields[f"element_{element.value}"] = forms.ChoiceField(
                label=element.label,
                choices=ANSWER_CHOICES,
                required=False,
                widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
            )

    def element_fields(self) -> list[forms.BoundField]:
        return [self[f"element_{e.value}"] for e in ConsentElement]

    def answers(self) -> dict[str, bool | None]:
        out: dict[str, bool | None] = {}
        for e in ConsentElement:
            value = self.cleaned_data.get(f"element_{e.value}")
            out[e.value] = {"yes": True, "no": False}.get(value or "")
        return out

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what Form.clean returns (the stub allows None)
        if not any(cleaned.get(f"element_{e.value}") for e in ConsentElement):
            raise forms.ValidationError(
                _("Answer at least one consent element."), code="no_consent_answer"
            )
        return cleaned


class ConsentCorrectionForm(forms.Form):
    answer = forms.ChoiceField(
        label=_("Answer"),
        choices=[("yes", _("Yes")), ("no", _("No"))],
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )
    given_on = NotFutureDateField(label=_("Date of consent"))
    form_version = forms.ModelChoiceField(
        label=_("Consent form version"),
        queryset=ConsentFormVersion.objects.none(),
        widget=_select(),
    )
    mode = forms.ChoiceField(
        label=_("Mode"),
        choices=ConsentMode.choices,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )
    reason = ReasonField(label=_("Reason for correction"))

    def __init__(
        self, *args: Any, form_versions: QuerySet[ConsentFormVersion], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "form_version", forms.ModelChoiceField).queryset = form_versions


class WithdrawalForm(forms.Form):
    scope = forms.ChoiceField(
        label=_("What does the participant withdraw from?"),
        choices=WithdrawalScope.choices,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )
    effective_on = NotFutureDateField(label=_("Effective from"))
    reason = ReasonField(
        label=_("Reason (optional)"),
        required=False,
        help_text=_("Optional. Never write identifying data here."),
    )


class DeathForm(forms.Form):
    died_on = NotFutureDateField(label=_("Date of death"))
    source = forms.ChoiceField(
        label=_("Source"), choices=[("", "—"), *DeathSource.choices], widget=_select()
    )
    confirm = forms.BooleanField(
        label=_(
            "I have checked this is the right participant. Recording a death stops all patient contact."
        ),
        required=True,
    )


class IdentityForm(forms.Form):
    given_name = RegistrationForm.base_fields["given_name"]
    family_name = RegistrationForm.base_fields["family_name"]
    date_of_birth = RegistrationForm.base_fields["date_of_birth"]
    hospital_number = RegistrationForm.base_fields["hospital_number"]
    email = RegistrationForm.base_fields["email"]
    phone = RegistrationForm.base_fields["phone"]
    preferred_language = RegistrationForm.base_fields["preferred_language"]
    reason = ReasonField(label=_("Reason for change"))


class WithdrawalCorrectionForm(forms.Form):
    effective_on = NotFutureDateField(label=_("Effective from"))
    reason = ReasonField(label=_("Reason for correction"))


class DeathCorrectionForm(forms.Form):
    died_on = NotFutureDateField(label=_("Date of death"))
    source = forms.ChoiceField(label=_("Source"), choices=DeathSource.choices, widget=_select())
    reason = ReasonField(label=_("Reason for correction"))
