"""Definitions as data: patient questionnaires and clinical case report forms.

One format, one loader, one validator for both. Questionnaires live in
``crf/instruments/<code>.json`` (``all_codes()`` lists them in presentation order),
clinical forms in ``crf/definitions/<code>.json`` (``all_codes(kind="clinical")``). Each
file holds one definition with its version and is read once per process with
:func:`load`. This module is pure Python over plain values: no ORM, no I/O beyond reading
those package data files (and, for code-list items, :mod:`crf.codelists`).

Licensing: the EORTC (QLQ-C15-PAL, QLQ-BM22), EuroQol (EQ-5D-5L), MD Anderson (BPI) and iMTA
(iMCQ, iPCQ) instruments are copyrighted. The data files hold short paraphrased item texts
that name each item's topic, with the exact response scale and the exact item order and
numbering (so scoring maps 1:1). The validated official texts and translations must be
obtained from the licensors under the sponsor's licence and loaded into these files before
use with patients (each instrument's ``licence_note`` says so).

A definition's top level: ``code``, ``version``, ``title``, ``kind`` ("questionnaire", the
default, or "clinical"), for clinical forms ``occurs`` ("once", "per_timepoint",
"per_event", "log"), ``instructions`` / ``licence_note`` / ``recall`` (required for
questionnaires), ``response_scales`` (named lists of ``[value, {"nl", "en"}]`` pairs),
``checks`` (cross-item checks of :data:`crf.computed.CHECKS`), ``signature``, ``sdv`` and
``items``. An item has ``code``, ``kind``, ``text`` (its label), optionally ``section``,
``help``, ``unit``, ``min``, ``max``, ``integer``, ``choices`` (a scale name or inline
pairs), ``required`` (default true: required for completion) and ``show_if`` (a condition,
see :mod:`crf.conditions`).

Answers (a record's data) are a ``dict`` of item code to a plain JSON value:

- ``choice``: one of the item's choice values (``int`` in questionnaires, ``str`` codes
  such as ``"1a"`` in clinical forms);
- ``number``: ``int`` or ``float`` within ``[min, max]`` (``int`` only when ``integer``);
- ``text``: ``str`` of at most ``max`` characters (default 2000), stored as typed (escaped
  on output), no control characters; ``identifying_risk`` marks a free text that may
  identify the patient;
- ``analgesics``: a list of ``{"drug", "route", "daily_dose", "unit"}`` dicts (see
  :mod:`crf.analgesics`), at least ``min`` rows. In the pain instrument the list follows
  the yes/no item ``uses_analgesics`` and applies only after "yes", so "no painkillers"
  is an explicit answer and a skipped list is never mistaken for "none" (OMED 0);
- ``date``: ISO ``"yyyy-mm-dd"`` (not in the future unless ``"not_future": false``);
- ``datetime``: ISO ``"yyyy-mm-ddThh:mm"`` (seconds and an offset optional; without an
  offset it is Amsterdam wall-clock time);
- ``yes_no``: ``true`` / ``false``;
- ``multi_choice``: a list of distinct choice values (``min`` / ``max`` how many);
- ``code_list``: a term code of the named code list (``"code_list": "ctcae_v5"``);
- ``repeat``: a list of rows (dicts over the group's ``items``), ``min`` / ``max`` rows;
- ``computed``: never typed; :func:`compute` fills it from ``function`` and ``inputs``
  (see :mod:`crf.computed`).

``None`` (or a missing key, an empty text or an empty list) means "not answered".
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from crf import conditions
from crf.computed import AMSTERDAM, CHECKS, COMPUTATIONS, Finding, as_date, as_datetime

__all__ = [
    "I18n",
    "Item",
    "Instrument",
    "UnknownInstrument",
    "all_codes",
    "applicable_items",
    "answered_count",
    "check_findings",
    "compute",
    "definition_file_names",
    "definition_source",
    "drop_not_applicable",
    "findings",
    "instrument_from_data",
    "load",
    "parse",
    "unanswered_items",
    "validate",
]

KINDS = (
    "choice",
    "number",
    "text",
    "analgesics",
    "date",
    "datetime",
    "yes_no",
    "multi_choice",
    "code_list",
    "repeat",
    "computed",
)
DEFINITION_KINDS = ("questionnaire", "clinical")
OCCURS = ("once", "per_timepoint", "per_event", "log")
LANGUAGES = ("nl", "en")
DEFAULT_TEXT_MAX = 2000
DEFAULT_ANALGESIC_ROWS = 20
DEFAULT_REPEAT_ROWS = 20
EARLIEST_DATE = date(1900, 1, 1)
# A date-time "now" typed on a ward clock a few minutes ahead is not in the future.
CLOCK_SKEW = timedelta(minutes=10)

# The questionnaires in the order a questionnaire presents them.
_CODES = ("c15pal", "bm22", "pain", "eq5d5l", "imcq", "ipcq")
# The clinical forms in the order of SPEC.md §3.7 (files not listed here follow by name).
_CLINICAL_ORDER = (
    "baseline_clinical",
    "sbrt_delivery",
    "surgery",
    "rt_after_surgery",
    "admission",
    "followup_clinical",
    "adverse_event",
    "systemic_therapy",
    "deviation",
    "end_of_study",
)
FOLDERS = {"questionnaire": "instruments", "clinical": "definitions"}
_CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_TOP_KEYS = frozenset(
    {
        "code",
        "version",
        "version_note",
        "source",
        "licence_note",
        "title",
        "instructions",
        "recall",
        "response_scales",
        "items",
        "kind",
        "occurs",
        "checks",
        "signature",
        "sdv",
    }
)
_ITEM_KEYS = frozenset(
    {
        "code",
        "kind",
        "text",
        "number",
        "section",
        "help",
        "unit",
        "min",
        "max",
        "integer",
        "choices",
        "required",
        "show_if",
        "not_future",
        "identifying_risk",
        "code_list",
        "items",
        "function",
        "inputs",
    }
)


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
    """No definition with that code."""


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


ChoiceValue = int | str


@dataclass(frozen=True)
class Item:
    """One question or field. ``code`` is stable and used as the answer key (e.g. ``"q1"``)."""

    code: str
    kind: str
    text: I18n
    choices: tuple[tuple[ChoiceValue, I18n], ...] = ()
    min: float | None = None
    max: float | None = None
    required: bool = True
    # Extensions beyond the core interface (all optional):
    number: str = ""  # the printed item number on the official form ("1" ... "22")
    section: I18n | None = None  # heading shown above this item (recall period, part)
    help: I18n | None = None  # a short hint under the question
    unit: I18n | None = None  # unit shown next to a number field
    integer: bool = True  # number items: whole numbers only
    # (item code, values) when the condition is one plain "item in values" comparison,
    # for the pages' progressive-disclosure script; ``condition`` is the full condition.
    show_if: tuple[str, tuple[Any, ...]] | None = None
    condition: Mapping[str, Any] | None = field(default=None, compare=False)
    not_future: bool = True  # date and date-time items
    identifying_risk: bool = False  # text items that may identify the patient
    code_list: str = ""  # code_list items: the list's code
    items: tuple[Item, ...] = ()  # repeat items: the fields of one row
    function: str = ""  # computed items: a name of crf.computed.COMPUTATIONS
    inputs: tuple[str, ...] = ()  # computed items: the input item codes, in parameter order

    @property
    def choice_values(self) -> tuple[ChoiceValue, ...]:
        return tuple(value for value, _label in self.choices)

    def label(self, language: str | None = None) -> str:
        return self.text.in_language(language)

    def choice_label(self, value: ChoiceValue, language: str | None = None) -> str | None:
        for choice_value, label in self.choices:
            if choice_value == value and type(choice_value) is type(value):
                return label.in_language(language)
        return None

    def sub_item(self, code: str) -> Item:
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(f"{self.code} has no field {code!r}")


@dataclass(frozen=True)
class Instrument:
    """A definition (questionnaire or clinical form) as loaded from its data file."""

    code: str
    version: str
    title: I18n
    instructions: I18n
    licence_note: str
    items: tuple[Item, ...]
    source: str = ""  # what the item structure follows (publication / official version)
    recall: I18n | None = None
    kind: str = "questionnaire"
    occurs: str = ""  # clinical forms: once | per_timepoint | per_event | log
    # cross-item checks: (name, {parameter: item code})
    checks: tuple[tuple[str, Mapping[str, Any]], ...] = field(default=(), compare=False)
    signature: str = ""  # clinical forms: the role that signs ("investigator")
    sdv: tuple[str, ...] = ()  # items checked against source documents by monitors
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

    @property
    def computed_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.kind == "computed")


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


def _choice_value(value: Any, where: str) -> ChoiceValue:
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise ValueError(f"{where}: a choice value is a whole number or a code, got {value!r}")
    return value


def _known_code_list(name: Any, where: str) -> str:
    from crf import codelists

    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: a code_list item names its code list")
    try:  # a list shipped with the code (a definition never depends on the database)
        codelists.shipped(name)
    except (LookupError, ValueError):
        raise ValueError(f"{where}: unknown code list {name!r}") from None
    return name


def _plain_show_if(condition: Mapping[str, Any] | None) -> tuple[str, tuple[Any, ...]] | None:
    if condition is None or "item" not in condition:
        return None
    if "in" in condition:
        return condition["item"], tuple(condition["in"])
    if "equals" in condition:
        return condition["item"], (condition["equals"],)
    return None


def _build_item(
    raw: Any,
    scales: Mapping[str, Any],
    where: str,
    *,
    earlier: Mapping[str, Item],
    outer: Mapping[str, Item] | None = None,
) -> Item:
    """One item of ``where`` (``"<file>"``), checked against the items before it.

    ``earlier`` are the items before this one (in its row, for a repeat's field);
    ``outer`` the form-level items before the repeat when building a repeat's field."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: an item must be an object, got {raw!r}")
    code = raw.get("code")
    if not isinstance(code, str) or not _CODE_PATTERN.match(code):
        raise ValueError(f"{where}: item code {code!r} must be lower-case letters, digits, _")
    where = f"{where}, item {code!r}"
    unknown = sorted(set(raw) - _ITEM_KEYS)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {unknown} (the label is 'text', a condition 'show_if')"
        )
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown kind {kind!r}")
    if "text" not in raw:
        raise ValueError(f"{where}: an item needs a 'text' (its label)")
    choices_raw = raw.get("choices", ())
    if isinstance(choices_raw, str):
        if choices_raw not in scales:
            raise ValueError(f"{where}: unknown response scale {choices_raw!r}")
        choices_raw = scales[choices_raw]
    try:
        choices = tuple(
            (_choice_value(value, where), _text(label, f"{where}, choice {value!r}"))
            for value, label in choices_raw
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from None
    if kind in ("choice", "multi_choice") and not choices:
        raise ValueError(f"{where}: a {kind} item needs choices")
    if kind not in ("choice", "multi_choice") and choices:
        raise ValueError(f"{where}: only choice and multi_choice items have choices")
    values = [value for value, _label in choices]
    if len(set(values)) != len(values):
        raise ValueError(f"{where}: duplicate choice values")
    if len({type(value) for value in values}) > 1:
        raise ValueError(f"{where}: choice values are all numbers or all codes")
    numeric = bool(values) and isinstance(values[0], int)
    minimum = raw.get("min", min(values) if kind == "choice" and numeric else None)
    maximum = raw.get("max", max(values) if kind == "choice" and numeric else None)
    for bound in (minimum, maximum):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
            raise ValueError(f"{where}: min and max are numbers")
    if kind in ("date", "datetime", "yes_no", "code_list", "computed") and (
        "min" in raw or "max" in raw
    ):
        raise ValueError(f"{where}: a {kind} item has no min or max")
    if kind == "number" and (minimum is None or maximum is None or minimum > maximum):
        raise ValueError(f"{where}: a number item needs min <= max")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise ValueError(f"{where}: min is above max")

    show_if = raw.get("show_if")
    if show_if is not None:
        visible = dict(outer or {}) | dict(earlier)
        conditions.check(show_if, f"{where}, show_if", lambda name: name in visible)
        for target_code, operator, operand in conditions.items_named(show_if):
            target = visible[target_code]
            if operator in ("equals", "in"):
                wanted = operand if operator == "in" else [operand]
                if target.kind in ("choice", "multi_choice"):
                    bad = [v for v in wanted if v not in target.choice_values]
                    if bad:
                        raise ValueError(
                            f"{where}: show_if compares {target_code!r} with {bad}, "
                            "which are not among its choice values"
                        )
                elif target.kind == "yes_no" and not all(isinstance(v, bool) for v in wanted):
                    raise ValueError(
                        f"{where}: show_if compares yes/no {target_code!r} with true/false"
                    )

    items: tuple[Item, ...] = ()
    if kind == "repeat":
        rows = raw.get("items")
        if not isinstance(rows, list) or not rows:
            raise ValueError(f"{where}: a repeat item needs a non-empty list of 'items'")
        if outer is not None:
            raise ValueError(f"{where}: a repeat cannot hold another repeat")
        siblings: dict[str, Item] = {}
        for sub in rows:
            built = _build_item(sub, scales, where, earlier=siblings, outer=earlier)
            if built.code in siblings:
                raise ValueError(f"{where}: duplicate code {built.code!r} in the row")
            if built.kind in ("computed", "analgesics"):
                raise ValueError(f"{where}: a row cannot hold a {built.kind} item")
            siblings[built.code] = built
        items = tuple(siblings.values())
    elif "items" in raw:
        raise ValueError(f"{where}: only repeat items have 'items'")

    function = ""
    inputs: tuple[str, ...] = ()
    if kind == "computed":
        function = raw.get("function", "")
        computation = COMPUTATIONS.get(function)
        if computation is None:
            raise ValueError(
                f"{where}: unknown computed function {function!r} "
                f"(known: {', '.join(sorted(COMPUTATIONS))})"
            )
        raw_inputs = raw.get("inputs")
        if not isinstance(raw_inputs, list) or len(raw_inputs) != len(computation.params):
            raise ValueError(
                f"{where}: {function} takes {len(computation.params)} inputs "
                f"({', '.join(computation.params)}), got {raw_inputs!r}"
            )
        for name, kinds in zip(raw_inputs, computation.input_kinds, strict=True):
            if name not in earlier:
                raise ValueError(f"{where}: input {name!r} is not an earlier item of the form")
            if earlier[name].kind not in kinds:
                raise ValueError(
                    f"{where}: input {name!r} must be a {' or '.join(sorted(kinds))} item"
                )
        inputs = tuple(raw_inputs)
        if raw.get("required", False):
            raise ValueError(f"{where}: a computed item is never typed, so never required")
    elif "function" in raw or "inputs" in raw:
        raise ValueError(f"{where}: only computed items have 'function' and 'inputs'")

    code_list = ""
    if kind == "code_list":
        code_list = _known_code_list(raw.get("code_list"), where)
    elif "code_list" in raw:
        raise ValueError(f"{where}: only code_list items name a code list")

    return Item(
        code=code,
        kind=kind,
        text=_text(raw["text"], where),
        choices=choices,
        min=minimum,
        max=maximum,
        required=bool(raw.get("required", kind != "computed")),
        number=str(raw.get("number", "")),
        section=_maybe_text(raw.get("section"), f"{where}, section"),
        help=_maybe_text(raw.get("help"), f"{where}, help"),
        unit=_maybe_text(raw.get("unit"), f"{where}, unit"),
        integer=bool(raw.get("integer", True)),
        show_if=_plain_show_if(show_if),
        condition=show_if,
        not_future=bool(raw.get("not_future", True)),
        identifying_risk=bool(raw.get("identifying_risk", False)),
        code_list=code_list,
        items=items,
        function=function,
        inputs=inputs,
    )


def _build_checks(
    raw: Any, items: Mapping[str, Item], where: str
) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    if not isinstance(raw, list):
        raise ValueError(f"{where}: 'checks' is a list of check names")
    built = []
    for entry in raw:
        spec = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise ValueError(f"{where}: a check is a name or {{'name': ..., ...}}, got {entry!r}")
        check = CHECKS.get(spec["name"])
        if check is None:
            raise ValueError(
                f"{where}: unknown check {spec['name']!r} (known: {', '.join(sorted(CHECKS))})"
            )
        extra = sorted(set(spec) - {"name"} - set(check.params) - set(check.options))
        if extra:
            raise ValueError(f"{where}: check {check.name} has no parameter(s) {extra}")
        bound: dict[str, Any] = {
            param: spec.get(param, default) for param, default in check.params.items()
        }
        fields = {sub.code for item in items.values() for sub in item.items}
        for param, item_code in bound.items():
            if item_code not in items and item_code not in fields:
                raise ValueError(
                    f"{where}: check {check.name} compares {param}={item_code!r}, "
                    "which is not an item of the form"
                )
        for option in check.options:
            if option in spec:
                value = spec[option]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(
                        f"{where}: check {check.name} option {option!r} is a number, got {value!r}"
                    )
                bound[option] = value
        built.append((check.name, bound))
    return tuple(built)


def instrument_from_data(data: Mapping[str, Any], *, source: str | None = None) -> Instrument:
    """Build (and check) an :class:`Instrument` from a parsed data file.

    A broken definition raises ``ValueError`` naming ``source`` (the file) and the item."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: a definition is a JSON object")
    code = data.get("code")
    where = source or str(code)
    if not isinstance(code, str) or not _CODE_PATTERN.match(code):
        raise ValueError(f"{where}: code {code!r} must be lower-case letters, digits, _")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}")
    kind = data.get("kind", "questionnaire")
    if kind not in DEFINITION_KINDS:
        raise ValueError(f"{where}: unknown kind {kind!r} (questionnaire or clinical)")
    occurs = data.get("occurs", "")
    if kind == "clinical" and occurs not in OCCURS:
        raise ValueError(f"{where}: a clinical form occurs {' | '.join(OCCURS)}, not {occurs!r}")
    if kind == "questionnaire" and occurs:
        raise ValueError(f"{where}: only clinical forms have 'occurs'")
    for key in ("version", "title", "items"):
        if key not in data:
            raise ValueError(f"{where}: {key!r} is missing")
    if kind == "questionnaire":
        for key in ("instructions", "licence_note"):
            if key not in data:
                raise ValueError(f"{where}: {key!r} is missing")
    scales = data.get("response_scales", {})
    if not isinstance(scales, Mapping):
        raise ValueError(f"{where}: 'response_scales' maps names to lists of choices")
    if not isinstance(data["items"], list) or not data["items"]:
        raise ValueError(f"{where}: 'items' is a non-empty list")
    built: dict[str, Item] = {}
    for raw in data["items"]:
        item = _build_item(raw, scales, where, earlier=built)
        if item.code in built:
            raise ValueError(f"{where}, item {item.code!r}: duplicate code")
        if kind == "questionnaire" and item.kind not in ("choice", "number", "text", "analgesics"):
            raise ValueError(
                f"{where}, item {item.code!r}: a questionnaire has no {item.kind} items"
            )
        built[item.code] = item
    checks = _build_checks(data.get("checks", []), built, where)
    sdv = data.get("sdv", [])
    if not isinstance(sdv, list) or any(name not in built for name in sdv):
        raise ValueError(f"{where}: 'sdv' lists items of the form, got {sdv!r}")
    empty = {"nl": "", "en": ""}
    return Instrument(
        code=code,
        version=str(data["version"]),
        title=_text(data["title"], f"{where}, title"),
        instructions=_text(data.get("instructions", empty), f"{where}, instructions"),
        licence_note=str(data.get("licence_note", "")),
        items=tuple(built.values()),
        source=str(data.get("source", "")),
        recall=_maybe_text(data.get("recall"), f"{where}, recall"),
        kind=kind,
        occurs=occurs,
        checks=checks,
        signature=str(data.get("signature", "")),
        sdv=tuple(sdv),
    )


def definition_file_names(kind: str) -> list[str]:
    """The names of the data files in the folder of ``kind`` that hold definitions (the
    questionnaire folder also holds scoring tables; those are not definitions)."""
    if kind == "questionnaire":
        return [f"{code}.json" for code in _CODES]
    folder = resources.files("crf").joinpath(FOLDERS[kind])
    return sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.name.endswith(".json") and not entry.name.startswith("_")
    )


@cache
def _clinical_codes() -> tuple[str, ...]:
    found = {
        name[: -len(".json")]
        for name in definition_file_names("clinical")
        if _CODE_PATTERN.match(name[: -len(".json")])
    }
    order = {code: index for index, code in enumerate(_CLINICAL_ORDER)}
    return tuple(sorted(found, key=lambda code: (order.get(code, len(order)), code)))


def _kind_of(code: str) -> str:
    if code in _CODES:
        return "questionnaire"
    if _CODE_PATTERN.match(code) and code in _clinical_codes():
        return "clinical"
    raise UnknownInstrument(code)


def definition_source(code: str) -> tuple[str, bytes]:
    """The data file of definition ``code``: its name in the package and its bytes."""
    kind = _kind_of(code)
    name = f"{FOLDERS[kind]}/{code}.json"
    return f"crf/{name}", resources.files("crf").joinpath(name).read_bytes()


def definition_sha256(code: str) -> str:
    """The SHA-256 of definition ``code``'s data file (what its version stands for)."""
    return hashlib.sha256(definition_source(code)[1]).hexdigest()


@cache
def load(code: str) -> Instrument:
    """The definition ``code``: a questionnaire (``c15pal``, ``bm22``, ``pain``, ``eq5d5l``,
    ``imcq``, ``ipcq``) or a clinical form (``baseline_clinical`` ...)."""
    kind = _kind_of(code)
    name, content = definition_source(code)
    try:
        data = json.loads(content.decode("utf-8"))
    except ValueError as exc:
        raise ValueError(f"{name}: not valid JSON: {exc}") from None
    if not isinstance(data, Mapping) or data.get("code") != code:
        raise ValueError(
            f"{name}: declares code {data.get('code') if isinstance(data, Mapping) else None!r}"
        )
    instrument = instrument_from_data(data, source=name)
    if instrument.kind != kind:
        raise ValueError(f"{name}: a file in crf/{FOLDERS[kind]}/ must be of kind {kind!r}")
    return instrument


def all_codes(kind: str = "questionnaire") -> list[str]:
    """Every definition code of ``kind`` ("questionnaire" or "clinical"), in presentation order."""
    if kind == "questionnaire":
        return list(_CODES)
    if kind == "clinical":
        return list(_clinical_codes())
    raise ValueError(f"unknown kind {kind!r}")


def _definition(code: str | Instrument) -> Instrument:
    return code if isinstance(code, Instrument) else load(code)


# --------------------------------------------------------------------------- conditions, computed


def _answered(value: Any, item: Item | None = None) -> bool:
    """Whether ``value`` is an answer (for ``item``: an empty multi-choice or repeat list
    is not; an empty medication list after "yes" is, and is refused)."""
    if value is None:
        return False
    if item is not None and item.kind in ("multi_choice", "repeat") and value in ([], ()):
        return False
    return not (isinstance(value, str) and value.strip() == "")


def _applies(item: Item, answers: Mapping[str, Any], applies: set[str]) -> bool:
    """Whether ``item`` applies: its condition holds, over items that apply themselves."""
    if item.condition is None:
        return True

    def lookup(name: str) -> Any:
        return answers.get(name) if name in applies else None

    return conditions.holds(item.condition, lookup)


def _row_applies(
    field_item: Item,
    siblings: frozenset[str],
    row: Mapping[str, Any],
    answers: Mapping[str, Any],
    applies: set[str],
) -> bool:
    """Whether a repeat's field applies in ``row``: a name in its condition is a sibling
    field of the row first, then an item of the form."""
    if field_item.condition is None:
        return True

    def lookup(name: str) -> Any:
        if name in siblings:
            return row.get(name)
        return answers.get(name) if name in applies else None

    return conditions.holds(field_item.condition, lookup)


def _siblings(item: Item) -> frozenset[str]:
    return frozenset(sub.code for sub in item.items)


def compute(code: str | Instrument, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every computed item (re)computed from its inputs.

    A computed value that cannot be computed (an input missing, or not applicable) is
    removed, so a stale value never survives a change of its inputs."""
    definition = _definition(code)
    result = dict(data) if isinstance(data, Mapping) else {}
    if not definition.computed_items:
        return result
    applies: set[str] = set()
    for item in definition.items:
        if not _applies(item, result, applies):
            if item.kind == "computed":
                result.pop(item.code, None)
            continue
        applies.add(item.code)
        if item.kind != "computed":
            continue
        computation = COMPUTATIONS[item.function]
        values = {
            param: (result.get(name) if name in applies else None)
            for param, name in zip(computation.params, item.inputs, strict=True)
        }
        try:
            value = computation(values)
        except (TypeError, ValueError):
            value = None
        if value is None:
            result.pop(item.code, None)
        else:
            result[item.code] = value
    return result


def applicable_items(code: str | Instrument, answers: Mapping[str, Any]) -> list[Item]:
    """Items that apply given ``answers``: an item with a condition (``show_if``) applies
    only when the condition holds over the items before it that apply themselves."""
    definition = _definition(code)
    if definition.computed_items:  # a condition may name a computed item
        answers = compute(definition, answers)
    result = []
    applies: set[str] = set()
    for item in definition.items:  # conditions name earlier items (checked on load)
        if not _applies(item, answers, applies):
            continue
        applies.add(item.code)
        result.append(item)
    return result


def drop_not_applicable(code: str | Instrument, answers: Mapping[str, Any]) -> dict[str, Any]:
    """``answers`` without answers to items that do not apply (e.g. working hours after
    "no paid work"; inside repeat rows, fields that do not apply to the row), so a page
    without JavaScript can submit every field."""
    definition = _definition(code)
    applicable = applicable_items(definition, answers)
    keep = {item.code for item in applicable}
    applies = set(keep)
    result = {key: value for key, value in answers.items() if key in keep}
    for item in applicable:
        rows = result.get(item.code)
        if item.kind == "repeat" and isinstance(rows, list):
            result[item.code] = [
                {
                    key: value
                    for key, value in row.items()
                    if not any(
                        sub.code == key
                        and not _row_applies(sub, _siblings(item), row, answers, applies)
                        for sub in item.items
                    )
                }
                if isinstance(row, Mapping)
                else row
                for row in rows
            ]
    return result


# --------------------------------------------------------------------------- validation


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _is_choice(item: Item, value: Any) -> bool:
    return any(value == choice and type(value) is type(choice) for choice in item.choice_values)


def _check_choice(item: Item, value: Any, today: date) -> str | None:
    if not _is_choice(item, value):
        return _("Choose one of the answers.")
    return None


def _check_number(item: Item, value: Any, today: date) -> str | None:
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


def _check_text(item: Item, value: Any, today: date) -> str | None:
    if not isinstance(value, str):
        return _("Enter text.")
    limit = int(item.max) if item.max is not None else DEFAULT_TEXT_MAX
    if len(value) > limit:
        return _("Use at most %(max)s characters.") % {"max": limit}
    if _CONTROL.search(value):
        return _("Remove the control characters from the text.")
    if _MARKUP.search(value):
        return _("Remove the HTML markup (text between < and >) from the text.")
    return None


def _check_analgesics(item: Item, value: Any, today: date) -> str | None:
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


# A tag, comment or declaration opening ("<b", "</", "<!", "<?"); "<3" or "a < b" are text.
_MARKUP = re.compile(r"<[A-Za-z/!?]")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$"
)


def _check_date(item: Item, value: Any, today: date) -> str | None:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        return _("Enter a date as yyyy-mm-dd.")
    day = as_date(value)
    if day is None:
        return _("This date does not exist.")
    if day < EARLIEST_DATE:
        return _("Enter a date after 1900.")
    if item.not_future and day > today:
        return _("The date cannot be in the future.")
    return None


def _check_datetime(item: Item, value: Any, today: date) -> str | None:
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        return _("Enter a date and time as yyyy-mm-ddThh:mm.")
    moment = as_datetime(value)
    if moment is None:
        return _("This date or time does not exist.")
    if moment.astimezone(AMSTERDAM).date() < EARLIEST_DATE:
        return _("Enter a date after 1900.")
    if item.not_future:
        local = moment.astimezone(AMSTERDAM)
        if local.date() > today or (
            local.date() == today and moment > datetime.now(AMSTERDAM) + CLOCK_SKEW
        ):
            return _("The date and time cannot be in the future.")
    return None


def _check_yes_no(item: Item, value: Any, today: date) -> str | None:
    if not isinstance(value, bool):
        return _("Choose yes or no.")
    return None


def _check_multi_choice(item: Item, value: Any, today: date) -> str | None:
    if not isinstance(value, list | tuple) or not all(_is_choice(item, one) for one in value):
        return _("Choose one or more of the answers.")
    if len(set(value)) != len(value):
        return _("Choose each answer only once.")
    if item.min is not None and len(value) < item.min:
        return _("Choose at least %(min)s answers.") % {"min": _fmt(item.min)}
    if item.max is not None and len(value) > item.max:
        return _("Choose at most %(max)s answers.") % {"max": _fmt(item.max)}
    return None


def _check_code_list(item: Item, value: Any, today: date) -> str | None:
    from crf import codelists

    if not isinstance(value, str) or value not in codelists.codes(item.code_list):
        return _("Choose a term from the list.")
    return None


_CHECKS = {
    "choice": _check_choice,
    "number": _check_number,
    "text": _check_text,
    "analgesics": _check_analgesics,
    "date": _check_date,
    "datetime": _check_datetime,
    "yes_no": _check_yes_no,
    "multi_choice": _check_multi_choice,
    "code_list": _check_code_list,
}


def _today() -> date:
    return datetime.now(AMSTERDAM).date()


def _check_rows(
    item: Item,
    rows: Any,
    answers: Mapping[str, Any],
    applies: set[str],
    *,
    complete: bool,
    today: date,
) -> dict[str, str]:
    """Field errors of a repeat item's rows, keyed ``<item>-<row>-<field>`` (rows from 0)."""
    if not isinstance(rows, list | tuple) or not all(isinstance(row, Mapping) for row in rows):
        return {item.code: _("Enter the rows as a list.")}
    limit = int(item.max) if item.max is not None else DEFAULT_REPEAT_ROWS
    if len(rows) > limit:
        return {item.code: _("Enter at most %(max)s rows.") % {"max": limit}}
    errors: dict[str, str] = {}
    fields = {sub.code: sub for sub in item.items}
    siblings = _siblings(item)
    for index, row in enumerate(rows):
        for key, value in row.items():
            name = f"{item.code}-{index}-{key}"
            sub = fields.get(key) if isinstance(key, str) else None
            if sub is None:
                errors[name] = _("Unknown question.")
                continue
            if not _answered(value, sub):
                continue
            if not _row_applies(sub, siblings, row, answers, applies):
                errors[name] = _("This question does not apply given an earlier answer.")
                continue
            problem = _CHECKS[sub.kind](sub, value, today)
            if problem:
                errors[name] = problem
        if complete:
            for sub in item.items:
                name = f"{item.code}-{index}-{sub.code}"
                if (
                    sub.required
                    and name not in errors
                    and not _answered(row.get(sub.code), sub)
                    and _row_applies(sub, siblings, row, answers, applies)
                ):
                    errors[name] = _("Please answer this question.")
    if complete and item.min and len(rows) < item.min and item.code not in errors:
        errors[item.code] = _("Enter at least %(min)s rows.") % {"min": _fmt(item.min)}
    return errors


def findings(
    code: str | Instrument,
    answers: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """What the definition's cross-item checks find in ``answers`` (computed filled in)."""
    return [finding for _name, finding in check_findings(code, answers, context)]


def check_findings(
    code: str | Instrument,
    answers: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
) -> list[tuple[str, Finding]]:
    """:func:`findings` with the name of the check that found each (for automatic queries,
    which are kept per check and item)."""
    definition = _definition(code)
    if not definition.checks or not isinstance(answers, Mapping):
        return []
    data = compute(definition, answers)
    found: list[tuple[str, Finding]] = []
    for name, params in definition.checks:
        found.extend((name, finding) for finding in CHECKS[name](data, params, context))
    return found


def validate(
    code: str | Instrument,
    answers: Mapping[str, Any],
    complete: bool = False,
    *,
    today: date | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Field errors of ``answers`` for definition ``code``: ``{item code: message}``.

    Empty when valid. Unknown items, wrong types, out-of-range values, impossible or
    future dates, over-long texts and unknown codes are errors; an answer to an item that
    does not apply (its condition is false) is an error too (:func:`drop_not_applicable`
    removes those first); a value sent for a computed item is refused unless it is what
    :func:`compute` gives. Errors of a repeat's fields are keyed ``<item>-<row>-<field>``.
    The definition's cross-item checks add their "error" findings. Missing answers are
    allowed (a draft, or a patient who saves and comes back) unless ``complete`` is true,
    in which case every applicable required item must be answered.
    """
    definition = _definition(code)
    if not isinstance(answers, Mapping):
        return {"__all__": _("Answers must be a mapping of item codes to values.")}
    today = today or _today()
    errors: dict[str, str] = {}
    computed = compute(definition, answers)
    applicable = {item.code for item in applicable_items(definition, computed)}
    for key, value in answers.items():
        if not isinstance(key, str) or not definition.has_item(key):
            errors[str(key)] = _("Unknown question.")
            continue
        item = definition.item(key)
        if not _answered(value, item):
            continue
        if key not in applicable:
            errors[key] = _("This question does not apply given an earlier answer.")
            continue
        if item.kind == "computed":
            if value != computed.get(key) or type(value) is not type(computed.get(key)):
                errors[key] = _("This value is computed and cannot be entered.")
            continue
        if item.kind == "repeat":
            errors.update(
                _check_rows(item, value, computed, applicable, complete=complete, today=today)
            )
            continue
        problem = _CHECKS[item.kind](item, value, today)
        if problem:
            errors[key] = problem
    if complete:
        for item in definition.items:
            if (
                item.required
                and item.code in applicable
                and item.code not in errors
                and not _answered(answers.get(item.code), item)
            ):
                errors[item.code] = _("Please answer this question.")
    if definition.checks:
        for finding in findings(definition, answers, context):
            if finding.severity == "error" and finding.item not in errors:
                errors[finding.item] = finding.message
    return errors


def unanswered_items(code: str | Instrument, answers: Mapping[str, Any]) -> list[Item]:
    """The applicable required items of ``answers`` left unanswered. A patient may skip
    any item (SPEC.md §3.6); this is what the page tells them before they send, and what a
    nurse confirms before saving a partial paper entry."""
    return [
        item
        for item in applicable_items(code, answers)
        if item.required and not _answered(answers.get(item.code), item)
    ]


def answered_count(code: str | Instrument, answers: Mapping[str, Any]) -> int:
    """How many items of definition ``code`` have an answer in ``answers``."""
    definition = _definition(code)
    return sum(
        1
        for key, value in answers.items()
        if definition.has_item(key) and _answered(value, definition.item(key))
    )


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


_TYPED_DATE = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_TYPED_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})$")
_YES = frozenset({"yes", "ja", "true", "1", "y", "j"})
_NO = frozenset({"no", "nee", "false", "0", "n"})


def _parse_date_text(text: str) -> str | None:
    """``dd-mm-yyyy`` as typed (or ISO from a date picker) to ISO; ValueError when not a date."""
    text = text.strip()
    if text == "":
        return None
    if _ISO_DATE.match(text):
        day = date.fromisoformat(text)
    elif match := _TYPED_DATE.match(text):
        day = date(int(match[3]), int(match[2]), int(match[1]))
    else:
        raise ValueError
    return day.isoformat()


def _parse_datetime_text(text: str) -> str | None:
    """``dd-mm-yyyy hh:mm`` as typed (or ISO ``yyyy-mm-ddThh:mm``) to ISO wall-clock time."""
    text = text.strip()
    if text == "":
        return None
    if _ISO_DATETIME.match(text):
        if as_datetime(text) is None:
            raise ValueError
        return text
    parts = text.replace("T", " ").split()
    if len(parts) != 2 or not (time_match := _TYPED_TIME.match(parts[1])):
        raise ValueError
    day = _parse_date_text(parts[0])
    hour, minute = int(time_match[1]), int(time_match[2])
    if day is None or hour > 23 or minute > 59:
        raise ValueError
    return f"{day}T{hour:02d}:{minute:02d}"


def _parse_choice(item: Item, text: str) -> ChoiceValue | None:
    if item.choices and isinstance(item.choice_values[0], str):
        return text.strip() or None
    value = _parse_number(text)
    if isinstance(value, float):
        raise ValueError
    return value


def _parse_error(item: Item) -> str:
    return {
        "choice": _("Choose one of the answers."),
        "multi_choice": _("Choose one or more of the answers."),
        "number": _("Enter a number."),
        "date": _("Enter a real date as dd-mm-yyyy."),
        "datetime": _("Enter a real date and time as dd-mm-yyyy hh:mm."),
        "yes_no": _("Choose yes or no."),
    }.get(item.kind, _("Enter text."))


def _parse_value(item: Item, value: Any) -> Any:
    """One submitted value (a string, or a list of strings for multi-choice) typed for ``item``."""
    if item.kind == "multi_choice":
        texts = value if isinstance(value, list | tuple) else [value]
        chosen = [_parse_choice(item, text) if isinstance(text, str) else text for text in texts]
        return [one for one in chosen if one is not None]
    if not isinstance(value, str):
        return value
    if item.kind in ("choice", "number"):
        return _parse_choice(item, value) if item.kind == "choice" else _parse_number(value)
    if item.kind == "date":
        return _parse_date_text(value)
    if item.kind == "datetime":
        return _parse_datetime_text(value)
    if item.kind == "yes_no":
        word = value.strip().lower()
        if word == "":
            return None
        if word in _YES or word in _NO:
            return word in _YES
        raise ValueError
    if item.kind in ("text", "code_list"):
        return value.strip() or None
    return value


def _values(raw: Mapping[str, Any], name: str, item: Item) -> Any:
    if item.kind == "multi_choice" and hasattr(raw, "getlist"):
        return raw.getlist(name)
    return raw[name]


_ROW_NAME = re.compile(r"^(?P<item>[a-z][a-z0-9_]*)-(?P<row>\d{1,3})-(?P<field>[a-z][a-z0-9_]*)$")


def _parse_rows(item: Item, raw: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows of a repeat item from fields named ``<item>-<row>-<field>``; blank rows dropped."""
    numbers = sorted(
        {
            int(match["row"])
            for key in raw
            if isinstance(key, str)
            and (match := _ROW_NAME.match(key))
            and match["item"] == item.code
        }
    )
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for number in numbers:
        row: dict[str, Any] = {}
        row_errors: dict[str, str] = {}
        typed = False
        for sub in item.items:
            name = f"{item.code}-{number}-{sub.code}"
            if name not in raw:
                continue
            value = _values(raw, name, sub)
            if _answered(value, sub) and not (isinstance(value, list) and not any(value)):
                typed = True
            try:
                row[sub.code] = _parse_value(sub, value)
            except (ValueError, TypeError):
                row_errors[sub.code] = _parse_error(sub)
        if not typed:
            continue
        index = len(rows)
        rows.append({key: value for key, value in row.items() if value not in (None, [])})
        errors.update({f"{item.code}-{index}-{key}": msg for key, msg in row_errors.items()})
    return rows, errors


def parse(code: str | Instrument, raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Turn submitted form strings into typed answers: ``(answers, errors)``.

    Choice and number fields arrive as strings ("3", "2,5"); empty strings become ``None``.
    Dates are typed as dd-mm-yyyy (ISO yyyy-mm-dd from a date picker is accepted too),
    date-times as dd-mm-yyyy hh:mm; yes/no as "yes"/"no"; a multi-choice field as a list
    (``raw.getlist`` of a QueryDict); the rows of a repeat item as fields named
    ``<item>-<row>-<field>`` (rows without any value are dropped, the rest renumbered
    from 0, and errors are keyed by the renumbered row). Computed items are never read
    from input. Keys that are not items are ignored (CSRF token, buttons); the analgesics
    item is passed through unchanged (build its list with :func:`crf.analgesics.parse_rows`).
    Run :func:`validate` on the result.
    """
    definition = _definition(code)
    answers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in definition.items:
        if item.kind == "computed":
            continue
        if item.kind == "repeat":
            rows, row_errors = _parse_rows(item, raw)
            if rows or item.code in raw:
                answers[item.code] = rows
            errors.update(row_errors)
            continue
        if item.code not in raw:
            continue
        try:
            answers[item.code] = _parse_value(item, _values(raw, item.code, item))
        except (ValueError, TypeError):
            errors[item.code] = _parse_error(item)
    return answers, errors
