"""Instruments as data (crf.instruments, crf.analgesics): structure, texts, licence notes,
validation of answers and form parsing. Pure: no database needed."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crf import analgesics, instruments, scoring
from crf.instruments import I18n, UnknownInstrument, all_codes, load, parse, validate

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "crf" / "instruments"


@pytest.fixture(autouse=True)
def english():
    """Messages are asserted on their English msgids (Dutch is the site default)."""
    from django.utils import translation

    with translation.override("en"):
        yield


def test_messages_go_through_gettext():
    """Errors are translated in the active language (Django's catalogue already has this one)."""
    from django.utils import translation

    with translation.override("nl"):
        assert validate("eq5d5l", {"vas": "x"}) == {"vas": "Voer een getal in."}


def test_all_codes_load_and_are_cached():
    assert all_codes() == ["c15pal", "bm22", "pain", "eq5d5l", "imcq", "ipcq"]
    for code in all_codes():
        instrument = load(code)
        assert instrument.code == code
        assert instrument.version
        assert len(instrument.version) <= 20  # stored with every response
        assert load(code) is instrument


def test_unknown_instrument():
    with pytest.raises(UnknownInstrument):
        load("qlq-c30")
    with pytest.raises(UnknownInstrument):
        validate("../etc/passwd", {})


def test_definitions_are_immutable():
    instrument = load("c15pal")
    with pytest.raises(dataclasses.FrozenInstanceError):
        instrument.version = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        instrument.items[0].max = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        instrument.title["nl"] = "x"
    with pytest.raises(TypeError):
        instrument.items[0].text.update(nl="x")
    assert isinstance(instrument.items, tuple)


def test_texts_are_bilingual_and_json_serialisable():
    """Every title, instruction, item and choice has non-empty Dutch and English text."""
    for code in all_codes():
        instrument = load(code)
        texts = [instrument.title, instrument.instructions]
        for item in instrument.items:
            texts.append(item.text)
            texts.extend(label for _value, label in item.choices)
            texts.extend(t for t in (item.section, item.help, item.unit) if t is not None)
        for text in texts:
            assert isinstance(text, I18n)
            assert text["nl"].strip() and text["en"].strip(), (code, text)
        json.dumps({"title": instrument.title, "choices": instrument.items[0].choices})


def test_i18n_language_fallback():
    text = load("c15pal").title
    assert text.in_language("en") == "Your health and well-being"
    assert text.in_language("en-gb") == text["en"]
    assert text.in_language("nl") == text["nl"]
    assert text.in_language("de") == text["nl"]
    assert text.in_language(None) == text["nl"]


@pytest.mark.parametrize(
    ("code", "owner"),
    [
        ("c15pal", "EORTC"),
        ("bm22", "EORTC"),
        ("eq5d5l", "EuroQol"),
        ("pain", "MD Anderson"),
        ("imcq", "iMTA"),
        ("ipcq", "iMTA"),
    ],
)
def test_licence_notes_name_the_licensor(code, owner):
    """The data files hold paraphrases; each says the licensed texts must be loaded first."""
    note = load(code).licence_note
    assert owner in note
    assert "licence" in note or "conditions of use" in note
    assert "before use with patients" in note


def test_c15pal_structure():
    instrument = load("c15pal")
    assert instrument.item_codes == tuple(f"q{i}" for i in range(1, 16))
    for item in instrument.items[:14]:
        assert item.kind == "choice"
        assert item.choice_values == (1, 2, 3, 4)
        assert (item.min, item.max) == (1, 4)
    q15 = instrument.item("q15")
    assert q15.choice_values == (1, 2, 3, 4, 5, 6, 7)
    assert [item.number for item in instrument.items] == [str(i) for i in range(1, 16)]


def test_bm22_structure():
    instrument = load("bm22")
    assert instrument.item_codes == tuple(f"q{i}" for i in range(1, 23))
    assert all(item.choice_values == (1, 2, 3, 4) for item in instrument.items)


def test_pain_structure():
    instrument = load("pain")
    assert instrument.item_codes[:4] == ("worst", "least", "average", "now")
    assert instrument.item_codes[4:11] == scoring.BPI_INTERFERENCE_ITEMS
    for item in instrument.items[:11]:
        assert item.choice_values == tuple(range(11))
    assert instrument.item_codes[11:] == ("uses_analgesics", "analgesics")
    assert instrument.item("uses_analgesics").choice_values == (1, 2)
    medication = instrument.item("analgesics")
    assert (medication.kind, medication.show_if, medication.min) == (
        "analgesics",
        ("uses_analgesics", (1,)),
        1,
    )


def test_eq5d5l_structure():
    instrument = load("eq5d5l")
    assert instrument.item_codes == (*scoring.EQ5D_DIMENSIONS, "vas")
    for code in scoring.EQ5D_DIMENSIONS:
        assert instrument.item(code).choice_values == (1, 2, 3, 4, 5)
    vas = instrument.item("vas")
    assert (vas.kind, vas.min, vas.max, vas.integer) == ("number", 0, 100, True)


def test_imcq_ipcq_item_level_only():
    for code in ("imcq", "ipcq"):
        instrument = load(code)
        assert len(instrument.items) >= 8
        assert all(item.kind in ("choice", "number", "text") for item in instrument.items)


def test_scoring_refers_only_to_real_items_with_matching_ranges():
    """Every item a scale reads exists in the data file with the range the scale assumes."""
    c15 = load("c15pal")
    for items, _kind, range_ in scoring.C15PAL_LINEAR_SCALES.values():
        for code in items:
            assert c15.item(code).max == range_ + 1
    for items, _kind in scoring.C15PAL_CONVERTED_SCALES.values():
        for code in items:
            assert c15.item(code).choice_values == (1, 2, 3, 4)
    bm22 = load("bm22")
    scale_items = [code for items, _kind in scoring.BM22_SCALES.values() for code in items]
    assert sorted(scale_items) == sorted(bm22.item_codes)  # each item in exactly one scale
    pain = load("pain")
    for code in (*scoring.BPI_SEVERITY_ITEMS, *scoring.BPI_INTERFERENCE_ITEMS):
        assert (pain.item(code).min, pain.item(code).max) == (0, 10)


def test_data_files_never_mention_the_trial():
    """Patients see these texts: PRESENT-branded, never a trial, an allocation or a treatment
    that only one arm gets (SPEC.md §1.1)."""
    import re

    forbidden = re.compile(
        r"blend|trial|random|allocat|loting|sbrt|stereota|controlegroep|control group|"
        r"interventi|NCT0|NL80847",
        re.IGNORECASE,
    )
    for path in DATA.glob("*.json"):
        hits = forbidden.findall(path.read_text(encoding="utf-8"))
        assert not hits, (path.name, hits)


def test_data_files_are_valid_json_with_a_version():
    for path in DATA.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data.get("version") or data.get("current"), path.name


def test_modules_import_without_django_or_orm():
    """Pure modules: importable in a bare interpreter, and they pull in no ORM."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import sys, crf.scoring, crf.instruments, crf.analgesics\n"
        "assert not any(m.startswith('django.db') for m in sys.modules), 'ORM imported'\n"
        "from crf import instruments\n"
        "print(instruments.validate('c15pal', {'q1': 9})['q1'])\n"
        "print(crf.scoring.score('eq5d5l', {'mo': 2, 'sc': 1, 'ua': 1, 'pd': 1, 'ad': 1})['index'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Choose one of the answers.", "0.918"]


# --------------------------------------------------------------------------- validate


def test_validate_accepts_partial_and_complete_answers():
    assert validate("c15pal", {}) == {}
    assert validate("c15pal", {"q1": 2, "q15": 7}) == {}
    full = {f"q{i}": 1 for i in range(1, 15)} | {"q15": 4}
    assert validate("c15pal", full, complete=True) == {}


def test_validate_missing_items_only_when_complete():
    errors = validate("c15pal", {"q1": 2}, complete=True)
    assert set(errors) == {f"q{i}" for i in range(2, 16)}
    assert errors["q2"] == "Please answer this question."


@pytest.mark.parametrize(
    ("code", "answers", "field", "message"),
    [
        ("c15pal", {"q99": 1}, "q99", "Unknown question."),
        ("c15pal", {"q1": 5}, "q1", "Choose one of the answers."),
        ("c15pal", {"q1": 0}, "q1", "Choose one of the answers."),
        ("c15pal", {"q15": 8}, "q15", "Choose one of the answers."),
        ("c15pal", {"q1": "2"}, "q1", "Choose one of the answers."),
        ("c15pal", {"q1": True}, "q1", "Choose one of the answers."),
        ("c15pal", {"q1": 2.0}, "q1", "Choose one of the answers."),
        ("eq5d5l", {"vas": 101}, "vas", "Enter a number from 0 to 100."),
        ("eq5d5l", {"vas": -1}, "vas", "Enter a number from 0 to 100."),
        ("eq5d5l", {"vas": 50.5}, "vas", "Enter a whole number."),
        ("eq5d5l", {"vas": "50"}, "vas", "Enter a number."),
        ("eq5d5l", {"vas": float("nan")}, "vas", "Enter a number."),
        ("pain", {"worst": 11}, "worst", "Choose one of the answers."),
        (
            "pain",
            {"uses_analgesics": 1, "analgesics": "morphine"},
            "analgesics",
            "Enter the pain medication as a list.",
        ),
        ("imcq", {"aids": 1, "aids_which": "x" * 501}, "aids_which", "Use at most 500 characters."),
        ("imcq", {"aids": 1, "aids_which": 5}, "aids_which", "Enter text."),
        ("imcq", {"gp_visits": 100}, "gp_visits", "Enter a number from 0 to 99."),
    ],
)
def test_validate_field_errors(code, answers, field, message):
    errors = validate(code, answers)
    assert errors == {field: message}


def test_validate_non_mapping():
    assert "__all__" in validate("c15pal", [("q1", 1)])  # type: ignore[arg-type]


def test_validate_none_and_blank_mean_unanswered():
    assert validate("c15pal", {"q1": None}) == {}
    assert validate("imcq", {"aids": 1, "aids_which": "  "}) == {}


def test_validate_number_accepts_decimal_where_allowed():
    assert validate("ipcq", {"paid_work": 1, "work_hours": 32.5}) == {}
    assert validate("ipcq", {"paid_work": 1, "work_hours": 81}) == {
        "work_hours": "Enter a number from 0 to 80."
    }


def test_validate_analgesic_rows():
    ok = [
        {"drug": "fentanyl", "route": "transdermal", "daily_dose": 25, "unit": "µg/h"},
        {"drug": "paracetamol", "route": "oral", "daily_dose": 3000, "unit": "mg/day"},
        {
            "drug": "other_opioid",
            "route": "oral",
            "daily_dose": 10,
            "unit": "mg/day",
            "name": "buprenorfine",
        },
    ]
    yes = {"uses_analgesics": 1}
    assert validate("pain", yes | {"analgesics": ok}) == {}
    bad = [ok[0], {"drug": "morphine", "route": "oral", "daily_dose": 0, "unit": "mg/day"}]
    assert validate("pain", yes | {"analgesics": bad}) == {
        "analgesics": "Medicine 2: the daily dose must be more than 0."
    }
    high = [{"drug": "morphine", "route": "oral", "daily_dose": 100_001, "unit": "mg/day"}]
    assert validate("pain", yes | {"analgesics": high}) == {
        "analgesics": "Medicine 1: the daily dose is too high; please check it."
    }
    wrong_unit = [{"drug": "fentanyl", "route": "transdermal", "daily_dose": 25, "unit": "mg/day"}]
    assert validate("pain", yes | {"analgesics": wrong_unit}) == {
        "analgesics": "Medicine 1: for this medicine and route enter the dose in µg/h."
    }
    too_many = [ok[1]] * 21
    assert validate("pain", yes | {"analgesics": too_many}) == {
        "analgesics": "Enter at most 20 medicines."
    }
    assert validate("pain", yes | {"analgesics": []}) == {
        "analgesics": "Enter at least one medicine."
    }


def test_painkiller_use_is_an_explicit_answer():
    """ "No painkillers" is answered with the yes/no item; the list then does not apply, and
    after "yes" the list needs at least one medicine: a skipped list is never "none"."""
    nrs = dict.fromkeys((*scoring.BPI_SEVERITY_ITEMS, *scoring.BPI_INTERFERENCE_ITEMS), 0)
    assert validate("pain", nrs, complete=True) == {
        "uses_analgesics": "Please answer this question."
    }
    assert validate("pain", nrs | {"uses_analgesics": 2}, complete=True) == {}
    assert validate("pain", nrs | {"uses_analgesics": 1}, complete=True) == {
        "analgesics": "Please answer this question."
    }
    row = {"drug": "morphine", "route": "oral", "daily_dose": 30, "unit": "mg/day"}
    assert validate("pain", nrs | {"uses_analgesics": 1, "analgesics": [row]}, complete=True) == {}
    assert validate("pain", nrs | {"uses_analgesics": 2, "analgesics": [row]}) == {
        "analgesics": "This question does not apply given an earlier answer."
    }
    assert validate("pain", {"analgesics": [row]}) == {
        "analgesics": "This question does not apply given an earlier answer."
    }


def test_show_if_items():
    """Conditional items apply only after the answer they depend on (and only then are required)."""
    assert validate("ipcq", {"paid_work": 2}, complete=True) == {
        "unpaid_help": "Please answer this question."
    }
    errors = validate("ipcq", {"paid_work": 2, "absent": 1, "absent_days": 3})
    assert errors == {
        "absent": "This question does not apply given an earlier answer.",
        "absent_days": "This question does not apply given an earlier answer.",
    }
    employed = validate("ipcq", {"paid_work": 1, "unpaid_help": 2}, complete=True)
    assert set(employed) == {"work_hours", "absent", "worked_ill"}
    cleaned = instruments.drop_not_applicable(
        "ipcq", {"paid_work": 2, "absent": 1, "absent_days": 3, "unpaid_help": 2}
    )
    assert cleaned == {"paid_work": 2, "unpaid_help": 2}
    assert validate("ipcq", cleaned, complete=True) == {}


def test_bad_data_files_are_refused():
    """Loading checks the data: kinds, choices, show_if targets, bilingual texts."""
    base = {
        "code": "x",
        "version": "1",
        "title": {"nl": "t", "en": "t"},
        "instructions": {"nl": "i", "en": "i"},
        "licence_note": "n",
    }
    good = {
        "code": "a",
        "kind": "choice",
        "choices": [[1, {"nl": "ja", "en": "yes"}]],
        "text": {"nl": "a", "en": "a"},
    }
    assert instruments.instrument_from_data(base | {"items": [good]}).item("a").choice_values == (
        1,
    )
    bad_items = [
        [good | {"kind": "slider"}],
        [good | {"choices": []}],
        [good | {"text": "only one language"}],
        [good | {"text": {"nl": "alleen nl"}}],
        [good, good],
        [good | {"show_if": {"item": "b", "in": [1]}}, good | {"code": "b"}],
        [{"code": "n", "kind": "number", "text": {"nl": "n", "en": "n"}}],
    ]
    for items in bad_items:
        with pytest.raises((ValueError, KeyError)):
            instruments.instrument_from_data(base | {"items": items})


# --------------------------------------------------------------------------- parse


def test_parse_form_strings():
    answers, errors = parse(
        "eq5d5l", {"mo": "2", "sc": "", "vas": " 70 ", "csrfmiddlewaretoken": "x"}
    )
    assert (answers, errors) == ({"mo": 2, "sc": None, "vas": 70}, {})
    answers, errors = parse("ipcq", {"paid_work": "1", "work_hours": "32,5"})
    assert answers == {"paid_work": 1, "work_hours": 32.5}
    answers, errors = parse("c15pal", {"q1": "abc", "q2": "2.5", "q3": "nan"})
    assert set(errors) == {"q1", "q2", "q3"}
    assert validate("eq5d5l", parse("eq5d5l", {"vas": "100"})[0]) == {}
    assert parse("imcq", {"aids_which": "  rollator "})[0] == {"aids_which": "rollator"}


def test_parse_analgesic_rows():
    rows, problems = analgesics.parse_rows(
        ["fentanyl", "", "morphine"],
        ["transdermal", "", "oral"],
        ["12,5", "", "x"],
        ["ug/h", "", "mg/day"],
    )
    assert rows[0] == {
        "drug": "fentanyl",
        "route": "transdermal",
        "daily_dose": 12.5,
        "unit": "µg/h",
    }
    assert len(rows) == 2
    assert problems == ["Medicine 3: enter the daily dose as a number."]


# --------------------------------------------------------------------------- properties


def answer_strategy(item: instruments.Item):
    if item.kind == "choice":
        return st.sampled_from(item.choice_values)
    if item.kind == "number":
        ints = st.integers(int(item.min), int(item.max))
        if item.integer:
            return ints
        return st.one_of(ints, st.floats(item.min, item.max, allow_nan=False))
    if item.kind == "text":  # control characters are refused (not typeable in a form)
        typeable = st.characters(blacklist_categories=("Cc", "Cs"))
        return st.text(typeable, max_size=int(item.max or 50))
    table = analgesics.table()
    row = st.sampled_from(sorted(table.drugs)).flatmap(
        lambda drug: st.sampled_from(
            sorted(table.drugs[drug].conversions) or sorted(table.routes)
        ).map(lambda route, drug=drug: (drug, route))
    )
    return st.lists(
        st.tuples(row, st.floats(0.5, 500, allow_nan=False)).map(
            lambda pair: {
                "drug": pair[0][0],
                "route": pair[0][1],
                "daily_dose": pair[1],
                "unit": (table.conversion(*pair[0]) or (0, "mg/day"))[1],
            }
        ),
        min_size=int(item.min or 0),
        max_size=4,
    )


@st.composite
def full_answers(draw, code):
    answers = {}
    for item in instruments.load(code).items:
        if item.show_if is not None:
            target, values = item.show_if
            if answers.get(target) not in values:
                continue
        answers[item.code] = draw(answer_strategy(item))
    return answers


@pytest.mark.parametrize("code", all_codes())
def test_any_complete_valid_answer_set_validates_and_scores(code):
    """Round trip between the data and the scorer: whatever a patient can validly enter is
    accepted as complete and scores without error, each score in its range."""

    @given(full_answers(code))
    def check(answers):
        assert validate(code, answers, complete=True) == {}
        ranges = {i.code: (i.low, i.high) for i in scoring.scale_info(code)}
        for key, value in scoring.score(code, answers).items():
            if value is None:
                assert code == "pain" and key == "omed"  # an opioid without a conversion
                continue
            low, high = ranges[key]
            assert low - 1e-9 <= value
            assert high is None or value <= high + 1e-9

    check()


@given(
    st.sampled_from([f"q{i}" for i in range(1, 15)]),
    st.integers().filter(lambda v: v not in (1, 2, 3, 4)),
)
def test_any_out_of_range_choice_is_an_error(item, value):
    assert set(validate("c15pal", {item: value})) == {item}


def test_every_message_has_a_dutch_translation():
    """locale/nl_crf_scoring.json covers every msgid of these modules, placeholders intact."""
    import re

    glossary = json.loads((ROOT / "locale" / "nl_crf_scoring.json").read_text(encoding="utf-8"))
    source = "".join(
        (ROOT / "crf" / name).read_text(encoding="utf-8")
        for name in ("instruments.py", "analgesics.py", "scoring.py")
    )
    msgids = set(re.findall(r'\b_\(\s*"([^"]+)"', source))
    assert len(msgids) > 15
    assert msgids <= set(glossary), sorted(msgids - set(glossary))
    for english, dutch in glossary.items():
        placeholders = sorted(re.findall(r"%\(\w+\)s", english))
        assert placeholders == sorted(re.findall(r"%\(\w+\)s", dutch)), english
        assert dutch.strip() and dutch != english


def test_unanswered_items_follow_the_items_that_apply():
    """A patient may skip items; the count of what is left counts only items that apply."""
    from crf import instruments

    assert len(instruments.unanswered_items("pain", {})) == 12  # the medication list waits
    yes = {"uses_analgesics": 1}
    assert [i.code for i in instruments.unanswered_items("pain", yes)][-1] == "analgesics"
    assert len(instruments.unanswered_items("pain", yes)) == 12
    assert len(instruments.unanswered_items("c15pal", {"q1": 1, "q2": None, "q3": ""})) == 14
    assert instruments.answered_count("c15pal", {"q1": 1, "q2": None, "q3": ""}) == 1
    assert instruments.answered_count("pain", {}) == 0
    # optional items (free text after "yes, aids") are never counted as missing
    assert "aids_which" not in {i.code for i in instruments.unanswered_items("imcq", {"aids": 1})}
