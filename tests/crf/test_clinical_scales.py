"""SINS and length of stay (SPEC.md §4.7, §3.7): table tests from the spec's own table,
Hypothesis properties, and the length-of-stay cases. No database."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crf import clinical_scales
from crf.clinical_scales import length_of_stay, sins_class, sins_total

# SPEC.md §4.7, transcribed here independently of crf.clinical_scales (same codes as the
# form definitions use): component -> [(code, points)].
SPEC_SINS = {
    "location": [("junctional", 3), ("mobile", 2), ("semi_rigid", 1), ("rigid", 0)],
    "pain": [("mechanical", 3), ("occasional", 1), ("none", 0)],
    "lesion": [("lytic", 2), ("mixed", 1), ("blastic", 0)],
    "alignment": [("subluxation", 4), ("deformity", 2), ("normal", 0)],
    "collapse": [("over_50", 3), ("under_50", 2), ("none_over_50_involved", 1), ("none", 0)],
    "posterolateral": [("bilateral", 3), ("unilateral", 1), ("none", 0)],
}
COMPONENTS = list(SPEC_SINS)


def spec_class(total: int) -> str:
    """0–6 stable, 7–12 potentially unstable, 13–18 unstable (SPEC.md §4.7)."""
    if 0 <= total <= 6:
        return "stable"
    if 7 <= total <= 12:
        return "potentially_unstable"
    if 13 <= total <= 18:
        return "unstable"
    raise AssertionError(total)


ALL_COMBINATIONS = list(itertools.product(*SPEC_SINS.values()))


def test_every_component_combination_gives_the_specs_total_and_class():
    """All 4*3*3*3*4*3 = 1,296 combinations: the total is the sum of the spec's points and
    the class follows the spec's bands."""
    assert len(ALL_COMBINATIONS) == 1296
    seen_totals = set()
    for combination in ALL_COMBINATIONS:
        kwargs = {name: code for name, (code, _points) in zip(COMPONENTS, combination, strict=True)}
        expected = sum(points for _code, points in combination)
        total = sins_total(**kwargs)
        assert total == expected, kwargs
        assert sins_class(total=total) == spec_class(expected), kwargs
        seen_totals.add(total)
    assert seen_totals == set(range(19))  # every total 0..18 is reachable


@pytest.mark.parametrize(
    ("kwargs", "total", "klass"),
    [
        # the corners and the band edges, written out by hand
        (
            dict.fromkeys(COMPONENTS, "none")
            | {"location": "rigid", "lesion": "blastic", "alignment": "normal"},
            0,
            "stable",
        ),
        (
            {
                "location": "junctional",
                "pain": "mechanical",
                "lesion": "lytic",
                "alignment": "subluxation",
                "collapse": "over_50",
                "posterolateral": "bilateral",
            },
            18,
            "unstable",
        ),
        (
            {
                "location": "mobile",
                "pain": "occasional",
                "lesion": "mixed",
                "alignment": "deformity",
                "collapse": "none",
                "posterolateral": "none",
            },
            6,
            "stable",
        ),
        (
            {
                "location": "mobile",
                "pain": "occasional",
                "lesion": "mixed",
                "alignment": "deformity",
                "collapse": "none_over_50_involved",
                "posterolateral": "none",
            },
            7,
            "potentially_unstable",
        ),
        (
            {
                "location": "junctional",
                "pain": "mechanical",
                "lesion": "lytic",
                "alignment": "normal",
                "collapse": "over_50",
                "posterolateral": "unilateral",
            },
            12,
            "potentially_unstable",
        ),
        (
            {
                "location": "junctional",
                "pain": "mechanical",
                "lesion": "lytic",
                "alignment": "deformity",
                "collapse": "over_50",
                "posterolateral": "none",
            },
            13,
            "unstable",
        ),
    ],
)
def test_band_edges(kwargs, total, klass):
    assert sins_total(**kwargs) == total
    assert sins_class(total=total) == klass


@pytest.mark.parametrize("missing", COMPONENTS)
def test_a_missing_component_leaves_the_total_unknown(missing):
    kwargs = {name: SPEC_SINS[name][0][0] for name in COMPONENTS} | {missing: None}
    assert sins_total(**kwargs) is None
    assert sins_class(total=None) is None


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("bad", ["Junctional", "3", "", "unknown"])
def test_an_unknown_code_is_refused_even_with_another_missing(component, bad):
    kwargs = {name: SPEC_SINS[name][0][0] for name in COMPONENTS} | {component: bad}
    with pytest.raises(ValueError, match=component):
        sins_total(**kwargs)
    other = next(name for name in COMPONENTS if name != component)
    with pytest.raises(ValueError):
        sins_total(**(kwargs | {other: None}))


