"""Questionnaire and clinical forms: definition items turned into fields for a template,
and a POST turned back into typed answers. The item definitions and validation rules
themselves live in crf.instruments / crf.analgesics; this module only maps them to HTML
forms (one mapping for the patient pages, the paper entry and the nurses' form screens)."""

from __future__ import annotations

import re
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
    # clinical forms
    display: str = ""  # computed items (and dates): the value as shown
    groups: list[tuple[str, list[tuple[str, str, bool]]]] = field(default_factory=list)
    row_views: list[list[FieldView]] = field(default_factory=list)  # repeat items
    max_rows: int = 0  # repeat items: how many rows may be entered
    withheld: bool = False  # a possibly identifying text a pseudonymised reader never sees


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


def _posted_rows_of(item: Any, data: QueryDict, name: str) -> list[dict[str, Any]]:
    """A repeat item's rows as posted (``<name>-<row>-<field>``), blank rows left out and
    the rest numbered from 0, as :func:`crf.instruments.parse` numbers their errors."""
    numbers = sorted(
        {
            int(match[1])
            for key in data
            if (match := re.match(rf"^{re.escape(name)}-(\d{{1,3}})-[a-z][a-z0-9_]*$", key))
        }
    )
    rows = []
    for number in numbers:
        row: dict[str, Any] = {}
        for sub in item.items:
            key = f"{name}-{number}-{sub.code}"
            if sub.kind == "multi_choice":
                chosen = [v for v in data.getlist(key) if v]
                if chosen:
                    row[sub.code] = chosen
            elif (raw := data.get(key, "")) != "":
                row[sub.code] = raw
        if row:
            rows.append(row)
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
        elif item.kind == "repeat":
            values[item.code] = _posted_rows_of(item, data, name)
        elif item.kind == "multi_choice":
            values[item.code] = [v for v in data.getlist(name) if v]
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
            for candidate in [view, *(sub for row in view.row_views for sub in row)]:
                if candidate.error:
                    candidate.autofocus = True
                    return f"item-{candidate.name}"
    return ""


REPEAT_BLANK_ROWS = 1  # blank rows shown under a repeat's rows (more with "add row")
_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_ISO_MOMENT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})")
YES_NO = (("yes", _("Yes")), ("no", _("No")))
COMPUTED_LABELS = {
    "stable": _("stable"),
    "potentially_unstable": _("potentially unstable"),
    "unstable": _("unstable"),
}


def _typed_day(value: Any) -> str:
    """An ISO date as a nurse types it (dd-mm-yyyy); anything else (as typed) unchanged."""
    if isinstance(value, str) and (match := _ISO_DAY.match(value)):
        return f"{match[3]}-{match[2]}-{match[1]}"
    return "" if value is None else str(value)


def _typed_moment(value: Any) -> str:
    """An ISO date-time as typed (dd-mm-yyyy hh:mm); anything else unchanged."""
    if isinstance(value, str) and (match := _ISO_MOMENT.match(value)):
        return f"{match[3]}-{match[2]}-{match[1]} {match[4]}:{match[5]}"
    return "" if value is None else str(value)


def _yes_no(value: Any) -> str:
    if value is True or (isinstance(value, str) and value.strip().lower() in ("yes", "ja")):
        return "yes"
    if value is False or (isinstance(value, str) and value.strip().lower() in ("no", "nee")):
        return "no"
    return ""


def _show_if_values(values: tuple[Any, ...]) -> str:
    return ",".join(("yes" if v else "no") if isinstance(v, bool) else str(v) for v in values)


def _computed_display(value: Any) -> str:
    if value is None:
        return ""
    return str(COMPUTED_LABELS.get(value, value)) if isinstance(value, str) else str(value)


def _code_list_groups(
    list_code: str, selected: Any
) -> list[tuple[str, list[tuple[str, str, bool]]]]:
    """The current terms of a code list by system organ class, for a select."""
    from crf import codelists

    groups: dict[str, list[tuple[str, str, bool]]] = {}
    for term in codelists.terms(list_code):
        groups.setdefault(term.soc, []).append((term.code, term.label, term.code == selected))
    return list(groups.items())


