"""The eligibility verdict: a pure function, table tests and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from randomization.eligibility import CriterionSpec, verdict

CRITERIA = [
    CriterionSpec("spinal_mets", "inclusion"),
    CriterionSpec("fit", "inclusion"),
    CriterionSpec("myeloma", "exclusion"),
]
ALL_GOOD = {"spinal_mets": "yes", "fit": "yes", "myeloma": "no"}


@pytest.mark.parametrize(
    "answers,consent,eligible,reasons",
    [
        (ALL_GOOD, [], True, []),
        ({**ALL_GOOD, "fit": "no"}, [], False, ["inclusion_not_met:fit"]),
        ({**ALL_GOOD, "fit": "unknown"}, [], False, ["inclusion_unknown:fit"]),
        ({**ALL_GOOD, "myeloma": "yes"}, [], False, ["exclusion_met:myeloma"]),
        ({**ALL_GOOD, "myeloma": "unknown"}, [], False, ["exclusion_unknown:myeloma"]),
        ({"spinal_mets": "yes", "fit": "yes"}, [], False, ["unanswered:myeloma"]),
        (
            ALL_GOOD,
            ["consent_control_uninformed_missing"],
            False,
            ["consent_control_uninformed_missing"],
        ),
        (ALL_GOOD, ["withdrawn_trial", "deceased"], False, ["withdrawn_trial", "deceased"]),
        (
            {"spinal_mets": "no", "fit": "unknown", "myeloma": "yes"},
            ["deceased"],
            False,
            [
                "inclusion_not_met:spinal_mets",
                "inclusion_unknown:fit",
                "exclusion_met:myeloma",
                "deceased",
            ],
        ),
        # Answers to criteria of another protocol version are ignored.
        ({**ALL_GOOD, "old_code": "no"}, [], True, []),
    ],
)
def test_verdict_table(answers, consent, eligible, reasons):
    result = verdict(CRITERIA, answers, consent)
    assert result.eligible is eligible
    assert bool(result) is eligible
    assert result.reasons == reasons


def test_unknown_answer_value_and_kind_are_errors():
    with pytest.raises(ValueError):
        verdict(CRITERIA, {**ALL_GOOD, "fit": "maybe"})
    with pytest.raises(ValueError):
        verdict([CriterionSpec("x", "other")], {"x": "yes"})


answers_st = st.sampled_from(["yes", "no", "unknown", None])
kinds_st = st.sampled_from(["inclusion", "exclusion"])


@given(
    rows=st.lists(st.tuples(kinds_st, answers_st), min_size=0, max_size=15),
    consent=st.lists(st.sampled_from(["withdrawn_trial", "deceased", "consent_cohort_missing"])),
)
@settings(max_examples=300)
def test_eligible_exactly_when_all_inclusions_yes_exclusions_no_and_consent(rows, consent):
    criteria = [CriterionSpec(f"c{i}", kind) for i, (kind, _a) in enumerate(rows)]
    answers = {f"c{i}": a for i, (_k, a) in enumerate(rows) if a is not None}
    result = verdict(criteria, answers, consent)
    expected = not consent and all(
        (a == "yes") if kind == "inclusion" else (a == "no") for kind, a in rows
    )
    assert result.eligible is expected
    # Every failing criterion is named once, plus every consent reason.
    failing = [
        i
        for i, (kind, a) in enumerate(rows)
        if not ((a == "yes") if kind == "inclusion" else (a == "no"))
    ]
    assert len(result.reasons) == len(failing) + len(consent)
    for i in failing:
        assert any(r.endswith(f":c{i}") for r in result.reasons)