@pytest.mark.parametrize("bad", [-1, 19, 100, True, 7.0, "7"])
def test_a_total_outside_the_scale_has_no_class(bad):
    with pytest.raises(ValueError):
        sins_class(total=bad)


def test_the_module_table_is_the_specs_table():
    """The point table is data; it holds exactly the spec's codes and points."""
    assert {k: dict(v) for k, v in clinical_scales.SINS_POINTS.items()} == {
        k: dict(v) for k, v in SPEC_SINS.items()
    }
    assert clinical_scales.SINS_MAX == 18


# --- properties ---------------------------------------------------------------------------
combination = st.fixed_dictionaries(
    {name: st.sampled_from([code for code, _ in choices]) for name, choices in SPEC_SINS.items()}
)


@given(combination)
def test_total_lies_in_0_to_18_and_has_a_class(kwargs):
    total = sins_total(**kwargs)
    assert 0 <= total <= 18
    assert sins_class(total=total) in {"stable", "potentially_unstable", "unstable"}


@given(combination, st.sampled_from(COMPONENTS), st.data())
def test_total_is_monotonic_in_each_component(kwargs, component, data):
    """Choosing a component value worth more points never lowers the total (and raises it
    by exactly the difference); the class never moves towards stable."""
    choices = SPEC_SINS[component]
    low, high = sorted(
        data.draw(st.lists(st.sampled_from(choices), min_size=2, max_size=2)),
        key=lambda c: c[1],
    )
    lower = sins_total(**(kwargs | {component: low[0]}))
    higher = sins_total(**(kwargs | {component: high[0]}))
    assert higher - lower == high[1] - low[1] >= 0
    order = ["stable", "potentially_unstable", "unstable"]
    assert order.index(sins_class(total=higher)) >= order.index(sins_class(total=lower))


@given(st.integers(min_value=0, max_value=17))
def test_class_is_monotonic_in_the_total(total):
    order = ["stable", "potentially_unstable", "unstable"]
    assert order.index(sins_class(total=total + 1)) >= order.index(sins_class(total=total))


# --- length of stay -----------------------------------------------------------------------
AMS = ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize(
    ("admitted", "discharged", "days"),
    [
        (date(2026, 5, 4), date(2026, 5, 4), 0),  # same day
        (date(2026, 5, 4), date(2026, 5, 5), 1),  # next day
        (date(2026, 3, 28), date(2026, 3, 30), 2),  # over the spring-forward night (29 March)
        (date(2026, 10, 24), date(2026, 10, 26), 2),  # over the autumn fall-back (25 Oct)
        (date(2025, 12, 31), date(2026, 1, 14), 14),
        (date(2028, 2, 28), date(2028, 3, 1), 2),  # leap day
    ],
)
def test_length_of_stay_counts_calendar_days(admitted, discharged, days):
    assert length_of_stay(admitted_on=admitted, discharged_on=discharged) == days


def test_length_of_stay_over_a_dst_change_from_moments():
    """Moments count as their Amsterdam calendar day: admitted 23:30 on 28 March, discharged
    00:30 on 30 March (summer time began in between, the real gap is 24 h) is 2 days."""
    admitted = datetime(2026, 3, 28, 23, 30, tzinfo=AMS)
    discharged = datetime(2026, 3, 30, 0, 30, tzinfo=AMS)
    assert discharged.astimezone(UTC) - admitted.astimezone(UTC) == timedelta(hours=24)
    assert length_of_stay(admitted_on=admitted, discharged_on=discharged) == 2
    # the same moments in UTC give the same answer (the day is the local one)
    assert (
        length_of_stay(
            admitted_on=admitted.astimezone(UTC), discharged_on=discharged.astimezone(UTC)
        )
        == 2
    )


@pytest.mark.parametrize(
    ("admitted", "discharged"),
    [
        (None, date(2026, 5, 4)),
        (date(2026, 5, 4), None),
        (None, None),
        (date(2026, 5, 4), date(2026, 5, 3)),  # discharge before admission
    ],
)
def test_length_of_stay_unknown(admitted, discharged):
    assert length_of_stay(admitted_on=admitted, discharged_on=discharged) is None


@given(st.dates(), st.integers(min_value=-400, max_value=400))
def test_length_of_stay_property(admitted, offset):
    try:
        discharged = admitted + timedelta(days=offset)
    except OverflowError:
        return
    expected = offset if offset >= 0 else None
    assert length_of_stay(admitted_on=admitted, discharged_on=discharged) == expected
