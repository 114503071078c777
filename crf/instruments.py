"""Questionnaire instruments as data: items, response scales and texts in Dutch and English.

The definitions live in ``crf/instruments/<code>.json`` (one file per instrument, with its
version) and are read once per process with :func:`load`. This module is pure Python over
plain values: no ORM, no I/O beyond reading those package data files.

Licensing: the EORTC (QLQ-C15-PAL, QLQ-BM22), EuroQol (EQ-5D-5L), MD Anderson (BPI) and iMTA
(iMCQ, iPCQ) instruments are copyrighted. The data files hold short paraphrased item texts
that name each item's topic, with the exact response scale and the exact item order and
numbering (so scoring maps 1:1). The validated official texts and translations must be
obtained from the licensors under the sponsor's licence and loaded into these files before
use with patients (each instrument's ``licence_note`` says so).

Answers are a ``dict`` of item code to a plain value:

- ``choice``: ``int`` (one of the item's choice values);
- ``number``: ``int`` or ``float`` within ``[min, max]`` (``int`` only when ``integer``);
- ``text``: ``str`` (at most ``max`` characters);
- ``analgesics``: a list of ``{"drug", "route", "daily_dose", "unit"}`` dicts (see
  :mod:`crf.analgesics`), at least ``min`` rows. In the pain instrument the list follows
  the yes/no item ``uses_analgesics`` and applies only after "yes", so "no painkillers"
  is an explicit answer and a skipped list is never mistaken for "none" (OMED 0).

``None`` (or a missing key, or an empty text) means "not answered".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "I18n",
    "Item",
    "Instrument",
    "UnknownInstrument",
    "all_codes",
    "load",
    "validate",
    "applicable_items",
    "answered_count",
    "drop_not_applicable",
    "parse",
    "unanswered_items",
]

KINDS = ("choice", "number", "text", "analgesics")
LANGUAGES = ("nl", "en")
DEFAULT_TEXT_MAX = 2000
DEFAULT_ANALGESIC_ROWS = 20

# The instruments in the order a questionnaire presents them.
_CODES = ("c15pal", "bm22", "pain", "eq5d5l", "imcq", "ipcq")


def _(message: str) -> str:
    """Translate through Django when it is configured; the identity otherwise.

    Kept lazy so this module stays importable (and testable) without Django settings.
    """
    try:
        from django.utils.translation import gettext

        return gettext(message)
    except Exception:  # ImproperlyConfigured outside Django, AppRegistryNotReady at import
        return message


class UnknownInstrument(LookupError):
    """No instrument with that code."""


class I18n(dict[str, str]):
    """An immutable ``{"nl": ..., "en": ...}`` text; a real ``dict`` so JSON encoders accept it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        missing = [lang for lang in LANGUAGES if not isinstance(self.get(lang), str)]
        if missing:
            raise ValueError(f"text needs {missing}: {dict(self)!r}")

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("instrument texts are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def in_language(self, language: str | None) -> str:
        """The text in ``language`` ("nl", "en", "en-gb" ...), Dutch when not available."""
        lang = (language or "nl").split("-")[0].lower()
        return self.get(lang) or self["nl"]


@dataclass(frozen=True)
class Item:
    """One question. ``code`` is stable and used as the answer key (e.g. ``"q1"``)."""

    code: str
    kind: str
    text: I18n
    choices: tuple[tuple[int, I18n], ...] = ()
    min: float | None = None
    max: float | None = None
    required: bool = True
    # Extensions beyond the core interface (all optional):
    number: str = ""  # the printed item number on the official form ("1" ... "22")
    section: I18n | None = None  # heading shown above this item (recall period, part)
    help: I18n | None = None  # a short hint under the question
    unit: I18n | None = None  # unit shown next to a number field
    integer: bool = True  # number items: whole numbers only
    show_if: tuple[str, tuple[int, ...]] | None = None  # (item code, values) that make it apply

    @property
    def choice_values(self) -> tuple[int, ...]:
        return tuple(value for value, _label in self.choices)

    def label(self, language: str | None = None) -> str:
        return self.text.in_language(language)

    def choice_label(self, value: int, language: str | None = None) -> str | None:
        for choice_value, label in self.choices:
            if choice_value == value:
                return label.in_language(language)
        return None


@dataclass(frozen=True)
class Instrument:
    """An instrument definition as loaded from its data file."""

    code: str
    version: str
    title: I18n
    instructions: I18n
    licence_note: str
    items: tuple[Item, ...]
    source: str = ""  # what the item structure follows (publication / official version)
    recall: I18n | None = None
    _index: Mapping[str, Item] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {item.code: item for item in self.items}
        if len(index) != len(self.items):
            raise ValueError(f"{self.code}: duplicate item codes")
        object.__setattr__(self, "_index", index)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def item(self, code: str) -> Item:
        try:
            return self._index[code]
        except KeyError:
            raise KeyError(f"{self.code} has no item {code!r}") from None

    def has_item(self, code: str) -> bool:
        return code in self._index

    @property
    def item_codes(self) -> tuple[str, ...]:
        return tuple(item.code for item in self.items)


# --------------------------------------------------------------------------- loading


def _text(value: Any, where: str) -> I18n:
    if isinstance(value, str):
        raise ValueError(f"{where}: text must be an object with 'nl' and 'en'")
    try:
        return I18n(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _maybe_text(value: Any, where: str) -> I18n | None:
    return None if value is None else _text(value, where)


def _build_item(raw: Mapping[str, Any], scales: Mapping[str, Any], where: str) -> Item:
    code = raw["code"]
    kind = raw["kind"]
    if kind not in KINDS:
        raise ValueError(f"{where}.{code}: unknown kind {kind!r}")
    choices_raw = raw.get("choices", ())
    if isinstance(choices_raw, str):
        choices_raw = scales[choices_raw]
    choices = tuple(
        (int(value), _text(label, f"{where}.{code}.choice")) for value, label in choices_raw
    )
    if kind == "choice" and not choices:
        raise ValueError(f"{where}.{code}: a choice item needs choices")
    if kind != "choice" and choices:
        raise ValueError(f"{where}.{code}: only choice items have choices")
    values = [value for value, _label in choices]
    if len(set(values)) != len(values):
        raise ValueError(f"{where}.{code}: duplicate choice values")
    minimum = raw.get("min", min(values) if values else None)
    maximum = raw.get("max", max(values) if values else None)
    if kind == "number" and (minimum is None or maximum is None or minimum > maximum):
        raise ValueError(f"{where}.{code}: a number item needs min <= max")
    show_if = raw.get("show_if")
    return Item(
        code=code,
        kind=kind,
        text=_text(raw["text"], f"{where}.{code}"),
        choices=choices,
        min=minimum,
        max=maximum,
        required=bool(raw.get("required", True)),
        number=str(raw.get("number", "")),
        section=_maybe_text(raw.get("section"), f"{where}.{code}.section"),
        help=_maybe_text(raw.get("help"), f"{where}.{code}.help"),
        unit=_maybe_text(raw.get("unit"), f"{where}.{code}.unit"),
        integer=bool(raw.get("integer", True)),
        show_if=(show_if["item"], tuple(int(v) for v in show_if["in"])) if show_if else None,
    )


def _read(code: str) -> dict[str, Any]:
    path = resources.files("crf").joinpath("instruments", f"{code}.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def instrument_from_data(data: Mapping[str, Any]) -> Instrument:
    """Build (and check) an :class:`Instrument` from a parsed data file."""
    code = data["code"]
    scales = data.get("response_scales", {})
    items = tuple(_build_item(raw, scales, code) for raw in data["items"])
    instrument = Instrument(
        code=code,
        version=str(data["version"]),
        title=_text(data["title"], f"{code}.title"),
        instructions=_text(data["instructions"], f"{code}.instructions"),
        licence_note=str(data["licence_note"]),
        items=items,
        source=str(data.get("source", "")),
        recall=_maybe_text(data.get("recall"), f"{code}.recall"),
    )
    seen: set[str] = set()
    for item in items:
        if item.show_if is not None:
            target_code, target_values = item.show_if
            if target_code not in seen:
                raise ValueError(f"{code}.{item.code}: show_if must name an earlier item")
            target = instrument.item(target_code)
            if target.kind != "choice" or not set(target_values) <= set(target.choice_values):
                raise ValueError(f"{code}.{item.code}: show_if must name choice values")
        seen.add(item.code)
    return instrument


@cache
def load(code: str) -> Instrument:
    """The instrument ``code`` (``c15pal``, ``bm22``, ``pain``, ``eq5d5l``, ``imcq``, ``ipcq``)."""
    if code not in _CODES:
        raise UnknownInstrument(code)
    data = _read(code)
    if data.get("code") != code:
        raise ValueError(f"{code}.json declares code {data.get('code')!r}")
    return instrument_from_data(data)


def all_codes() -> list[str]:
    """Every instrument code, in presentation order."""
    return list(_CODES)


# --------------------------------------------------------------------------- validation


def _answered(value: Any) -> bool:
    if value is None:
        return False
    return not (isinstance(value, str) and value.strip() == "")


def applicable_items(code: str, answers: Mapping[str, Any]) -> list[Item]:
    """Items that apply given ``answers`` (an item with ``show_if`` applies only when the
    item it depends on is answered with one of the listed values)."""
    instrument = load(code)
    result = []
    applies: set[str] = set()
    for item in instrument.items:  # a show_if target always comes earlier (checked on load)
        if item.show_if is not None:
            target, values = item.show_if
            if target not in applies or answers.get(target) not in values:
                continue
        applies.add(item.code)
        result.append(item)
    return result


def drop_not_applicable(code: str, answers: Mapping[str, Any]) -> dict[str, Any]:
    """``answers`` without answers to items that do not apply (e.g. working hours after
    "no paid work"), so a page without JavaScript can submit every field."""
    keep = {item.code for item in applicable_items(code, answers)}
    return {key: value for key, value in answers.items() if key in keep}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_choice(item: Item, value: Any) -> str | None:
    if not _is_int(value):
        return _("Choose one of the answers.")
    if value not in item.choice_values:
        return _("Choose one of the answers.")
    return None


def _check_number(item: Item, value: Any) -> str | None:
    if not _is_number(value):
        return _("Enter a number.")
    if item.integer and not float(value).is_integer():
        return _("Enter a whole number.")
    if (item.min is not None and value < item.min) or (item.max is not None and value > item.max):
        return _("Enter a number from %(min)s to %(max)s.") % {
            "min": _fmt(item.min),
            "max": _fmt(item.max),
        }
    return None


def _check_text(item: Item, value: Any) -> str | None:
    if not isinstance(value, str):
        return _("Enter text.")
    limit = int(item.max) if item.max is not None else DEFAULT_TEXT_MAX
    if len(value) > limit:
        return _("Use at most %(max)s characters.") % {"max": limit}
    return None


def _check_analgesics(item: Item, value: Any) -> str | None:
    from crf.analgesics import check_row

    if not isinstance(value, list | tuple):
        return _("Enter the pain medication as a list.")
    limit = int(item.max) if item.max is not None else DEFAULT_ANALGESIC_ROWS
    if len(value) > limit:
        return _("Enter at most %(max)s medicines.") % {"max": limit}
    if item.min and len(value) < item.min:
        return _("Enter at least one medicine.")
    for index, row in enumerate(value, start=1):
        problem = check_row(row)
        if problem:
            return _("Medicine %(row)s: %(problem)s") % {"row": index, "problem": problem}
    return None


_CHECKS = {
    "choice": _check_choice,
    "number": _check_number,
    "text": _check_text,
    "analgesics": _check_analgesics,
}


def validate(code: str, answers: Mapping[str, Any], complete: bool = False) -> dict[str, str]:
    """Field errors of ``answers`` for instrument ``code``: ``{item code: message}``.

    Empty when valid. Unknown items, wrong types and out-of-range values are errors; an
    answer to an item that does not apply (its ``show_if`` is not met) is an error too.
    Missing answers are allowed (a patient may save and come back) unless ``complete`` is
    true, in which case every applicable required item must be answered.
    """
    instrument = load(code)
    if not isinstance(answers, Mapping):
        return {"__all__": _("Answers must be a mapping of item codes to values.")}
    errors: dict[str, str] = {}
    applicable = {item.code for item in applicable_items(code, answers)}
    for key, value in answers.items():
        if not isinstance(key, str) or not instrument.has_item(key):
            errors[str(key)] = _("Unknown question.")
            continue
        if not _answered(value):
            continue
        item = instrument.item(key)
        if key not in applicable:
            errors[key] = _("This question does not apply given an earlier answer.")
            continue
        problem = _CHECKS[item.kind](item, value)
        if problem:
            errors[key] = problem
    if complete:
        for item in instrument.items:
            if (
                item.required
                and item.code in applicable
                and item.code not in errors
                and not _answered(answers.get(item.code))
            ):
                errors[item.code] = _("Please answer this question.")
    return errors


def unanswered_items(code: str, answers: Mapping[str, Any]) -> list[Item]:
    """The applicable required items of ``answers`` left unanswered. A patient may skip
    any item (SPEC.md §3.6); this is what the page tells them before they send, and what a
    nurse confirms before saving a partial paper entry."""
    return [
        item
        for item in applicable_items(code, answers)
        if item.required and not _answered(answers.get(item.code))
    ]


def answered_count(code: str, answers: Mapping[str, Any]) -> int:
    """How many items of instrument ``code`` have an answer in ``answers``."""
    instrument = load(code)
    return sum(1 for key, value in answers.items() if instrument.has_item(key) and _answered(value))


# --------------------------------------------------------------------------- form input


def _parse_number(text: str) -> int | float | None:
    cleaned = text.strip().replace(",", ".")
    if cleaned == "":
        return None
    try:
        number = float(cleaned)
    except ValueError:
        raise ValueError from None
    if not math.isfinite(number):
        raise ValueError
    return int(number) if number.is_integer() and "." not in cleaned else number


def parse(code: str, raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Turn submitted form strings into typed answers: ``(answers, errors)``.

    Choice and number fields arrive as strings ("3", "2,5"); empty strings become ``None``.
    Keys that are not items of the instrument are ignored (CSRF token, buttons); the
    analgesics item is passed through unchanged (build its list with
    :func:`crf.analgesics.parse_rows`). Run :func:`validate` on the result.
    """
    instrument = load(code)
    answers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in instrument.items:
        if item.code not in raw:
            continue
        value = raw[item.code]
        if item.kind in ("choice", "number") and isinstance(value, str):
            try:
                value = _parse_number(value)
            except ValueError:
                errors[item.code] = (
                    _("Choose one of the answers.")
                    if item.kind == "choice"
                    else _("Enter a number.")
                )
                continue
            if item.kind == "choice" and isinstance(value, float):
                errors[item.code] = _("Choose one of the answers.")
                continue
        elif item.kind == "text" and isinstance(value, str):
            value = value.strip() or None
        answers[item.code] = value
    return answers, errors
