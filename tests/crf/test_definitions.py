"""The definition engine (crf.instruments, crf.conditions, crf.computed): loading and its
refusals, conditions, validation per item kind, computed items, cross-item checks and the
parsing of HTML form input (the engine is pure; only code lists may read the database)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache

import pytest
from django.http import QueryDict
from hypothesis import given
from hypothesis import strategies as st

from crf import computed, conditions, instruments
from crf.instruments import instrument_from_data, parse, validate

# Code-list items read crf.codelists, which may consult the database's imported lists.
pytestmark = pytest.mark.django_db

TODAY = date(2026, 6, 15)


@pytest.fixture(autouse=True)
def english():
    from django.utils import translation

    with translation.override("en"):
        yield


def t(text: str) -> dict[str, str]:
    return {"nl": text, "en": text}


def item(code: str, kind: str, **extra) -> dict:
    return {"code": code, "kind": kind, "text": t(code)} | extra


LETTERS = [["A", t("a")], ["B", t("b")], ["C", t("c")]]


def form(*items: dict, **top) -> dict:
    return {
        "code": "demo",
        "version": "1",
        "kind": "clinical",
        "occurs": "log",
        "title": t("Demo"),
        "response_scales": {"letters": LETTERS},
        "items": list(items),
    } | top


DEMO_FORM = (
    form(
        item("on", "date"),
        item("planned_on", "date", not_future=False, required=False),
        item("at", "datetime", required=False),
        item("done", "yes_no"),
        item(
            "why", "text", max=20, identifying_risk=True, show_if={"item": "done", "equals": False}
        ),
        item("grade", "choice", choices=[["1a", t("1a")], ["2", t("2")]]),
        item("levels", "multi_choice", choices="letters", min=1, max=2),
        item("count", "number", min=0, max=10),
        item("dose", "number", min=0.5, max=30, integer=False, required=False),
        item("term", "code_list", code_list="ctcae_v5", required=False),
        item(
            "rows",
            "repeat",
            min=1,
            max=3,
            items=[
                item("level", "choice", choices="letters"),
                item("gy", "number", min=1, max=30, integer=False),
                item("note", "text", required=False, show_if={"item": "level", "equals": "C"}),
                item("late", "yes_no", required=False, show_if={"item": "done", "equals": True}),
            ],
        ),
        item("admitted_on", "date", required=False),
        item("discharged_on", "date", required=False),
        item(
            "stay", "computed", function="length_of_stay", inputs=["admitted_on", "discharged_on"]
        ),
        checks=["discharge_not_before_admission"],
    ),
)


@cache
def demo() -> instruments.Instrument:
    """Built on first use, not at import: the code-list item asks crf.codelists."""
    return instrument_from_data(DEMO_FORM[0], source="demo.json")


VALID = {
    "on": "2026-06-01",
    "done": True,
    "grade": "1a",
    "levels": ["A", "C"],
    "count": 3,
    "rows": [{"level": "A", "gy": 8}],
}


def test_a_complete_valid_record_has_no_errors():
    assert validate(demo(), VALID, complete=True, today=TODAY) == {}


# --------------------------------------------------------------------------- validation per kind

BAD = [
    # (item, value, message)
    ("on", "15-06-2026", "Enter a date as yyyy-mm-dd."),
    ("on", 20260601, "Enter a date as yyyy-mm-dd."),
    ("on", "2026-02-30", "This date does not exist."),
    ("on", "2026-13-01", "This date does not exist."),
    ("on", "1850-01-01", "Enter a date after 1900."),
    ("on", "2026-06-16", "The date cannot be in the future."),
    ("at", "2026-06-01 10:00", "Enter a date and time as yyyy-mm-ddThh:mm."),
    ("at", "2026-06-01T25:00", "This date or time does not exist."),
    ("at", "2026-06-16T09:00", "The date and time cannot be in the future."),
    ("done", "yes", "Choose yes or no."),
    ("done", 1, "Choose yes or no."),
    ("grade", "3", "Choose one of the answers."),
    ("grade", 2, "Choose one of the answers."),
    ("levels", "A", "Choose one or more of the answers."),
    ("levels", ["A", "D"], "Choose one or more of the answers."),
    ("levels", ["A", "A"], "Choose each answer only once."),
    ("levels", ["A", "B", "C"], "Choose at most 2 answers."),
    ("count", "3", "Enter a number."),
    ("count", True, "Enter a number."),
    ("count", 2.5, "Enter a whole number."),
    ("count", 11, "Enter a number from 0 to 10."),
    ("count", float("nan"), "Enter a number."),
    ("dose", 0.4, "Enter a number from 0.5 to 30."),
    ("term", "99999999", "Choose a term from the list."),
    ("term", 10028813, "Choose a term from the list."),
    ("rows", {"level": "A"}, "Enter the rows as a list."),
    ("rows", [{"level": "A", "gy": 1}] * 4, "Enter at most 3 rows."),
    ("stay", 5, "This value is computed and cannot be entered."),
    ("nonsense", 1, "Unknown question."),
]


@pytest.mark.parametrize(("code", "value", "message"), BAD)
def test_bad_value_per_kind_is_refused_on_its_item(code, value, message):
    errors = validate(demo(), VALID | {code: value}, today=TODAY)
    assert errors == {code: message}


def test_text_too_long_control_characters_and_html():
    data = VALID | {"done": False}
    assert validate(demo(), data | {"why": "x" * 21}, today=TODAY) == {
        "why": "Use at most 20 characters."
    }
    assert validate(demo(), data | {"why": "a\x00b"}, today=TODAY) == {
        "why": "Remove the control characters from the text."
    }
    # HTML markup is refused; a lone "<" (a comparison, "<3") stays text, as do new lines
    # and tabs (texts are stored as typed and escaped on output)
    for markup in ("<b>x</b>", "<script>x", "a</p>", "<!-- x -->", "<?php"):
        assert validate(demo(), data | {"why": markup}, today=TODAY) == {
            "why": "Remove the HTML markup (text between < and >) from the text."
        }
    assert validate(demo(), data | {"why": "pain < 3 & <3\n\tok"}, today=TODAY) == {}
    assert instruments.load("adverse_event").item("description").max == 1000
    long = "x" * 10_000
    assert validate("adverse_event", {"description": long}) == {
        "description": "Use at most 1000 characters."
    }
    default = instrument_from_data(form(item("free", "text")))
    assert validate(default, {"free": "x" * 2001}) == {"free": "Use at most 2000 characters."}
    assert demo().item("why").identifying_risk and not demo().item("count").identifying_risk


def test_dates_not_future_can_be_switched_off_and_today_is_allowed():
    assert validate(demo(), VALID | {"on": TODAY.isoformat()}, today=TODAY) == {}
    assert validate(demo(), VALID | {"planned_on": "2026-12-01"}, today=TODAY) == {}


def test_datetime_accepts_offsets_and_refuses_the_future_by_the_clock():
    now = datetime.now(computed.AMSTERDAM)
    soon = (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    later = now + timedelta(hours=3)
    assert validate(demo(), VALID | {"at": "2026-06-01T08:30:00+02:00"}, today=TODAY) == {}
    assert validate(demo(), VALID | {"at": "2026-06-01T06:30Z"}, today=TODAY) == {}
    assert validate(demo(), VALID | {"at": soon}) == {}  # a ward clock a few minutes ahead
    if later.date() == now.date():
        assert validate(demo(), VALID | {"at": later.strftime("%Y-%m-%dT%H:%M")}) == {
            "at": "The date and time cannot be in the future."
        }


def test_completion_requires_required_items_drafts_do_not():
    assert validate(demo(), {}, today=TODAY) == {}
    errors = validate(demo(), {}, complete=True, today=TODAY)
    assert set(errors) == {"on", "done", "grade", "levels", "count", "rows"}
    assert set(errors.values()) == {"Please answer this question."}
    # an empty list is not an answer
    assert validate(demo(), VALID | {"levels": []}, complete=True, today=TODAY) == {
        "levels": "Please answer this question."
    }


def test_repeat_rows_are_checked_field_by_field():
    rows = [{"level": "A", "gy": 8}, {"level": "Z", "gy": 31}, {"gy": 2, "x": 1}]
    errors = validate(demo(), VALID | {"rows": rows}, complete=True, today=TODAY)
    assert errors == {
        "rows-1-level": "Choose one of the answers.",
        "rows-1-gy": "Enter a number from 1 to 30.",
        "rows-2-x": "Unknown question.",
        "rows-2-level": "Please answer this question.",
    }


def test_condition_inside_a_row_names_a_sibling_first_then_the_form():
    row_c = {"level": "C", "gy": 8, "note": "boost", "late": True}
    assert validate(demo(), VALID | {"rows": [row_c]}, today=TODAY) == {}
    row_a = {"level": "A", "gy": 8, "note": "boost"}
    assert validate(demo(), VALID | {"rows": [row_a]}, today=TODAY) == {
        "rows-0-note": "This question does not apply given an earlier answer."
    }
    not_done = VALID | {"done": False, "rows": [{"level": "A", "gy": 8, "late": True}]}
    assert validate(demo(), not_done, today=TODAY) == {
        "rows-0-late": "This question does not apply given an earlier answer."
    }
    cleaned = instruments.drop_not_applicable(demo(), not_done | {"why": "x"})
    assert cleaned["rows"] == [{"level": "A", "gy": 8}]
    assert cleaned["why"] == "x"


def test_an_item_whose_condition_is_false_is_not_required_and_its_value_is_dropped():
    assert "why" not in validate(demo(), VALID, complete=True, today=TODAY)
    assert validate(demo(), VALID | {"done": False}, complete=True, today=TODAY) == {
        "why": "Please answer this question."
    }
    assert validate(demo(), VALID | {"why": "late"}, today=TODAY) == {
        "why": "This question does not apply given an earlier answer."
    }
    assert "why" not in instruments.drop_not_applicable(demo(), VALID | {"why": "late"})


# --------------------------------------------------------------------------- computed, checks


def test_computed_values_are_filled_recomputed_and_never_typed():
    data = VALID | {"admitted_on": "2026-06-01", "discharged_on": "2026-06-04"}
    assert instruments.compute(demo(), data)["stay"] == 3
    assert instruments.compute(demo(), data | {"discharged_on": "2026-06-01"})["stay"] == 0
    # a stale value goes when an input goes
    assert "stay" not in instruments.compute(demo(), data | {"stay": 3, "discharged_on": None})
    # the right value may be sent back (a stored record re-validated), a different one not
    assert validate(demo(), data | {"stay": 3}, today=TODAY) == {}
    assert validate(demo(), data | {"stay": 4}, today=TODAY) == {
        "stay": "This value is computed and cannot be entered."
    }
    # parse never reads a computed item from a form
    assert "stay" not in parse(demo(), {"stay": "9"})[0]


def test_cross_item_check_refuses_discharge_before_admission():
    data = VALID | {"admitted_on": "2026-06-04", "discharged_on": "2026-06-01"}
    assert validate(demo(), data, today=TODAY) == {
        "discharged_on": "The discharge date cannot be before admission."
    }
    assert "stay" not in instruments.compute(demo(), data)
    assert instruments.findings(demo(), data) == [
        computed.Finding("discharged_on", "error", "The discharge date cannot be before admission.")
    ]


@pytest.mark.parametrize(
    ("start", "end", "refused"),
    [
        ("2026-06-01", "2026-06-01", False),
        ("2026-06-02", "2026-06-01", True),
        ("2026-06-01T10:00", "2026-06-01T09:59", True),
        ("2026-06-01T10:00", "2026-06-01T12:00", False),
        ("2026-06-01T10:00+02:00", "2026-06-01T08:30Z", False),  # 10:30 Amsterdam
        ("2026-06-01T10:00", "2026-06-01", False),  # a date against a time: by day
        ("2026-06-01", None, False),
        ("not a date", "2026-06-01", False),  # the kind check reports that one
    ],
)
def test_end_not_before_start(start, end, refused):
    check = computed.CHECKS["end_not_before_start"]
    found = check({"a": start, "b": end}, {"start": "a", "end": "b"})
    assert bool(found) is refused
    if refused:
        assert found[0].item == "b" and found[0].severity == "error"


def test_registry_names():
    assert {"sins_total", "sins_class", "length_of_stay"} <= set(computed.COMPUTATIONS)
    assert {"end_not_before_start", "discharge_not_before_admission"} <= set(computed.CHECKS)


# --------------------------------------------------------------------------- conditions


VALUES = {"a": 2, "b": "1a", "c": True, "levels": ["T5", "T6"], "on": "2026-06-01"}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"item": "a", "equals": 2}, True),
        ({"item": "a", "equals": 2.0}, False),  # types must match
        ({"item": "c", "equals": 1}, False),  # True is not 1
        ({"item": "c", "equals": True}, True),
        ({"item": "b", "in": ["1a", "1b"]}, True),
        ({"item": "levels", "equals": "T6"}, True),
        ({"item": "levels", "in": ["L1"]}, False),
        ({"item": "a", "gte": 2}, True),
        ({"item": "a", "lte": 1}, False),
        ({"item": "on", "gte": "2026-01-01"}, True),
        ({"item": "missing", "equals": None}, False),
        ({"not": {"item": "missing", "equals": 1}}, True),
        ({"all": [{"item": "a", "gte": 1}, {"item": "c", "equals": True}]}, True),
        ({"all": [{"item": "a", "gte": 1}, {"item": "c", "equals": False}]}, False),
        ({"any": [{"item": "a", "gte": 5}, {"item": "b", "equals": "1a"}]}, True),
        (None, True),
    ],
)
def test_condition_evaluation(condition, expected):
    assert conditions.holds(condition, VALUES) is expected


@pytest.mark.parametrize(
    "condition",
    [
        {},
        {"item": "a"},
        {"item": "a", "equals": 1, "in": [1]},
        {"item": "a", "in": []},
        {"item": "a", "gte": [1]},
        {"all": []},
        {"any": {"item": "a", "equals": 1}},
        {"not": {"item": "a", "equals": 1}, "item": "a"},
        {"item": "nowhere", "equals": 1},
        {"item": "a", "matches": "x"},
        "a == 1",
    ],
)
def test_malformed_conditions_are_refused(condition):
    with pytest.raises(ValueError):
        conditions.check(condition, "f.json", lambda code: code == "a")


@given(st.integers(-5, 15), st.integers(-5, 15))
def test_not_is_the_complement_and_gte_lte_partition(value, bound):
    gte = {"item": "x", "gte": bound}
    lte = {"item": "x", "lte": bound}
    assert conditions.holds({"not": gte}, {"x": value}) is not conditions.holds(gte, {"x": value})
    assert conditions.holds({"any": [gte, lte]}, {"x": value})
    both = conditions.holds({"all": [gte, lte]}, {"x": value})
    assert both is (value == bound)


def test_todays_questionnaire_conditions_keep_working():
    ipcq = instruments.load("ipcq")
    conditional = [i for i in ipcq.items if i.condition is not None]
    assert conditional and all(i.show_if for i in conditional)
    assert validate("ipcq", {"paid_work": 2, "absent": 1}) == {
        "absent": "This question does not apply given an earlier answer."
    }


# --------------------------------------------------------------------------- loading refusals

BROKEN = [
    (form(item("a", "slider")), "unknown kind 'slider'"),
    (form(item("a", "yes_no"), item("a", "date")), "duplicate code"),
    (
        form(item("a", "yes_no", show_if={"item": "b", "equals": True}), item("b", "yes_no")),
        "not an earlier item",
    ),
    (form(item("a", "yes_no", show_if={"item": "zz", "equals": True})), "not an earlier item"),
    (form(item("a", "choice", choices="nope")), "unknown response scale 'nope'"),
    (
        form(
            item("a", "choice", choices="letters"),
            item("b", "yes_no", show_if={"item": "a", "equals": "Q"}),
        ),
        "not among its choice values",
    ),
    (form(item("a", "code_list", code_list="icd_99")), "unknown code list 'icd_99'"),
    (form(item("a", "computed", function="bmi", inputs=[])), "unknown computed function 'bmi'"),
    (
        form(item("a", "date"), item("s", "computed", function="length_of_stay", inputs=["a"])),
        "takes 2 inputs",
    ),
    (
        form(
            item("a", "date"), item("s", "computed", function="length_of_stay", inputs=["a", "zz"])
        ),
        "input 'zz' is not an earlier item",
    ),
    (
        form(
            item("a", "yes_no"),
            item("b", "date"),
            item("s", "computed", function="length_of_stay", inputs=["a", "b"]),
        ),
        "input 'a' must be a date or datetime item",
    ),
    (form(item("r", "repeat")), "a repeat item needs a non-empty list of 'items'"),
    (form(item("r", "repeat", items=[])), "a repeat item needs a non-empty list of 'items'"),
    (
        form(item("r", "repeat", items=[item("x", "repeat", items=[item("y", "date")])])),
        "cannot hold another repeat",
    ),
    (form(item("r", "repeat", items=[item("x", "date"), item("x", "date")])), "duplicate code 'x'"),
    (form(item("a", "date"), checks=["no_such_check"]), "unknown check 'no_such_check'"),
    (
        form(
            item("a", "date"), checks=[{"name": "end_not_before_start", "start": "a", "end": "zz"}]
        ),
        "'zz'",
    ),
    (form(item("a", "date"), kind="form"), "unknown kind 'form'"),
    (form(item("a", "date"), occurs="weekly"), "occurs"),
    (form({"code": "a", "kind": "date", "label": t("a")}), "unknown key(s) ['label']"),
    (form(item("a", "date", when={"item": "a"})), "unknown key(s) ['when']"),
    (form(item("A b", "date")), "item code 'A b'"),
    (form(item("a", "date", min=1)), "has no min or max"),
    (form(item("a", "number", min=5, max=1)), "min <= max"),
    (form(item("a", "choice", choices=[[1, t("x")], ["b", t("y")]])), "all numbers or all codes"),
    (form(item("a", "choice", choices=[[True, t("x")]])), "a choice value"),
    (form(item("a", "date"), kind="questionnaire", occurs=""), "'instructions' is missing"),
    (form(item("a", "date"), sdv=["zz"]), "'sdv'"),
]


@pytest.mark.parametrize(("data", "message"), BROKEN)
def test_broken_definitions_are_refused_naming_file_and_item(data, message):
    with pytest.raises(ValueError) as refused:
        instrument_from_data(data, source="crf/definitions/demo.json")
    text = str(refused.value)
    assert text.startswith("crf/definitions/demo.json"), text
    assert message in text, text


def test_refusals_name_the_item():
    with pytest.raises(ValueError, match=r"demo.json, item 'b': unknown kind"):
        instrument_from_data(form(item("a", "date"), item("b", "slider")), source="demo.json")


def test_all_codes_per_kind_and_load_both_folders():
    assert instruments.all_codes() == ["c15pal", "bm22", "pain", "eq5d5l", "imcq", "ipcq"]
    clinical = instruments.all_codes(kind="clinical")
    assert clinical[0] == "baseline_clinical" and clinical[-1] == "end_of_study"
    assert instruments.load("surgery").kind == "clinical"
    assert instruments.load("c15pal").kind == "questionnaire"
    with pytest.raises(instruments.UnknownInstrument):
        instruments.load("../instruments/c15pal")
    with pytest.raises(instruments.UnknownInstrument):
        instruments.load("c15pal_conversion")  # a table, not a definition
    with pytest.raises(ValueError):
        instruments.all_codes(kind="other")


def test_a_questionnaire_cannot_hold_clinical_kinds():
    data = form(item("a", "date"), kind="questionnaire", occurs="")
    data |= {"instructions": t("i"), "licence_note": "n"}
    with pytest.raises(ValueError, match="a questionnaire has no date items"):
        instrument_from_data(data)


# --------------------------------------------------------------------------- parse


def test_parse_html_input_per_kind():
    raw = QueryDict(mutable=True)
    raw.update(
        {
            "on": "01-06-2026",
            "planned_on": "2026-07-01",  # a date picker sends ISO
            "at": "1-6-2026 9:05",
            "done": "nee",
            "why": "  tired < 3 days  ",
            "grade": " 1a ",
            "count": "3",
            "dose": "2,5",
            "term": "10028813",
            "stay": "99",
            "csrfmiddlewaretoken": "x",
        }
    )
    raw.setlist("levels", ["A", "C"])
    raw.setlist("rows-0-level", ["B"])
    raw.setlist("rows-0-gy", ["8"])
    raw.setlist("rows-1-level", [""])  # an empty extra row
    raw.setlist("rows-1-gy", [""])
    raw.setlist("rows-2-level", ["C"])
    raw.setlist("rows-2-gy", ["24,5"])
    raw.setlist("rows-2-note", ["boost"])
    answers, errors = parse(demo(), raw)
    assert errors == {}
    assert answers == {
        "on": "2026-06-01",
        "planned_on": "2026-07-01",
        "at": "2026-06-01T09:05",
        "done": False,
        "why": "tired < 3 days",
        "grade": "1a",
        "levels": ["A", "C"],
        "count": 3,
        "dose": 2.5,
        "term": "10028813",
        "rows": [{"level": "B", "gy": 8}, {"level": "C", "gy": 24.5, "note": "boost"}],
    }
    assert validate(demo(), answers, today=TODAY) == {}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("on", "31-02-2026", "Enter a real date as dd-mm-yyyy."),
        ("on", "2026/06/01", "Enter a real date as dd-mm-yyyy."),
        ("on", "tomorrow", "Enter a real date as dd-mm-yyyy."),
        ("at", "01-06-2026", "Enter a real date and time as dd-mm-yyyy hh:mm."),
        ("at", "01-06-2026 24:00", "Enter a real date and time as dd-mm-yyyy hh:mm."),
        ("done", "maybe", "Choose yes or no."),
        ("count", "three", "Enter a number."),
        ("rows-0-gy", "x", "Enter a number."),
    ],
)
def test_parse_refuses_what_is_not_a_value(name, text, message):
    _answers, errors = parse(demo(), {name: text, "rows-0-level": "A"})
    assert errors == {name: message}


def test_parse_keeps_questionnaire_behaviour():
    assert parse("eq5d5l", {"mo": "2", "sc": "", "vas": " 70 "}) == (
        {"mo": 2, "sc": None, "vas": 70},
        {},
    )
    assert set(parse("c15pal", {"q1": "abc", "q2": "2.5"})[1]) == {"q1", "q2"}


def test_a_condition_may_name_a_computed_item():
    """Conditions see computed values: a field that applies only to a long stay."""
    long_stay = instrument_from_data(
        form(
            item("admitted_on", "date"),
            item("discharged_on", "date"),
            item(
                "stay",
                "computed",
                function="length_of_stay",
                inputs=["admitted_on", "discharged_on"],
            ),
            item("why_long", "text", show_if={"item": "stay", "gte": 14}),
        )
    )
    short = {"admitted_on": "2026-01-01", "discharged_on": "2026-01-03"}
    long = {"admitted_on": "2026-01-01", "discharged_on": "2026-01-20"}
    assert validate(long_stay, short, complete=True, today=TODAY) == {}
    assert validate(long_stay, long, complete=True, today=TODAY) == {
        "why_long": "Please answer this question."
    }
    assert instruments.drop_not_applicable(long_stay, short | {"why_long": "x"}) == short
    assert [i.code for i in instruments.unanswered_items(long_stay, long)] == ["why_long"]


def test_dates_of_date_times_are_amsterdam_days():
    assert computed.as_date("2026-06-01T23:30Z") == date(2026, 6, 2)  # 01:30 in Amsterdam
    assert computed.as_date("2026-06-01") == date(2026, 6, 1)
    assert computed.as_date("2026-06-31") is None
    assert computed.as_date(20260601) is None


def test_a_warning_finding_is_shown_but_does_not_refuse(monkeypatch):
    """Checks return findings; only "error" findings refuse the save."""

    def long_course(data, items, context):
        if isinstance(data.get(items["count"]), int) and data[items["count"]] > 5:
            return [computed.Finding(items["count"], "warning", "More than 5: please confirm.")]
        return []

    monkeypatch.setitem(
        computed.CHECKS,
        "many",
        computed.Check("many", {"count": "count"}, long_course),
    )
    warned = instrument_from_data(form(item("count", "number", min=0, max=10), checks=["many"]))
    assert validate(warned, {"count": 7}) == {}
    assert instruments.findings(warned, {"count": 7}) == [
        computed.Finding("count", "warning", "More than 5: please confirm.")
    ]
    assert instruments.findings(warned, {"count": 2}) == []
