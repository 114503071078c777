"""Questionnaire forms: instrument items turned into fields for a template, and a POST
turned back into typed answers. The item definitions and validation rules themselves
live in crf.instruments / crf.analgesics; this module only maps them to HTML forms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from core.forms import NotFutureDateField
from crf.models import Mode

ANALGESIC_ROWS = 4


@dataclass
class FieldView:
    code: str
    name: str
    kind: str
    label: str
    number: str = ""
    section: str = ""
    help: str = ""
    unit: str = ""
    required: bool = True
    min: Any = None
    max: Any = None
    integer: bool = True
    value: Any = None
    error: str = ""
    choices: list[tuple[int | str, str, bool]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    show_if: str = ""  # "name:1,2" for the progressive-disclosure script
    autofocus: bool = False  # the first field with an error: focused (and so scrolled to)


def _analgesic_options(
    language: str,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    from crf import analgesics

    t = analgesics.table()
    drugs = [(code, d.label.in_language(language)) for code, d in t.drugs.items()]
    routes = [(code, label.in_language(language)) for code, label in t.routes.items()]
    units = [(code, label.in_language(language)) for code, label in t.units.items()]
    return drugs, routes, units


def _posted_rows(data: QueryDict, name: str) -> list[dict[str, Any]]:
    """The medication rows exactly as posted (also the invalid ones), blank rows left out."""
    lists = [data.getlist(f"{name}__{part}") for part in ("drug", "route", "dose", "unit")]
    rows = []
    for index in range(max(map(len, lists), default=0)):
        drug, route, dose, unit = (
            (values[index] if index < len(values) else "").strip() for values in lists
        )
        if drug or route or dose:
            rows.append({"drug": drug, "route": route, "daily_dose": dose, "unit": unit})
    return rows


def posted_values(code: str, data: QueryDict, *, prefix: str = "") -> dict[str, Any]:
    """What was typed and chosen for instrument ``code`` in a POST, as it was sent (also
    what failed validation), so a page with errors shows it again instead of blanks."""
    from crf import instruments

    values: dict[str, Any] = {}
    for item in instruments.load(code).items:
        name = f"{prefix}{item.code}"
        if item.kind == "analgesics":
            rows = _posted_rows(data, name)
            if rows:
                values[item.code] = rows
        elif (raw := data.get(name, "")) != "":
            if item.kind == "choice" and raw.strip().lstrip("-").isdigit():
                values[item.code] = int(raw)
            else:
                values[item.code] = raw
    return values


def focus_first_error(*field_lists: list[FieldView]) -> str:
    """Mark the first field with an error (in page order) to be focused; its element id."""
    for views in field_lists:
        for view in views:
            if view.error:
                view.autofocus = True
                return f"item-{view.name}"
    return ""


def instrument_fields(
    code: str,
    *,
    language: str,
    answers: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    prefix: str = "",
) -> list[FieldView]:
    """The fields of instrument ``code`` for a template, filled with ``answers`` (typed
    answers, or :func:`posted_values` to show a refused POST again as it was sent)."""
    from crf import instruments

    answers = answers or {}
    errors = errors or {}
    instrument = instruments.load(code)
    views = []
    for item in instrument.items:
        value = answers.get(item.code)
        view = FieldView(
            code=item.code,
            name=f"{prefix}{item.code}",
            kind=item.kind,
            label=item.label(language),
            number=item.number,
            section=item.section.in_language(language) if item.section else "",
            help=item.help.in_language(language) if item.help else "",
            unit=item.unit.in_language(language) if item.unit else "",
            required=item.required,
            min=item.min,
            max=item.max,
            integer=item.integer,
            value="" if value is None else value,
            error=errors.get(item.code, ""),
        )
        if item.kind == "choice":
            view.choices = [
                (v, label.in_language(language), value == v) for v, label in item.choices
            ]
        if item.kind == "analgesics":
            drugs, routes, units = _analgesic_options(language)
            existing = list(value or []) if isinstance(value, list) else []
            blanks = max(ANALGESIC_ROWS - len(existing), 1)
            view.rows = [
                {
                    "drug": row.get("drug", ""),
                    "route": row.get("route", ""),
                    "dose": row.get("daily_dose", ""),
                    "unit": row.get("unit", ""),
                }
                for row in existing
            ] + [{"drug": "", "route": "", "dose": "", "unit": ""} for _ in range(blanks)]
            view.choices = []
            view.value = {"drugs": drugs, "routes": routes, "units": units}
        if item.show_if:
            target, values = item.show_if
            view.show_if = f"{prefix}{target}:{','.join(str(v) for v in values)}"
        views.append(view)
    return views


def parse_instrument(
    code: str, data: QueryDict, *, prefix: str = ""
) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed answers and field errors of instrument ``code`` from a POST (QueryDict)."""
    from crf import analgesics, instruments

    instrument = instruments.load(code)
    raw: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in instrument.items:
        name = f"{prefix}{item.code}"
        if item.kind == "analgesics":
            lists = [data.getlist(f"{name}__{part}") for part in ("drug", "route", "dose", "unit")]
            if not any(lists):
                continue
            rows, problems = analgesics.parse_rows(*lists)
            if problems:
                errors[item.code] = " ".join(problems)
            raw[item.code] = rows
            continue
        if name in data:
            raw[item.code] = data.get(name)
    answers, parse_errors = instruments.parse(code, raw)
    for key, rows in raw.items():
        if instrument.item(key).kind == "analgesics":
            answers[key] = rows
    errors.update(parse_errors)
    answers = instruments.drop_not_applicable(code, answers)
    answers = {k: v for k, v in answers.items() if v is not None and k not in errors}
    for key, message in instruments.validate(code, answers).items():
        errors.setdefault(key, message)
    return answers, errors


class EntryMetaForm(forms.Form):
    """How and when a paper or phone questionnaire was answered. Only the date is required;
    the time only when it is known (no time is invented). Which dates are possible is the
    service's rule (crf.services.questionnaire_enter); the confirmations it asks for come
    back in the hidden fields."""

    mode = forms.ChoiceField(
        label=_("Mode"), choices=[(Mode.PAPER, Mode.PAPER.label), (Mode.PHONE, Mode.PHONE.label)]
    )
    completed_on = NotFutureDateField(
        label=_("Date answered"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("The date the patient filled in the questionnaire (or answered by phone)."),
    )
    completed_time = forms.TimeField(
        label=_("Time answered (if known)"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text=_("Leave empty when only the date is known."),
    )
    confirm_unanswered = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    confirm_outside_window = forms.DateField(required=False, widget=forms.HiddenInput)


class CorrectionReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for change"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Required: why the answers are corrected (e.g. typing error against the paper form)."
        ),
    )

    def clean_reason(self) -> str:
        text = self.cleaned_data["reason"].strip()
        if not text:
            raise forms.ValidationError(_("Give a reason for the change."))
        return text
