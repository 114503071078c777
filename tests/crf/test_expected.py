"""Which clinical forms are expected (crf.expected, EXAMPLES.md §2, SPEC.md §3.7): per arm,
per follow-up timepoint (the questionnaire timepoints' windows), for a refuser, when day 0
moves, after death, overdue after the window, and records' statuses kept."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crf import expected
from crf.expected import DayWindow, TimepointWindow, expected_forms, timepoint_windows

DAY0 = date(2026, 3, 2)
SURGERY = date(2026, 3, 3)
D = timedelta


def run(**kwargs):
    args = {
        "arm": "intervention",
        "refused": False,
        "day0": DAY0,
        "surgery_on": SURGERY,
        "died_on": None,
        "today": DAY0,
        "records": [],
    } | kwargs
    return expected_forms(**args)


def by_key(result):
    return {(e.form_code, e.occurrence): e for e in result}


def status(result, form, occurrence="1"):
    return by_key(result)[(form, occurrence)].status


TREATMENT = ("sbrt_delivery", "rt_after_surgery")


# --- per arm -------------------------------------------------------------------------------
def test_intervention_arm_gets_sbrt_delivery_and_not_rt_after_surgery():
    result = run(arm="intervention")
    assert status(result, "sbrt_delivery") == "not_started"
    assert status(result, "rt_after_surgery") == "not_applicable"
    assert status(result, "sbrt_delivery", None) == "not_started"  # "add another course"
    assert status(result, "rt_after_surgery", None) == "not_applicable"


def test_control_arm_gets_rt_after_surgery_and_not_sbrt_delivery():
    result = run(arm="control", day0=SURGERY)
    assert status(result, "sbrt_delivery") == "not_applicable"
    rt = by_key(result)[("rt_after_surgery", "1")]
    assert rt.status == "not_started" and rt.required
    assert rt.window == DayWindow(SURGERY + D(7), SURGERY + D(42))  # anchored on surgery


@pytest.mark.parametrize("arm", ["intervention", "control"])
def test_both_arms_get_the_common_forms(arm):
    result = by_key(run(arm=arm))
    for form in ("baseline_clinical", "surgery", "admission", "end_of_study"):
        assert result[(form, "1")].status == "not_started", form
        assert result[(form, "1")].required
    for tp in ("week4", "week12", "month6"):
        assert result[("followup_clinical", tp)].status == "not_started"
    for log in ("adverse_event", "systemic_therapy", "deviation"):
        slot = result[(log, None)]
        assert slot.status == "not_started" and not slot.required and slot.occurs == "log"
        assert slot.window == DayWindow(None, None)  # any time


def test_every_form_code_appears_once_in_rule_order():
    result = run(records=[("adverse_event", 1, "complete"), ("adverse_event", 2, "draft")])
    codes = [e.form_code for e in result]
    assert list(dict.fromkeys(codes)) == list(expected.FORM_CODES)
    assert set(expected.FORM_CODES) == {
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
    }


def test_windows_of_the_rules():
    result = by_key(run())
    assert result[("baseline_clinical", "1")].window == DayWindow(DAY0 - D(14), DAY0)
    assert result[("sbrt_delivery", "1")].window == DayWindow(DAY0 - D(1), DAY0 + D(1))
    assert result[("surgery", "1")].window == DayWindow(DAY0 - D(1), DAY0 + D(14))
    assert result[("admission", "1")].window == DayWindow(SURGERY - D(1), SURGERY + D(1))
    assert result[("end_of_study", "1")].window == DayWindow(None, None)


# --- refuser -------------------------------------------------------------------------------
def test_a_refuser_gets_the_control_arms_treatment_forms_as_well():
    """ITT arm kept: the intervention forms stay expected (to be completed or marked not
    done), and radiotherapy after surgery is expected too."""
    day0 = date(2026, 3, 9)  # the first standard-of-care treatment (surgery)
    result = run(arm="intervention", refused=True, day0=day0, surgery_on=day0)
    assert status(result, "sbrt_delivery") == "not_started"
    rt = by_key(result)[("rt_after_surgery", "1")]
    assert rt.status == "not_started" and rt.window == DayWindow(day0 + D(7), day0 + D(42))
    assert status(result, "rt_after_surgery", None) == "not_started"
    # the accepter does not get it
    assert status(run(arm="intervention", refused=False), "rt_after_surgery") == "not_applicable"


def test_a_control_participant_cannot_be_a_refuser():
    with pytest.raises(ValueError, match="intervention"):
        run(arm="control", refused=True)


# --- per timepoint -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tp", "first", "last"),
    [("week4", 28 - 7, 28 + 7), ("week12", 84 - 7, 84 + 14), ("month6", 182 - 14, 182 + 28)],
)
def test_followup_clinical_at_each_timepoint_with_its_window(tp, first, last):
    window = by_key(run())[("followup_clinical", tp)].window
    assert window == DayWindow(DAY0 + D(first), DAY0 + D(last))
    # open on its first day, not yet overdue on its last, overdue the day after
    assert status(run(today=DAY0 + D(last)), "followup_clinical", tp) == "not_started"
    assert status(run(today=DAY0 + D(last + 1)), "followup_clinical", tp) == "overdue"
    # the other timepoints are unaffected by this one's record
    done = run(records=[("followup_clinical", tp, "complete")], today=DAY0 + D(400))
    assert status(done, "followup_clinical", tp) == "complete"
    others = [t for t in ("week4", "week12", "month6") if t != tp]
    assert all(status(done, "followup_clinical", t) == "overdue" for t in others)


def test_a_window_over_a_summer_time_change_keeps_calendar_days():
    """Week 4 of a day 0 on 1 March 2026 spans the 29 March change to summer time."""
    day0 = date(2026, 3, 1)
    window = by_key(run(day0=day0))[("followup_clinical", "week4")].window
    assert window == DayWindow(date(2026, 3, 22), date(2026, 4, 5))


@pytest.mark.django_db
def test_the_default_timepoints_are_the_migrated_questionnaire_schedule(blend):
    """The follow-up form reuses the questionnaire timepoints: the defaults equal BLEND's
    Timepoint rows, and windows from those rows equal the questionnaires' windows."""
    from crf.models import Timepoint
    from crf.windows import window_for

    rows = Timepoint.objects.filter(trial=blend, code__in=["week4", "week12", "month6"])
    from_rows = timepoint_windows(rows)
    assert from_rows == dict(expected.DEFAULT_TIMEPOINTS)
    result = by_key(run(timepoints=from_rows))
    for row in rows:
        w = window_for(
            day0=DAY0, day_offset=row.day_offset, before=row.window_before, after=row.window_after
        )
        from django.utils import timezone

        first = timezone.localtime(w.opens_at).date()
        last = timezone.localtime(w.closes_at - timedelta(microseconds=1)).date()
        assert result[("followup_clinical", row.code)].window == DayWindow(first, last)


