"""The ten BLEND clinical forms (SPEC.md §3.7) as definitions: each loads, has Dutch and
English texts, and a complete record round-trips through parse -> compute -> validate;
the conditions, computed items and checks the protocol needs are in the data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crf import instruments
from crf.instruments import compute, load, parse, validate

# Code-list items read crf.codelists, which may consult the database's imported lists.
pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
FORMS = [
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
]
OCCURS = {
    "baseline_clinical": "once",
    "sbrt_delivery": "per_event",
    "surgery": "per_event",
    "rt_after_surgery": "per_event",
    "admission": "per_event",
    "followup_clinical": "per_timepoint",
    "adverse_event": "log",
    "systemic_therapy": "log",
    "deviation": "log",
    "end_of_study": "once",
}
LEVELS = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)]
LEVELS += [f"L{i}" for i in range(1, 6)] + [f"S{i}" for i in range(1, 6)]


@pytest.fixture(autouse=True)
def english():
    from django.utils import translation

    with translation.override("en"):
        yield


def test_the_ten_forms_load_in_spec_order_with_their_version_and_occurrence():
    assert instruments.all_codes(kind="clinical") == FORMS
    for code in FORMS:
        form = load(code)
        assert (form.code, form.kind, form.version) == (code, "clinical", "2026.2")
        assert form.occurs == OCCURS[code]
        assert form.title["nl"] and form.title["en"] and form.title["nl"] != form.title["en"]
        assert form.signature == "investigator"
        for item in form.items:
            assert item.text["nl"].strip() and item.text["en"].strip(), (code, item.code)
        path = ROOT / "crf" / "definitions" / f"{code}.json"
        assert json.loads(path.read_text(encoding="utf-8"))["code"] == code


def _value(item: instruments.Item, index: int = 0):
    """A valid value for ``item`` (the ``index``-th choice where there is a choice)."""
    if item.kind == "choice":
        return item.choice_values[index % len(item.choice_values)]
    if item.kind == "multi_choice":
        return [item.choice_values[index % len(item.choice_values)]]
    if item.kind == "number":
        return int(item.min) if item.integer else float(item.min) + 0.5
    if item.kind == "date":
        return "2026-01-05"
    if item.kind == "datetime":
        return "2026-01-05T08:30"
    if item.kind == "yes_no":
        return index % 2 == 0
    if item.kind == "text":
        return 'text as typed: dose < 8 Gy & "quoted"'
    if item.kind == "code_list":
        from crf import codelists

        return sorted(codelists.codes(item.code_list))[0]
    if item.kind == "analgesics":
        return [{"drug": "paracetamol", "route": "oral", "daily_dose": 3000, "unit": "mg/day"}]
    if item.kind == "repeat":
        return [{sub.code: _value(sub, index) for sub in item.items if sub.condition is None}]
    raise AssertionError(item.kind)


def complete_record(code: str, index: int = 0) -> dict:
    """Values for every applicable item (following conditions as answers are filled in)."""
    form = load(code)
    data: dict = {}
    for _round in range(4):
        for item in instruments.applicable_items(form, data):
            if item.kind != "computed" and item.code not in data:
                data[item.code] = _value(item, index)
    return compute(form, data)


@pytest.mark.parametrize("code", FORMS)
@pytest.mark.parametrize("index", [0, 1])
def test_a_complete_record_validates(code, index):
    data = complete_record(code, index)
    assert validate(code, data, complete=True) == {}
    assert validate(code, {}, complete=False) == {}  # an empty draft is well-typed
    assert validate(code, {}, complete=True)  # but not complete


def _as_form_fields(form: instruments.Instrument, data: dict) -> dict:
    """What a browser would send for ``data`` (dates typed as dd-mm-yyyy)."""

    def text(item: instruments.Item, value):
        if item.kind == "yes_no":
            return "yes" if value else "no"
        if item.kind == "date":
            year, month, day = value.split("-")
            return f"{day}-{month}-{year}"
        if item.kind == "datetime":
            day_part, time_part = value.split("T")
            year, month, day = day_part.split("-")
            return f"{day}-{month}-{year} {time_part}"
        if item.kind == "multi_choice":
            return [str(v) for v in value]
        return str(value)

    fields: dict = {}
    for item in form.items:
        if item.code not in data or item.kind in ("computed", "analgesics"):
            continue
        if item.kind == "repeat":
            for row_index, row in enumerate(data[item.code]):
                for sub in item.items:
                    if sub.code in row:
                        fields[f"{item.code}-{row_index}-{sub.code}"] = text(sub, row[sub.code])
            continue
        fields[item.code] = text(item, data[item.code])
    return fields


@pytest.mark.parametrize("code", FORMS)
def test_round_trip_through_the_html_form(code):
    """A complete record typed into the generated form comes back as the same data."""
    from django.http import QueryDict

    form = load(code)
    data = complete_record(code)
    raw = QueryDict(mutable=True)
    for name, value in _as_form_fields(form, data).items():
        raw.setlist(name, value if isinstance(value, list) else [value])
    answers, errors = parse(form, raw)
    assert errors == {}
    for item in form.items:
        if item.kind == "analgesics" and item.code in data:
            answers[item.code] = data[item.code]
    answers = compute(form, instruments.drop_not_applicable(form, answers))
    assert answers == data
    assert validate(form, answers, complete=True) == {}


# --------------------------------------------------------------------------- the protocol's rules


def test_baseline_items_and_computed_sins():
    form = load("baseline_clinical")
    assert form.item("index_levels").kind == "multi_choice"
    assert list(form.item("index_levels").choice_values) == LEVELS
    assert form.item("bilsky").choice_values == ("0", "1a", "1b", "1c", "2", "3")
    assert form.item("asia").choice_values == ("A", "B", "C", "D", "E")
    assert form.item("who_ps").choice_values == (0, 1, 2, 3, 4)
    assert (form.item("worst_pain").min, form.item("worst_pain").max) == (0, 10)
    assert form.item("analgesics").kind == "analgesics"
    assert form.item("systemic_last_dose_on").kind == "date"
    assert form.item("sins_total").kind == form.item("sins_class").kind == "computed"
    worst = {
        "sins_location": "junctional",
        "sins_pain": "mechanical",
        "sins_lesion": "lytic",
        "sins_alignment": "subluxation",
        "sins_collapse": "over_50",
        "sins_posterolateral": "bilateral",
    }
    assert compute(form, worst) == worst | {"sins_total": 18, "sins_class": "unstable"}
    best = {
        "sins_location": "rigid",
        "sins_pain": "none",
        "sins_lesion": "blastic",
        "sins_alignment": "normal",
        "sins_collapse": "none",
        "sins_posterolateral": "none",
    }
    assert compute(form, best)["sins_class"] == "stable"
    partial = dict(best)
    del partial["sins_pain"]
    assert "sins_total" not in compute(form, partial | {"sins_total": 0})
    assert validate(form, best | {"sins_total": 5}) == {
        "sins_total": "This value is computed and cannot be entered."
    }


SINS_PARTS = {
    "sins_location": ("junctional", "mobile", "semi_rigid", "rigid"),
    "sins_pain": ("mechanical", "occasional", "none"),
    "sins_lesion": ("lytic", "mixed", "blastic"),
    "sins_alignment": ("subluxation", "deformity", "normal"),
    "sins_collapse": ("over_50", "under_50", "none_over_50_involved", "none"),
    "sins_posterolateral": ("bilateral", "unilateral", "none"),
}


@settings(max_examples=60)
@given(st.fixed_dictionaries({k: st.sampled_from(v) for k, v in SINS_PARTS.items()}))
def test_the_sins_choices_are_the_scale_codes(parts):
    """The form's choice codes are exactly what the scale takes; every combination computes."""
    form = load("baseline_clinical")
    for code, values in SINS_PARTS.items():
        assert form.item(code).choice_values == values
    result = compute(form, parts)
    assert 0 <= result["sins_total"] <= 18
    assert result["sins_class"] in ("stable", "potentially_unstable", "unstable")


