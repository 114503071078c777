"""The BLEND edit checks that compare a record with its context (crf.computed.CHECKS):
for each, a record that passes and one that fails, on plain values (issue 12 builds the
automatic queries on these findings). Protocol values are options with defaults that a
definition can override; a check whose context lacks a fact finds nothing."""

from __future__ import annotations

from datetime import date

import pytest

from crf import instruments
from crf.computed import CHECKS

INTERVENTION = {"arm": "intervention", "sbrt_started": ["2026-03-02T08:00"]}

CASES = [
    # check, bound items/options, data, context, items flagged (empty: passes)
    ("surgery_within_hours_of_sbrt", {}, {"started_at": "2026-03-02T15:00"}, INTERVENTION, []),
    ("surgery_within_hours_of_sbrt", {}, {"started_at": "2026-03-03T08:00"}, INTERVENTION, []),
    (
        "surgery_within_hours_of_sbrt",
        {},
        {"started_at": "2026-03-03T08:01"},
        INTERVENTION,
        ["started_at"],
    ),
    (
        "surgery_within_hours_of_sbrt",
        {},
        {"started_at": "2026-03-02T07:00"},
        INTERVENTION,
        ["started_at"],
    ),
    (
        "surgery_within_hours_of_sbrt",
        {"hours": 48},
        {"started_at": "2026-03-03T20:00"},
        INTERVENTION,
        [],
    ),
    (
        "surgery_within_hours_of_sbrt",
        {},
        {"started_at": "2026-03-09T08:00"},
        {"arm": "control", "sbrt_started": ["2026-03-02T08:00"]},
        [],
    ),
    (
        "surgery_within_hours_of_sbrt",
        {},
        {"started_at": "2026-03-09T08:00"},
        {"arm": "intervention"},
        [],
    ),
    (
        "not_within_days_after_surgery",
        {},
        {"started_on": "2026-03-09"},
        {"surgery_on": date(2026, 3, 2)},
        [],
    ),
    (
        "not_within_days_after_surgery",
        {},
        {"started_on": "2026-03-08"},
        {"surgery_on": date(2026, 3, 2)},
        ["started_on"],
    ),
    ("fatal_grade_needs_a_death", {}, {"grade": 5}, {"died_on": date(2026, 4, 1)}, []),
    ("fatal_grade_needs_a_death", {}, {"grade": 4}, {"died_on": None}, []),
    ("fatal_grade_needs_a_death", {}, {"grade": 5}, {"died_on": None}, ["grade"]),
    ("fatal_grade_needs_a_death", {}, {"grade": 5}, {}, []),  # not known: no guess
    (
        "onset_within_study",
        {},
        {"onset_on": "2026-03-05"},
        {"consented_on": date(2026, 3, 1), "ended_on": date(2026, 9, 1)},
        [],
    ),
    (
        "onset_within_study",
        {},
        {"onset_on": "2026-02-27"},
        {"consented_on": date(2026, 3, 1)},
        ["onset_on"],
    ),
    (
        "onset_within_study",
        {},
        {"onset_on": "2026-09-02"},
        {"ended_on": date(2026, 9, 1)},
        ["onset_on"],
    ),
    (
        "dose_per_fraction_in_range",
        {},
        {"targets": [{"dose_gy": 18, "fractions": 1}, {"dose_gy": 24, "fractions": 3}]},
        {},
        [],
    ),
    (
        "dose_per_fraction_in_range",
        {},
        {"targets": [{"dose_gy": 18, "fractions": 1}, {"dose_gy": 30, "fractions": 1}]},
        {},
        ["targets-1-dose_gy"],
    ),
    (
        "dose_per_fraction_in_range",
        {"max_gy": 30},
        {"targets": [{"dose_gy": 30, "fractions": 1}]},
        {},
        [],
    ),
    (
        "dose_per_fraction_in_range",
        {},
        {"targets": [{"dose_gy": 20, "fractions": 5}]},
        {},
        ["targets-0-dose_gy"],
    ),
    ("asia_not_worse_than_baseline", {}, {"asia": "E"}, {"baseline_asia": "D"}, []),
    ("asia_not_worse_than_baseline", {}, {"asia": "D"}, {"baseline_asia": "D"}, []),
    ("asia_not_worse_than_baseline", {}, {"asia": "C"}, {"baseline_asia": "D"}, ["asia"]),
    ("asia_not_worse_than_baseline", {}, {"asia": "C"}, {}, []),
    (
        "dates_within_life",
        {},
        {"admitted_on": "2026-03-01", "targets": [{"on": "2026-03-02"}]},
        {"born_year": 1950, "died_on": date(2026, 4, 1)},
        [],
    ),
    ("dates_within_life", {}, {"admitted_on": "1949-12-31"}, {"born_year": 1950}, ["admitted_on"]),
    (
        "dates_within_life",
        {},
        {"started_at": "2026-04-02T09:00", "rows": [{"on": "2026-04-03"}]},
        {"died_on": date(2026, 4, 1)},
        ["started_at", "rows-0-on"],
    ),
    ("death_matches_cohort", {}, {"reason": "completed"}, {"died_on": None}, []),
    (
        "death_matches_cohort",
        {},
        {"reason": "died", "death_on": "2026-04-01", "death_cause": "progression"},
        {"died_on": date(2026, 4, 1)},
        [],
    ),
    (
        "death_matches_cohort",
        {},
        {"reason": "completed"},
        {"died_on": date(2026, 4, 1)},
        ["reason"],
    ),
    ("death_matches_cohort", {}, {"reason": "died"}, {"died_on": None}, ["reason"]),
    (
        "death_matches_cohort",
        {},
        {"reason": "died", "death_on": "2026-04-02", "death_cause": "treatment"},
        {"died_on": date(2026, 4, 1), "fatal_ae": False},
        ["death_on", "death_cause"],
    ),
    (
        "death_matches_cohort",
        {},
        {"reason": "died", "death_on": "2026-04-01", "death_cause": "treatment"},
        {"died_on": date(2026, 4, 1), "fatal_ae": True},
        [],
    ),
    ("death_matches_cohort", {}, {"reason": "died"}, {}, []),  # no context: no guess
]