def test_changed_timepoints_change_the_windows():
    timepoints = dict(expected.DEFAULT_TIMEPOINTS) | {"week4": TimepointWindow(30, 2, 3)}
    window = by_key(run(timepoints=timepoints))[("followup_clinical", "week4")].window
    assert window == DayWindow(DAY0 + D(28), DAY0 + D(33))
    with pytest.raises(ValueError, match="week12"):
        run(timepoints={"week4": TimepointWindow(28, 7, 7)})


# --- day 0 moves -----------------------------------------------------------------------------
def test_when_day_0_moves_the_windows_move():
    today = DAY0 + D(36)  # week 4 closed for the planned day 0
    planned = by_key(run(today=today))
    actual_day0 = DAY0 + D(10)
    actual = by_key(run(day0=actual_day0, surgery_on=actual_day0 + D(1), today=today))
    assert planned[("followup_clinical", "week4")].status == "overdue"
    assert actual[("followup_clinical", "week4")].status == "not_started"
    for key, entry in planned.items():
        moved = actual[key].window
        if entry.window.start is not None:
            assert moved.start == entry.window.start + D(10), key
            assert moved.end == entry.window.end + D(10), key


def test_without_day_0_nothing_anchored_on_it_is_overdue():
    result = run(day0=None, surgery_on=None, today=DAY0 + D(1000))
    for entry in result:
        assert entry.status in ("not_started", "not_applicable"), entry
    week4 = by_key(result)[("followup_clinical", "week4")]
    assert week4.window == DayWindow(None, None)


