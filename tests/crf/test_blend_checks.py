"""Each BLEND edit check as the shipped definitions declare it (issue 12), through the save
service: a record that fails the check opens exactly one automatic query on the item, on
the audit trail; the fix closes it with a "resolved" step. Impossible data (discharge
before admission, an end before its start) is not queried but refused: see test_records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crf import instruments, selectors, services
from crf.models import DataQuery, QueryMessage
from tests.conftest import events

pytestmark = pytest.mark.django_db


def _day(offset: int) -> str:
    return (timezone.localdate() + timedelta(days=offset)).isoformat()


def _before_consent(allocation) -> str:
    consented = selectors.record_context(allocation=allocation)["consented_on"]
    assert consented is not None
    return (consented - timedelta(days=1)).isoformat()


# (check, arm, earlier records [(form, data)], form, occurrence, failing data, fix, item)
CASES = [
    (
        "surgery_within_hours_of_sbrt",
        "intervention",
        [("sbrt_delivery", {"started_at": f"{_day(-3)}T08:00"})],
        "surgery",
        None,
        {"started_at": f"{_day(-1)}T09:00"},
        {"started_at": f"{_day(-3)}T14:00"},
        "started_at",
    ),
    (
        "not_within_days_after_surgery",
        "control",
        [("surgery", {"started_at": f"{_day(-10)}T09:00"})],
        "rt_after_surgery",
        None,
        {"started_on": _day(-7)},
        {"started_on": _day(-2)},
        "started_on",
    ),
    (
        "fatal_grade_needs_a_death",
        "control",
        [],
        "adverse_event",
        None,
        {"grade": 5},
        {"grade": 4},
        "grade",
    ),
    (
        "onset_within_study",
        "control",
        [],
        "adverse_event",
        None,
        {"onset_on": _before_consent},
        {"onset_on": _day(-1)},
        "onset_on",
    ),
    (
        "dose_per_fraction_in_range",
        "intervention",
        [],
        "sbrt_delivery",
        None,
        {"targets": [{"dose_gy": 30, "fractions": 1}]},
        {"targets": [{"dose_gy": 18, "fractions": 1}]},
        "targets-0-dose_gy",
    ),
    (
        "asia_not_worse_than_baseline",
        "control",
        [("baseline_clinical", {"asia": "D"})],
        "followup_clinical",
        "week4",
        {"asia": "C"},
        {"asia": "D"},
        "asia",
    ),
    (
        "dates_within_life",
        "control",
        [],
        "admission",
        None,
        {"admitted_on": "1950-06-01"},  # the participant was born in 1960
        {"admitted_on": _day(-2)},
        "admitted_on",
    ),
    (
        "death_matches_cohort",
        "control",
        [],
        "end_of_study",
        None,
        {"reason": "died"},  # no death recorded in the cohort
        {"reason": "completed"},
        "reason",
    ),
]


def test_every_context_check_is_declared_by_a_shipped_form_and_tested_here():
    declared = {
        name
        for code in instruments.all_codes(kind="clinical")
        for name, _params in instruments.load(code).checks
    }
    context_checks = {case[0] for case in CASES}
    assert context_checks <= declared
    refusing = {"end_not_before_start", "discharge_not_before_admission"}
    assert declared == context_checks | refusing


@pytest.mark.parametrize(
    ("check", "arm", "earlier", "form", "occurrence", "failing", "fix", "item"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_a_failing_record_opens_one_query_and_the_fix_closes_it(
    active_sequence,
    randomised,
    site_a,
    nurse_a,
    check,
    arm,
    earlier,
    form,
    occurrence,
    failing,
    fix,
    item,
):
    active_sequence()
    allocation = randomised(site_a, nurse_a, arm=arm)
    for code, data in earlier:
        services.clinical_record_create(
            user=nurse_a, allocation=allocation, form_code=code, data=data
        )
    failing = {k: v(allocation) if callable(v) else v for k, v in failing.items()}
    record = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code=form, data=failing, occurrence=occurrence
    )
    queries = DataQuery.objects.filter(record__participant=allocation.participant)
    (query,) = queries
    assert (query.origin, query.check_name, query.item, query.status) == (
        "check",
        check,
        item,
        "open",
    )
    assert query.record_id == record.pk and query.text
    assert events(DataQuery, pgh_obj_id=query.pk).count() == 1
    services.clinical_record_update(user=nurse_a, record=record, revision=record.revision, data=fix)
    query.refresh_from_db()
    assert query.status == "closed" and queries.count() == 1
    assert list(QueryMessage.objects.filter(query=query).values_list("action", flat=True)) == [
        "raise",
        "resolved",
    ]
    assert events(DataQuery, pgh_obj_id=query.pk).count() == 2