@pytest.mark.parametrize(("name", "bound", "data", "context", "flagged"), CASES)
def test_context_check(name, bound, data, context, flagged):
    check = CHECKS[name]
    items = {**check.params, **bound}
    found = check(data, items, context)
    assert [f.item for f in found] == flagged
    assert all(f.severity == "warning" and f.message for f in found)


def test_every_context_check_has_a_failing_case():
    failing = {name for name, _b, _d, _c, flagged in CASES if flagged}
    assert failing == {
        "surgery_within_hours_of_sbrt",
        "not_within_days_after_surgery",
        "fatal_grade_needs_a_death",
        "onset_within_study",
        "dose_per_fraction_in_range",
        "asia_not_worse_than_baseline",
        "dates_within_life",
        "death_matches_cohort",
    }


def _form(checks, items=None):
    return {
        "code": "demo_form",
        "version": "1",
        "kind": "clinical",
        "occurs": "per_event",
        "title": {"nl": "Demo", "en": "Demo"},
        "items": items
        or [
            {"code": "started_at", "kind": "datetime", "text": {"nl": "Start", "en": "Start"}},
            {
                "code": "targets",
                "kind": "repeat",
                "text": {"nl": "Targets", "en": "Targets"},
                "items": [
                    {
                        "code": "dose_gy",
                        "kind": "number",
                        "text": {"nl": "Dose", "en": "Dose"},
                        "min": 1,
                        "max": 60,
                    },
                    {
                        "code": "fractions",
                        "kind": "number",
                        "text": {"nl": "Fractions", "en": "Fractions"},
                        "min": 1,
                        "max": 10,
                    },
                ],
            },
        ],
        "checks": checks,
    }


def test_a_definition_sets_protocol_values_and_names_repeat_fields():
    definition = instruments.instrument_from_data(
        _form([{"name": "dose_per_fraction_in_range", "min_gy": 16, "max_gy": 21}])
    )
    ((name, bound),) = definition.checks
    assert bound == {
        "rows": "targets",
        "dose": "dose_gy",
        "fractions": "fractions",
        "min_gy": 16,
        "max_gy": 21,
    }
    found = instruments.findings(
        definition, {"targets": [{"dose_gy": 24, "fractions": 1}, {"dose_gy": 18, "fractions": 1}]}
    )
    assert [f.item for f in found] == ["targets-0-dose_gy"]
    assert "16–21" in found[0].message
    # warnings never refuse a save: validate reports errors only
    assert instruments.validate(definition, {"targets": [{"dose_gy": 24, "fractions": 1}]}) == {}


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        ({"name": "dose_per_fraction_in_range", "max_gy": "24"}, "is a number"),
        ({"name": "dose_per_fraction_in_range", "max_gy": True}, "is a number"),
        ({"name": "dose_per_fraction_in_range", "rows": "nope"}, "not an item"),
        ({"name": "dose_per_fraction_in_range", "colour": 1}, "no parameter"),
    ],
)
def test_a_broken_check_option_is_refused_on_load(check, problem):
    with pytest.raises(ValueError, match=problem):
        instruments.instrument_from_data(_form([check]))