def test_rt_after_surgery_waits_for_the_surgery_date():
    result = run(arm="control", surgery_on=None, today=DAY0 + D(400))
    rt = by_key(result)[("rt_after_surgery", "1")]
    assert rt.status == "not_started" and rt.window == DayWindow(None, None)
    assert status(result, "baseline_clinical") == "overdue"  # day 0 is known


# --- after death -----------------------------------------------------------------------------
def test_after_death_only_adverse_events_and_end_of_study_are_expected():
    died = DAY0 + D(40)  # after week 4's window (closed day 35), before week 12's
    result = run(
        died_on=died,
        today=died + D(100),
        records=[
            ("baseline_clinical", 1, "complete"),
            ("sbrt_delivery", 1, "complete"),
            ("surgery", 1, "complete"),
            ("admission", 1, "complete"),
            ("systemic_therapy", 1, "complete"),
        ],
    )
    got = by_key(result)
    # missed while alive: still overdue
    assert got[("followup_clinical", "week4")].status == "overdue"
    # windows not closed before the death: no longer expected
    assert got[("followup_clinical", "week12")].status == "not_applicable"
    assert got[("followup_clinical", "month6")].status == "not_applicable"
    # no new log entries except adverse events; existing entries still show
    assert got[("systemic_therapy", None)].status == "not_applicable"
    assert got[("deviation", None)].status == "not_applicable"
    assert got[("systemic_therapy", "1")].status == "complete"
    assert got[("adverse_event", None)].status == "not_started"
    assert got[("end_of_study", "1")].status == "not_started"
    assert got[("sbrt_delivery", None)].status == "not_applicable"  # no further course
    assert got[("baseline_clinical", "1")].status == "complete"


def test_death_inside_a_window_ends_that_form_but_keeps_its_record():
    died = DAY0 + D(25)  # inside week 4's window (days 21..35)
    result = run(died_on=died, today=died + D(60))
    assert status(result, "followup_clinical", "week4") == "not_applicable"
    kept = run(died_on=died, today=died + D(60), records=[("followup_clinical", "week4", "draft")])
    assert status(kept, "followup_clinical", "week4") == "draft"


def test_death_before_treatment():
    died = date(2026, 2, 20)
    result = run(day0=None, surgery_on=None, died_on=died, today=date(2026, 6, 1))
    got = by_key(result)
    for key, entry in got.items():
        if key[0] in ("adverse_event", "end_of_study"):
            assert entry.status == "not_started", key
        else:
            assert entry.status == "not_applicable", key


# --- statuses from records -------------------------------------------------------------------
def test_overdue_only_after_the_window_and_only_without_a_record():
    last = DAY0  # baseline's last day
    assert status(run(today=last), "baseline_clinical") == "not_started"
    assert status(run(today=last + D(1)), "baseline_clinical") == "overdue"
    late = last + D(1)
    records = [("baseline_clinical", "1", "draft")]
    assert status(run(today=late, records=records), "baseline_clinical") == "draft"


def test_not_done_is_kept_after_the_window():
    result = run(
        today=DAY0 + D(400),
        records=[("followup_clinical", "week12", "not_done"), ("surgery", "1", "not_done")],
    )
    assert status(result, "followup_clinical", "week12") == "not_done"
    assert status(result, "surgery") == "not_done"
    assert status(result, "followup_clinical", "week4") == "overdue"


def test_complete_and_not_applicable_records_show_as_recorded():
    """A record shows with its status even where the form is not expected (an SBRT record
    of a control participant is data, never hidden)."""
    result = run(arm="control", records=[("sbrt_delivery", 1, "complete")])
    assert status(result, "sbrt_delivery") == "complete"