def test_surgery_decompression_details_only_when_decompression():
    base = complete_record("surgery")
    yes = base | {"decompression": True}
    no = {k: v for k, v in base.items() if not k.startswith("decompression_")}
    no["decompression"] = False
    assert validate("surgery", yes | {"decompression_type": "laminectomy"}) == {}
    assert validate("surgery", no, complete=True) == {}
    assert validate("surgery", no | {"decompression_type": "laminectomy"}) == {
        "decompression_type": "This question does not apply given an earlier answer."
    }
    missing = {k: v for k, v in yes.items() if k != "decompression_levels"}
    assert validate("surgery", missing, complete=True) == {
        "decompression_levels": "Please answer this question."
    }
    backwards = base | {"started_at": "2026-01-05T12:00", "ended_at": "2026-01-05T09:00"}
    assert validate("surgery", backwards) == {"ended_at": "The end cannot be before the start."}


def test_admission_length_of_stay_and_discharge_before_admission():
    form = load("admission")
    assert (
        compute(form, {"admitted_on": "2026-01-05", "discharged_on": "2026-01-05"})[
            "length_of_stay"
        ]
        == 0
    )
    assert (
        compute(form, {"admitted_on": "2026-03-28", "discharged_on": "2026-03-30"})[
            "length_of_stay"
        ]
        == 2
    )  # over the DST change: calendar days
    refused = {"admitted_on": "2026-01-05", "discharged_on": "2026-01-04"}
    assert validate(form, refused) == {
        "discharged_on": "The discharge date cannot be before admission."
    }
    assert validate(form, {"admitted_on": "2026-01-05"}) == {}  # still in hospital: a draft
    assert "discharged_on" in validate(form, {"admitted_on": "2026-01-05"}, complete=True)