def _field_view(item: Any, name: str, value: Any, error: str, language: str) -> FieldView:
    """One item (or a repeat's field) as a :class:`FieldView` holding ``value`` (typed, or
    as posted)."""
    view = FieldView(
        code=item.code,
        name=name,
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
        error=error,
    )
    if item.kind == "choice":
        view.choices = [
            (v, label.in_language(language), value is not None and str(value) == str(v))
            for v, label in item.choices
        ]
    elif item.kind == "yes_no":
        chosen = _yes_no(value)
        view.choices = [(v, str(label), chosen == v) for v, label in YES_NO]
        view.value = chosen
    elif item.kind == "multi_choice":
        ticked = {str(v) for v in value} if isinstance(value, list | tuple) else set()
        view.choices = [
            (v, label.in_language(language), str(v) in ticked) for v, label in item.choices
        ]
    elif item.kind == "date":
        view.value = _typed_day(value)
    elif item.kind == "datetime":
        view.value = _typed_moment(value)
    elif item.kind == "code_list":
        view.groups = _code_list_groups(item.code_list, value)
    elif item.kind == "computed":
        view.display = _computed_display(value)
    return view


def instrument_fields(
    code: str,
    *,
    language: str,
    answers: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    prefix: str = "",
    extra_rows: Mapping[str, int] | None = None,
    withheld: frozenset[str] | set[str] = frozenset(),
) -> list[FieldView]:
    """The fields of instrument ``code`` for a template, filled with ``answers`` (typed
    answers, or :func:`posted_values` to show a refused POST again as it was sent).

    Repeat items get their rows plus a blank one (``extra_rows``: at least that many rows
    of an item, for "add row"); items in ``withheld`` are shown without their value."""
    from crf import instruments

    answers = answers or {}
    errors = errors or {}
    extra_rows = extra_rows or {}
    instrument = instruments.load(code)
    views = []
    for item in instrument.items:
        value = answers.get(item.code)
        view = _field_view(item, f"{prefix}{item.code}", value, errors.get(item.code, ""), language)
        if item.kind == "repeat":
            given = [r for r in value if isinstance(r, Mapping)] if isinstance(value, list) else []
            limit = int(item.max) if item.max is not None else instruments.DEFAULT_REPEAT_ROWS
            wanted = max(len(given) + REPEAT_BLANK_ROWS, int(item.min or 1))
            shown = min(max(wanted, extra_rows.get(item.code, 0)), limit)
            view.max_rows = limit
            view.value = ""
            view.row_views = [
                [
                    _field_view(
                        sub,
                        f"{prefix}{item.code}-{index}-{sub.code}",
                        None
                        if f"{item.code}.{sub.code}" in withheld
                        else (given[index] if index < len(given) else {}).get(sub.code),
                        errors.get(f"{item.code}-{index}-{sub.code}", ""),
                        language,
                    )
                    for sub in item.items
                ]
                for index in range(shown)
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
            view.show_if = f"{prefix}{target}:{_show_if_values(values)}"
        if item.code in withheld:
            view.withheld, view.value, view.display, view.row_views = True, "", "", []
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
        if item.kind == "repeat":  # its rows' fields: <item>-<row>-<field>
            subs = {sub.code: sub for sub in item.items}
            for key in data:
                if key.startswith(f"{name}-"):
                    sub = subs.get(key.rsplit("-", 1)[-1])
                    multi = sub is not None and sub.kind == "multi_choice"
                    raw[key[len(prefix) :]] = data.getlist(key) if multi else data.get(key)
            if name in data:
                raw[item.code] = ""
            continue
        if item.kind == "multi_choice":
            if name in data:
                raw[item.code] = data.getlist(name)
            continue
        if name in data:
            raw[item.code] = data.get(name)
    answers, parse_errors = instruments.parse(code, raw)
    for key, rows in raw.items():
        if instrument.has_item(key) and instrument.item(key).kind == "analgesics":
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