def test_a_voided_record_counts_as_none():
    result = run(today=DAY0 + D(30), records=[("sbrt_delivery", "1", "voided")])
    assert status(result, "sbrt_delivery") == "overdue"
    logs = run(records=[("adverse_event", 1, "voided"), ("adverse_event", 2, "complete")])
    got = by_key(logs)
    assert ("adverse_event", "1") not in got and got[("adverse_event", "2")].status == "complete"


def test_events_and_logs_list_every_record_in_order_and_an_optional_add_slot():
    result = run(
        records=[
            ("sbrt_delivery", 2, "draft"),
            ("sbrt_delivery", 1, "complete"),
            ("adverse_event", 10, "draft"),
            ("adverse_event", 2, "complete"),
        ]
    )
    sbrt = [(e.occurrence, e.status, e.required) for e in result if e.form_code == "sbrt_delivery"]
    assert sbrt == [("1", "complete", True), ("2", "draft", False), (None, "not_started", False)]
    ae = [(e.occurrence, e.status) for e in result if e.form_code == "adverse_event"]
    assert ae == [("2", "complete"), ("10", "draft"), (None, "not_started")]


def test_an_optional_slot_is_never_overdue():
    result = run(today=DAY0 + D(1000))
    for entry in result:
        if not entry.required:
            assert entry.status in ("not_started", "not_applicable"), entry


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arm": "placebo"}, "unknown arm"),
        ({"records": [("lab", "1", "complete")]}, "unknown clinical form"),
        ({"records": [("surgery", "1", "signed")]}, "unknown record status"),
        ({"records": [("followup_clinical", "week2", "draft")]}, "no timepoint"),
        ({"records": [("baseline_clinical", "2", "draft")]}, "occurs once"),
        ({"records": [("adverse_event", "0", "draft")]}, "occurrences are 1, 2"),
        (
            {"records": [("surgery", "1", "draft"), ("surgery", 1, "complete")]},
            "two records",
        ),
    ],
)
def test_malformed_input_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run(**kwargs)


# --- properties ------------------------------------------------------------------------------
arms = st.sampled_from([("intervention", False), ("intervention", True), ("control", False)])
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))


@given(arms, days, st.integers(-30, 30), st.integers(-60, 800), st.integers(-400, 400))
def test_shifting_every_date_shifts_every_window_and_keeps_every_status(
    arm_refused, day0, surgery_gap, today_gap, shift
):
    """Statuses depend on dates only through their differences: moving day 0, surgery and
    today by the same number of days moves each window by it and changes no status."""
    arm, refused = arm_refused
    base = run(
        arm=arm,
        refused=refused,
        day0=day0,
        surgery_on=day0 + D(surgery_gap),
        today=day0 + D(today_gap),
    )
    moved = run(
        arm=arm,
        refused=refused,
        day0=day0 + D(shift),
        surgery_on=day0 + D(surgery_gap + shift),
        today=day0 + D(today_gap + shift),
    )
    assert [(e.form_code, e.occurrence, e.status) for e in base] == [
        (e.form_code, e.occurrence, e.status) for e in moved
    ]
    for a, b in zip(base, moved, strict=True):
        assert a.status in expected.STATUSES
        if a.window.start is not None:
            assert b.window.start - a.window.start == D(shift)
            assert b.window.end - a.window.end == D(shift)
            assert a.window.start <= a.window.end


@given(arms, days, st.integers(0, 800))
def test_an_entry_is_overdue_exactly_when_required_unrecorded_and_past_its_window(
    arm_refused, day0, today_gap
):
    arm, refused = arm_refused
    today = day0 + D(today_gap)
    for e in run(arm=arm, refused=refused, day0=day0, surgery_on=day0, today=today):
        past = e.window.end is not None and today > e.window.end
        if e.status != "not_applicable":
            assert (e.status == "overdue") == (e.required and past), e


def test_every_expected_form_has_a_definition_and_every_definition_a_rule():
    """The expectation rules and the form definitions name the same ten forms."""
    from crf import instruments

    assert set(expected.FORM_CODES) == set(instruments.all_codes(kind="clinical"))