def test_adverse_event_term_grade_resolution_and_seriousness():
    form = load("adverse_event")
    assert form.item("term").kind == "code_list" and form.item("term").code_list == "ctcae_v5"
    assert form.item("grade").choice_values == (1, 2, 3, 4, 5)
    record = complete_record("adverse_event") | {"resolved": False, "serious": False}
    record = instruments.drop_not_applicable(form, record)
    assert validate(form, record, complete=True) == {}
    assert validate(form, record | {"resolved_on": "2026-01-06"}) == {
        "resolved_on": "This question does not apply given an earlier answer."
    }
    assert validate(form, record | {"serious_criteria": ["death"]}) == {
        "serious_criteria": "This question does not apply given an earlier answer."
    }
    serious = record | {"serious": True}
    assert validate(form, serious, complete=True) == {
        "serious_criteria": "Please answer this question."
    }
    resolved = record | {"resolved": True, "resolved_on": "2026-01-01", "onset_on": "2026-01-05"}
    assert validate(form, resolved) == {"resolved_on": "The end cannot be before the start."}
    assert validate(form, record | {"term": "00000000"}) == {"term": "Choose a term from the list."}
    assert validate(form, record | {"grade": 6}) == {"grade": "Choose one of the answers."}
    assert form.item("description").identifying_risk


def test_systemic_therapy_restart_not_before_stop():
    record = {"therapy_type": "hormonal", "stopped_on": "2026-01-10", "restarted": True}
    assert validate("systemic_therapy", record | {"restarted_on": "2026-01-09"}) == {
        "restarted_on": "The end cannot be before the start."
    }
    assert validate("systemic_therapy", record | {"restarted_on": "2026-01-10"}) == {}


def test_sbrt_targets_are_a_repeating_group():
    form = load("sbrt_delivery")
    targets = form.item("targets")
    assert targets.kind == "repeat" and (targets.min, targets.max) == (1, 5)
    assert [sub.code for sub in targets.items] == ["levels", "dose_gy", "fractions"]
    assert targets.sub_item("dose_gy").unit == {"nl": "Gy", "en": "Gy"}
    record = complete_record("sbrt_delivery")
    assert validate(form, record | {"targets": []}, complete=True) == {
        "targets": "Please answer this question."
    }
    six = [record["targets"][0]] * 6
    assert validate(form, record | {"targets": six}) == {"targets": "Enter at most 5 rows."}


def test_end_of_study_death_details_only_after_death():
    form = load("end_of_study")
    died = {"ended_on": "2026-02-01", "reason": "died"}
    assert set(validate(form, died, complete=True)) == {"death_on", "death_cause"}
    assert validate(form, died | {"death_on": "2026-02-02", "death_cause": "unknown"}) == {
        "ended_on": "The end cannot be before the start."
    }
    completed = {"ended_on": "2026-02-01", "reason": "completed"}
    assert validate(form, completed, complete=True) == {}
    assert validate(form, completed | {"death_on": "2026-01-01"}) == {
        "death_on": "This question does not apply given an earlier answer."
    }


def test_deviation_records_a_control_arm_disclosure():
    form = load("deviation")
    assert "control_arm_disclosure" in form.item("deviation_type").choice_values
    record = {
        "occurred_on": "2026-01-05",
        "deviation_type": "control_arm_disclosure",
        "disclosure_by": "patient_request",
        "description": "Told at the outpatient clinic.",
    }
    assert validate(form, record, complete=True) == {}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.mark.parametrize("code", FORMS)
def test_any_json_gets_field_errors_never_an_exception(code):
    """Whatever an API client sends, validation answers with messages (never a 500)."""
    form = load(code)
    names = [*form.item_codes, "unknown"]

    @settings(max_examples=40, deadline=None)
    @given(st.dictionaries(st.sampled_from(names), JSON, max_size=6), st.booleans())
    def check(data, complete):
        errors = validate(form, data, complete=complete)
        assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in errors.items())
        compute(form, data)
        instruments.drop_not_applicable(form, data)

    check()


@pytest.mark.parametrize("code", FORMS)
def test_any_typed_text_parses_to_values_or_messages(code):
    form = load(code)
    names = list(form.item_codes)
    for item in form.items:
        names += [f"{item.code}-{row}-{sub.code}" for sub in item.items for row in (0, 1)]

    @settings(max_examples=40, deadline=None)
    @given(st.dictionaries(st.sampled_from(names), st.text(max_size=20), max_size=8))
    def check(raw):
        answers, errors = parse(form, raw)
        assert set(errors) <= set(names)
        validate(form, {k: v for k, v in answers.items() if k not in errors})

    check()
