"""Pure cohort rules: study number format, status, free-text checks (tables + Hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from cohort.rules import (
    Status,
    contains_markup,
    format_study_number,
    free_text_mentions,
    parse_study_number,
    participant_status,
    validate_hospital_number,
    validate_person_name,
    validate_phone,
)


@pytest.mark.parametrize(
    ("n", "text"),
    [(1, "PRE-00001"), (42, "PRE-00042"), (99999, "PRE-99999"), (100000, "PRE-100000")],
)
def test_format_study_number(n, text):
    assert format_study_number(n) == text


def test_study_numbers_start_at_one():
    with pytest.raises(ValueError):
        format_study_number(0)


@given(st.integers(min_value=1, max_value=10**8))
def test_study_number_round_trip(n):
    text = format_study_number(n)
    assert parse_study_number(text) == n
    assert parse_study_number(text.lower()) == n
    assert parse_study_number(str(n)) == n


@pytest.mark.parametrize("text", ["", "PRE-", "PRE-12", "BLEND-00001", "abc", "0", "PRE-0000x"])
def test_parse_refuses_other_text(text):
    assert parse_study_number(text) is None


D = date(2025, 6, 1)


@pytest.mark.parametrize(
    ("died_on", "scopes", "code"),
    [
        (None, [], Status.ACTIVE),
        (None, ["trial"], Status.WITHDRAWN),
        (D, [], Status.DECEASED),
        (D, ["questionnaires"], Status.DECEASED),
        (D + timedelta(days=1), [], Status.ACTIVE),  # death recorded for a later date
    ],
)
def test_status_table(died_on, scopes, code):
    assert participant_status(died_on=died_on, withdrawn_scopes=scopes, on=D).code == code


@given(
    st.one_of(st.none(), st.dates()),
    st.lists(st.sampled_from(["questionnaires", "trial", "data_collection", "data_use"])),
    st.dates(),
)
def test_status_properties(died_on, scopes, on):
    status = participant_status(died_on=died_on, withdrawn_scopes=scopes, on=on)
    assert status.code in Status.ALL
    if died_on is not None and died_on <= on:
        assert status.code == Status.DECEASED
    elif scopes:
        assert status.code == Status.WITHDRAWN and set(status.withdrawn_scopes) == set(scopes)
    else:
        assert status.code == Status.ACTIVE


@pytest.mark.parametrize(
    ("text", "markup"),
    [
        ("pain > 5 since May", False),
        ("a < b", False),
        ("Tom & Jerry", False),
        ("<script>alert(1)</script>", True),
        ("<img src=x onerror=alert(1)>", True),
        ("</b>", True),
        ("&lt;", True),
        ("javascript:alert(1)", True),
        ("line\x00break", True),
    ],
)
def test_markup_detection(text, markup):
    assert contains_markup(text) is markup


@pytest.mark.parametrize(
    "name", ["Anna", "van der Berg", "O'Neil", "Jean-Luc", "Ç. Yılmaz", "Ørsted"]
)
def test_valid_names(name):
    validate_person_name(name)


@pytest.mark.parametrize("name", ["", "<b>", "R2D2", "Anna;", "a\tb", "-Anna"])
def test_invalid_names(name):
    with pytest.raises(ValidationError):
        validate_person_name(name)


@given(st.text(max_size=40))
def test_name_validator_never_accepts_angle_brackets_or_digits(text):
    try:
        validate_person_name(text)
    except ValidationError:
        return
    assert "<" not in text and ">" not in text and not any(c.isdigit() for c in text)


@pytest.mark.parametrize("value", ["1234567", "UMC-778899", "Z12"])
def test_valid_hospital_numbers(value):
    validate_hospital_number(value)


@pytest.mark.parametrize("value", ["", "12", "<b>12</b>", "1" * 21, "12 34"])
def test_invalid_hospital_numbers(value):
    with pytest.raises(ValidationError):
        validate_hospital_number(value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("+31 30 250 0000", True),
        ("0612345678", True),
        ("call me", False),
        ("<b>06</b>", False),
    ],
)
def test_phone(value, ok):
    if ok:
        validate_phone(value)
    else:
        with pytest.raises(ValidationError):
            validate_phone(value)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Mrs Jansen refused", True),
        ("moved to Jansenstraat", False),  # whole words only
        ("hn UMC123 in chart", True),
        ("no details", False),
    ],
)
def test_free_text_mentions(text, found):
    assert free_text_mentions(text, ["Jansen", "UMC123", "", "ab"]) is found
