"""Forms of the randomization screens. Rules live in services; forms only parse."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _

from cohort.models import ConsentFormVersion
from core.forms import form_field
from randomization.models import (
    STRATIFICATION_FACTORS,
    Answer,
    Criterion,
    CriterionKind,
    Decision,
    Environment,
    Method,
    TrialStatus,
)

if TYPE_CHECKING:  # pragma: no cover - django-stubs-ext is a development dependency
    from django_stubs_ext import StrOrPromise


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("format", "%Y-%m-%d")
        super().__init__(**kwargs)


def _date_field(
    label: StrOrPromise, required: bool = True, help_text: StrOrPromise = ""
) -> forms.DateField:
    return forms.DateField(
        label=label,
        required=required,
        help_text=help_text,
        widget=DateInput(attrs={"class": "form-control"}),
    )


class LookupForm(forms.Form):
    participant = forms.CharField(
        label=_("Study number"),
        max_length=20,
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": "PRE-00042"}),
    )


class ScreeningForm(forms.Form):
    """One yes / no / unknown radio group per current criterion, plus the screening date."""

    screened_on = _date_field(_("Screening date"))

    def __init__(
        self,
        *args: Any,
        criteria: Iterable[Criterion],
        derived: dict[str, dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.criteria = criteria
        # code -> {"answer": ..., "label": ..., "basis": ...}: answered by the system, read-only.
        self.derived = derived or {}
        for c in criteria:
            self.fields[f"c_{c.code}"] = forms.ChoiceField(
                label=c.text,
                choices=Answer.choices,
                widget=forms.RadioSelect,
                required=c.code not in self.derived,
            )

    def criterion_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "criterion": c,
                "field": self[f"c_{c.code}"],
                "is_inclusion": c.kind == CriterionKind.INCLUSION,
                "derived": self.derived.get(c.code),
                "undecided": bool(c.derived_from) and c.code not in self.derived,
            }
            for c in self.criteria
        ]

    def refusal_field(self, name: str) -> str:
        """A service error keyed by criterion code goes next to that criterion's answer
        (``core.forms.add_refusal``)."""
        return f"c_{name}" if f"c_{name}" in self.fields else name

    def answers(self) -> dict[str, str]:
        """Answers so far (also from an incomplete, unvalidated form: for the live verdict)."""
        source = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        out: dict[str, str] = {}
        for c in self.criteria:
            value = source.get(f"c_{c.code}") or self.data.get(f"c_{c.code}") or ""
            if value in Answer.values:
                out[c.code] = value
        return out


class ConfirmForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I have checked the eligibility summary and want to randomise this participant."),
        required=True,
    )


class DecisionForm(forms.Form):
    offered_on = _date_field(_("Offered on"))
    decision = forms.ChoiceField(
        label=_("Decision"), choices=Decision.choices, widget=forms.RadioSelect
    )
    decided_on = _date_field(_("Decision date"), required=False)
    refusal_reason = forms.CharField(
        label=_("Reason for refusal"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
        help_text=_("Refusers stay in the intervention arm (intention to treat)."),
    )
    consent_form_version = forms.ModelChoiceField(
        label=_("Trial consent form version"),
        queryset=ConsentFormVersion.objects.none(),
        required=False,
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    consent_date = _date_field(_("Trial consent date"), required=False)
    reason = forms.CharField(
        label=_("Reason for change"),
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"class": "form-control"}),
        help_text=_("Needed only when you change a recorded decision."),
    )

    def __init__(self, *args: Any, trial_code: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        qs = ConsentFormVersion.objects.filter(code__icontains=trial_code)
        if not qs.exists():
            qs = ConsentFormVersion.objects.all()
        form_field(self, "consent_form_version", forms.ModelChoiceField).queryset = qs.order_by(
            "code", "-effective_from"
        )


class TreatmentStartForm(forms.Form):
    planned = _date_field(_("Planned start of treatment (day 0)"), required=False)
    actual = _date_field(_("Actual start of treatment (day 0)"), required=False)
    reason = forms.CharField(
        label=_("Reason for change"),
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"class": "form-control"}),
        help_text=_("Needed only when you change a recorded date."),
    )


class DisclosureForm(forms.Form):
    disclosed_on = _date_field(_("Date of disclosure"))
    description = forms.CharField(
        label=_("What happened"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4, "class": "form-control"}),
        help_text=_("Who told whom what, and how. Never write identifying data here."),
    )


class CorrectionForm(forms.Form):
    reason = forms.CharField(
        label=_("Why was this participant randomised in error?"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "class": "form-control"}),
    )


class CorrectionDecideForm(forms.Form):
    confirm = forms.TypedChoiceField(
        choices=[("1", _("Confirm")), ("0", _("Reject"))],
        coerce=lambda v: v == "1",
        widget=forms.HiddenInput,
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"class": "form-control"}),
    )


class SequenceForm(forms.Form):
    method = forms.ChoiceField(
        label=_("Method"),
        choices=Method.choices,
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    environment = forms.ChoiceField(
        label=_("Environment"),
        choices=Environment.choices,
        widget=forms.Select(attrs={"class": "form-select"}),
        help_text=_("Test and production sequences are separate; this system uses %(env)s."),
    )
    factors = forms.MultipleChoiceField(
        label=_("Stratification / minimisation factors"),
        choices=list(STRATIFICATION_FACTORS.items()),
        initial=["site"],
        widget=forms.CheckboxSelectMultiple,
    )
    block_sizes = forms.CharField(
        label=_("Block sizes"),
        initial="4,6",
        required=False,
        widget=forms.TextInput(attrs={"class": "form-control"}),
        help_text=_("Comma-separated; each a multiple of the sum of the arm ratios."),
    )
    slots_per_stratum = forms.IntegerField(
        label=_("Slots per stratum"),
        required=False,
        min_value=1,
        max_value=10000,
        widget=forms.NumberInput(attrs={"class": "form-control"}),
        help_text=_("Default: the trial's target size."),
    )
    probability = forms.DecimalField(
        label=_("Minimisation: probability of the preferred arm"),
        initial="0.8",
        min_value=0.5,
        max_value=1,
        decimal_places=3,
        widget=forms.NumberInput(attrs={"class": "form-control", "step": "0.05"}),
    )

    def __init__(self, *args: Any, environment_label: StrOrPromise = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["environment"].help_text = self.fields["environment"].help_text % {
            "env": environment_label
        }

    def clean_block_sizes(self) -> list[int]:
        raw = self.cleaned_data.get("block_sizes") or ""
        try:
            sizes = [int(p) for p in raw.replace(" ", "").split(",") if p]
        except ValueError as exc:
            raise forms.ValidationError(_("Enter whole numbers separated by commas.")) from exc
        if any(s < 1 or s > 100 for s in sizes):
            raise forms.ValidationError(_("Block sizes must be between 1 and 100."))
        return sizes


class RetireForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for retiring"),
        max_length=2000,
        widget=forms.TextInput(attrs={"class": "form-control"}),
    )


class TrialStatusForm(forms.Form):
    """The next lifecycle step chosen by a statistician or administrator, with a reason."""

    status = forms.ChoiceField(
        label=_("New status"), widget=forms.Select(attrs={"class": "form-select"})
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.TextInput(attrs={"class": "form-control"}),
    )

    def __init__(self, *args: Any, current: str, **kwargs: Any) -> None:
        from randomization.lifecycle import manual_targets

        super().__init__(*args, **kwargs)
        form_field(self, "status", forms.ChoiceField).choices = [
            (s, TrialStatus(s).label) for s in manual_targets(current)
        ]
