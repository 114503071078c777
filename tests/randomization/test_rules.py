"""The pure checks behind randomising (randomization.rules): table tests, no database."""

from __future__ import annotations

import pytest

from randomization import rules


@pytest.mark.parametrize(
    "screened,version,eligible,reasons,expected",
    [
        (False, None, False, [], ["not_screened"]),
        (True, "0.9", True, [], ["screening_outdated_protocol"]),
        (True, "0.9", False, ["exclusion_met:x"], ["screening_outdated_protocol"]),
        (True, "1.0", False, ["exclusion_met:x"], ["not_eligible", "exclusion_met:x"]),
        (True, "1.0", True, [], []),
    ],
)
def test_screening_reasons(screened, version, eligible, reasons, expected):
    assert (
        rules.screening_reasons(
            screened=screened,
            protocol_version=version,
            current_protocol="1.0",
            eligible=eligible,
            reasons=reasons,
        )
        == expected
    )


def test_readiness_reasons_name_the_trial_first_and_each_consent_reason_once():
    assert rules.readiness_reasons(
        "trial_closed",
        ["not_eligible", "consent_cohort_missing"],
        ["consent_cohort_missing", "deceased"],
    ) == ["trial_closed", "not_eligible", "consent_cohort_missing", "deceased"]
    assert rules.readiness_reasons(None, [], []) == []


def test_minimisation_counts_are_the_margins_of_the_grouped_rows():
    rows = [
        {"arm": "intervention", "site": "a", "sex": "female", "n": 3},
        {"arm": "intervention", "site": "b", "sex": "female", "n": 1},
        {"arm": "control", "site": "a", "sex": "male", "n": 2},
        {"arm": "control", "site": "a", "sex": "female", "n": 4},
    ]
    assert rules.minimisation_counts(rows, ["site", "sex"], arm="arm", count="n") == {
        "site": {"a": {"intervention": 3, "control": 6}, "b": {"intervention": 1}},
        "sex": {"female": {"intervention": 4, "control": 4}, "male": {"control": 2}},
    }
    assert rules.minimisation_counts([], ["site"], arm="arm", count="n") == {"site": {}}


@pytest.mark.parametrize("n,expected", [(1, "BLEND-001"), (42, "BLEND-042"), (1000, "BLEND-1000")])
def test_trial_number(n, expected):
    assert rules.trial_number("BLEND", n) == expected
