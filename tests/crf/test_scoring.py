"""Scoring (crf.scoring) against SPEC.md §4: every published check value as a table test,
plus Hypothesis properties (ranges, monotonicity, missing-item rules, determinism).

Pure functions: no database needed.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from crf import analgesics, scoring
from crf.scoring import (
    ScoringError,
    bm22_scores,
    bpi_scores,
    c15pal_scores,
    eq5d5l_index,
    omed,
    pain_response,
    qlq_linear,
    score,
)

FOUR = (1, 2, 3, 4)


def r1(value: float | None) -> float | None:
    """Round half away from zero to one decimal, as SPEC.md prints its values."""
    if value is None:
        return None
    return math.floor(abs(value) * 10 + 0.5) / 10 * (1 if value >= 0 else -1)


def c15(**items: int | None) -> dict[str, int | None]:
    """A complete 'best health' C15-PAL answer set with ``items`` overridden."""
    answers: dict[str, int | None] = {f"q{i}": 1 for i in range(1, 15)} | {"q15": 7}
    answers.update(items)
    return answers


# --------------------------------------------------------------------------- §4.6 EQ-5D-5L


@pytest.mark.parametrize(
    ("state", "expected"),
    [("11111", 1.0), ("21111", 0.918), ("12345", 0.047), ("55555", -0.446)],
)
def test_eq5d5l_spec_check_values(state, expected):
    """SPEC.md §4.6 checks: 11111 → 1, 21111 → 0.918, 12345 → 0.047, 55555 → −0.446."""
    assert eq5d5l_index(state) == pytest.approx(expected, abs=1e-12)
    assert eq5d5l_index(tuple(int(c) for c in state)) == pytest.approx(expected, abs=1e-12)


# The SPEC table, typed in again here so the data file is checked against it.
SPEC_DECREMENTS = {
    "MO": (0.035, 0.057, 0.166, 0.203),
    "SC": (0.038, 0.061, 0.168, 0.168),
    "UA": (0.039, 0.087, 0.192, 0.192),
    "PD": (0.066, 0.092, 0.360, 0.415),
    "AD": (0.070, 0.145, 0.356, 0.421),
}


@pytest.mark.parametrize(
    ("dimension", "level"),
    [(d, level) for d in range(5) for level in (2, 3, 4, 5)],
)
def test_eq5d5l_every_tariff_cell(dimension, level):
    """Each single-dimension state is 1 − 0.047 − that cell of the SPEC table."""
    state = ["1"] * 5
    state[dimension] = str(level)
    decrement = SPEC_DECREMENTS[("MO", "SC", "UA", "PD", "AD")[dimension]][level - 2]
    assert eq5d5l_index("".join(state)) == pytest.approx(1 - 0.047 - decrement, abs=1e-12)


@pytest.mark.parametrize(
    "bad", ["1111", "111111", "01111", "61111", "1111a", (1, 2, 3, 4), (1, 2, 3, 4, 6)]
)
def test_eq5d5l_refuses_malformed_states(bad):
    with pytest.raises(ScoringError):
        eq5d5l_index(bad)


def test_eq5d5l_unknown_tariff_version_refused():
    with pytest.raises(ValueError, match="version"):
        eq5d5l_index("21111", tariff="XX-1999")


def test_eq5d5l_scores_from_answers():
    """The answers dict scores to the index (all five needed) and the VAS as given."""
    answers = {"mo": 2, "sc": 1, "ua": 1, "pd": 1, "ad": 1, "vas": 73}
    assert score("eq5d5l", answers) == {"index": pytest.approx(0.918), "vas": 73.0}
    assert score("eq5d5l", answers | {"ad": None}) == {"index": None, "vas": 73.0}
    assert score("eq5d5l", {"vas": 0}) == {"index": None, "vas": 0.0}


EQ_LEVEL = st.integers(1, 5)


@given(st.tuples(EQ_LEVEL, EQ_LEVEL, EQ_LEVEL, EQ_LEVEL, EQ_LEVEL))
def test_eq5d5l_index_range(state):
    """Every one of the 3,125 states lies within [−0.446, 1], and only 11111 reaches 1."""
    value = eq5d5l_index(state)
    assert -0.446 - 1e-12 <= value <= 1
    assert (value == 1) == (state == (1, 1, 1, 1, 1))


@given(st.tuples(EQ_LEVEL, EQ_LEVEL, EQ_LEVEL, EQ_LEVEL, EQ_LEVEL), st.integers(0, 4))
def test_eq5d5l_index_monotonic(state, dimension):
    """A worse level in any dimension never raises the index."""
    assume(state[dimension] < 5)
    worse = list(state)
    worse[dimension] += 1
    assert eq5d5l_index(tuple(worse)) <= eq5d5l_index(state) + 1e-12


def test_eq5d5l_extremes_exhaustive():
    """Exhaustively: the minimum over all states is 55555's −0.446."""
    values = [eq5d5l_index(s) for s in itertools.product(range(1, 6), repeat=5)]
    assert min(values) == pytest.approx(-0.446)
    assert max(values) == 1.0


# --------------------------------------------------------------------------- §4.1


@pytest.mark.parametrize(
    ("items", "kind", "range_", "expected"),
    [
        ([1, 1], "functional", 3, 100.0),
        ([4, 4], "functional", 3, 0.0),
        ([2, 3], "functional", 3, 50.0),  # RS 2.5 → (1 − 1.5/3) × 100
        ([2], "functional", 3, 100 * (1 - 1 / 3)),
        ([1], "symptom", 3, 0.0),
        ([2], "symptom", 3, 100 / 3),
        ([3, 4], "symptom", 3, 100 * 2.5 / 3),
        ([4], "symptom", 3, 100.0),
        ([1], "global", 6, 0.0),
        ([4], "global", 6, 50.0),
        ([7], "global", 6, 100.0),
        ([5, 6], "global", 6, 100 * 4.5 / 6),
    ],
)
def test_qlq_linear_formulas(items, kind, range_, expected):
    """SPEC.md §4.1: functional (1 − (RS − 1)/range) × 100, symptom and global (RS − 1)/range × 100."""
    assert qlq_linear(items, kind, range_) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([2, None], 100 / 3),  # 1 of 2 is half: scored on the answered item
        ([None, None], None),
        ([2, None, None], None),  # 1 of 3 is below half
        ([2, 3, None], 100 * 1.5 / 3),
        ([1, 2, None, None, None], None),  # 2 of 5
        ([1, 2, 3, None, None], 100 / 3),  # 3 of 5, RS 2
        ([1, 1, 1, 1, None, None, None, None], 0.0),  # 4 of 8
        ([1, 1, 1, None, None, None, None, None], None),  # 3 of 8
        ([None], None),
    ],
)
def test_qlq_linear_half_items_rule(items, expected):
    """A scale is scored when at least half its items are answered (mean of the answered)."""
    result = qlq_linear(items, "symptom", 3)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


@pytest.mark.parametrize("bad", [[0], [5], [True], ["2"], [2.5]])
def test_qlq_linear_refuses_out_of_range(bad):
    with pytest.raises(ScoringError):
        qlq_linear(bad, "symptom", 3)


def test_qlq_linear_refuses_bad_arguments():
    with pytest.raises(ValueError):
        qlq_linear([1], "symptom", 4)
    with pytest.raises(ValueError):
        qlq_linear([1], "other", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        qlq_linear([], "symptom", 3)
    assert qlq_linear([7], "global", 6) == 100.0
    with pytest.raises(ScoringError):
        qlq_linear([8], "global", 6)


# --------------------------------------------------------------------------- §4.2 C15-PAL

# SPEC.md §4.2 tables, as printed (one decimal).
PF2_BY_S = {0: 0.0, 1: 6.7, 2: 13.3, 3: 20.0, 4: 26.7, 5: 33.3, 6: 46.7, 7: 60.0, 8: 73.3, 9: 93.3}
PF2_EXACT = {s: (s if s <= 5 else {6: 7, 7: 9, 8: 11, 9: 14}[s]) * 100 / 15 for s in range(10)}
EF_BY_S = {0: 0.0, 1: 16.7, 2: 41.7, 3: 50.0, 4: 66.7, 5: 83.3, 6: 100.0}
FA_BY_S = {0: 0.0, 1: 22.2, 2: 33.3, 4: 66.7, 5: 88.9, 6: 100.0}
FA_S3 = {(3, 2): 44.4, (4, 1): 44.4, (1, 4): 55.6, (2, 3): 55.6}
NV_BY_ITEM = {1: 0.0, 2: 16.7, 3: 50.0, 4: 100.0}


@pytest.mark.parametrize("s", range(10))
def test_c15pal_pf2_every_sum(s):
    """PF2 for s = 0 … 9, for every answer triple with that sum (SPEC.md §4.2)."""
    triples = [t for t in itertools.product(FOUR, repeat=3) if 12 - sum(t) == s]
    assert triples
    for i1, i2, i3 in triples:
        value = c15pal_scores(c15(q1=i1, q2=i2, q3=i3))["PF2"]
        assert r1(value) == PF2_BY_S[s], (i1, i2, i3)
        assert value == pytest.approx(PF2_EXACT[s])


def test_c15pal_pf2_examples():
    assert c15pal_scores(c15(q1=1, q2=1, q3=1))["PF2"] == pytest.approx(14 * 100 / 15)
    assert r1(c15pal_scores(c15(q1=1, q2=1, q3=1))["PF2"]) == 93.3
    assert c15pal_scores(c15(q1=4, q2=4, q3=4))["PF2"] == 0.0
    assert c15pal_scores(c15(q1=2, q2=2, q3=2))["PF2"] == pytest.approx(7 * 100 / 15)  # s = 6


@pytest.mark.parametrize("s", range(7))
def test_c15pal_ef_every_sum(s):
    """EF for s = 8 − (i13 + i14) = 0 … 6, every pair (SPEC.md §4.2)."""
    pairs = [p for p in itertools.product(FOUR, repeat=2) if 8 - sum(p) == s]
    for i13, i14 in pairs:
        assert r1(c15pal_scores(c15(q13=i13, q14=i14))["EF"]) == EF_BY_S[s], (i13, i14)


@pytest.mark.parametrize(("i7", "i11"), list(itertools.product(FOUR, repeat=2)))
def test_c15pal_fa_every_pair(i7, i11):
    """FA for every (i7, i11), including both s = 3 cases (44.4 vs 55.6)."""
    s = i7 + i11 - 2
    expected = FA_S3[(i7, i11)] if s == 3 else FA_BY_S[s]
    assert r1(c15pal_scores(c15(q7=i7, q11=i11))["FA"]) == expected


def test_c15pal_fa_both_s3_cases_explicitly():
    assert r1(c15pal_scores(c15(q7=3, q11=2))["FA"]) == 44.4
    assert r1(c15pal_scores(c15(q7=4, q11=1))["FA"]) == 44.4
    assert r1(c15pal_scores(c15(q7=1, q11=4))["FA"]) == 55.6
    assert r1(c15pal_scores(c15(q7=2, q11=3))["FA"]) == 55.6
    assert c15pal_scores(c15(q7=3, q11=2))["FA"] == pytest.approx(400 / 9)
    assert c15pal_scores(c15(q7=2, q11=3))["FA"] == pytest.approx(500 / 9)


@pytest.mark.parametrize(("i9", "expected"), sorted(NV_BY_ITEM.items()))
def test_c15pal_nv_every_answer(i9, expected):
    assert r1(c15pal_scores(c15(q9=i9))["NV"]) == expected


def test_c15pal_linear_scales():
    """PA, DY, SL, AP, CO and QL use §4.1 (PA = items 5 and 12)."""
    scores = c15pal_scores(c15(q4=2, q5=3, q12=4, q6=4, q8=3, q10=2, q15=4))
    assert scores["DY"] == pytest.approx(100 / 3)
    assert scores["PA"] == pytest.approx(100 * 2.5 / 3)
    assert scores["SL"] == pytest.approx(100.0)
    assert scores["AP"] == pytest.approx(200 / 3)
    assert scores["CO"] == pytest.approx(100 / 3)
    assert scores["QL"] == pytest.approx(50.0)
    assert set(scores) == {"PF2", "EF", "FA", "NV", "PA", "DY", "SL", "AP", "CO", "QL"}


@pytest.mark.parametrize(
    ("missing", "none_scales"),
    [
        ("q1", {"PF2"}),
        ("q2", {"PF2"}),
        ("q3", {"PF2"}),
        ("q13", {"EF"}),
        ("q14", {"EF"}),
        ("q7", {"FA"}),
        ("q11", {"FA"}),
        ("q9", {"NV"}),
        ("q4", {"DY"}),
        ("q6", {"SL"}),
        ("q8", {"AP"}),
        ("q10", {"CO"}),
        ("q15", {"QL"}),
        ("q5", set()),  # PA still has item 12: half of two is enough
        ("q12", set()),
    ],
)
def test_c15pal_missing_item_rules(missing, none_scales):
    """Converted scales need every item; §4.1 scales need half; nothing else changes."""
    full = c15pal_scores(c15())
    partial = c15pal_scores(c15(**{missing: None}))
    assert {k for k, v in partial.items() if v is None} == none_scales
    for scale in set(full) - none_scales - {"PA"}:
        assert partial[scale] == full[scale]


def test_c15pal_empty_answers_all_missing():
    assert all(v is None for v in c15pal_scores({}).values())


def test_c15pal_refuses_out_of_range():
    with pytest.raises(ScoringError):
        c15pal_scores(c15(q1=5))
    with pytest.raises(ScoringError):
        c15pal_scores(c15(q15=8))
    with pytest.raises(ScoringError):
        c15pal_scores(c15(q9=0))


# Direction of each C15-PAL scale: +1 if the score rises as an item's answer rises
# (symptoms, and global QoL where 7 = excellent), −1 if it falls (functional scales).
C15_DIRECTIONS = {
    "PF2": ({"q1", "q2", "q3"}, -1),
    "EF": ({"q13", "q14"}, -1),
    "FA": ({"q7", "q11"}, +1),
    "NV": ({"q9"}, +1),
    "PA": ({"q5", "q12"}, +1),
    "DY": ({"q4"}, +1),
    "SL": ({"q6"}, +1),
    "AP": ({"q8"}, +1),
    "CO": ({"q10"}, +1),
    "QL": ({"q15"}, +1),
}

maybe4 = st.one_of(st.none(), st.integers(1, 4))
c15_answers = st.fixed_dictionaries(
    {f"q{i}": maybe4 for i in range(1, 15)} | {"q15": st.one_of(st.none(), st.integers(1, 7))}
)
c15_complete = st.fixed_dictionaries(
    {f"q{i}": st.integers(1, 4) for i in range(1, 15)} | {"q15": st.integers(1, 7)}
)


@given(c15_answers)
def test_c15pal_scores_within_0_100(answers):
    for value in c15pal_scores(answers).values():
        assert value is None or 0 <= value <= 100


@given(c15_complete)
def test_c15pal_complete_answers_score_every_scale(answers):
    assert all(v is not None for v in c15pal_scores(answers).values())


@given(c15_complete, st.sampled_from([f"q{i}" for i in range(1, 16)]))
def test_c15pal_monotonic_in_each_item(answers, item):
    """Raising one answer by one step moves every scale containing it only in its direction;
    scales without the item do not move."""
    top = 7 if item == "q15" else 4
    assume(answers[item] < top)
    before = c15pal_scores(answers)
    after = c15pal_scores(answers | {item: answers[item] + 1})
    for scale, (items, direction) in C15_DIRECTIONS.items():
        if item in items:
            assert (after[scale] - before[scale]) * direction >= 0, scale
        else:
            assert after[scale] == before[scale], scale


@pytest.mark.parametrize("scale", sorted(scoring.C15PAL_CONVERTED_SCALES))
def test_c15pal_converted_scales_monotonic_exhaustively(scale):
    """Over every answer combination of PF2/EF/FA/NV: one step worse on any item never
    improves the scale (functional down, symptom up) - including FA's split s = 3."""
    items, kind = scoring.C15PAL_CONVERTED_SCALES[scale]
    for combo in itertools.product(FOUR, repeat=len(items)):
        before = c15pal_scores(c15(**dict(zip(items, combo, strict=True))))[scale]
        for position, value in enumerate(combo):
            if value == 4:
                continue
            worse = list(combo)
            worse[position] += 1
            after = c15pal_scores(c15(**dict(zip(items, worse, strict=True))))[scale]
            if kind == "functional":
                assert after <= before, (combo, worse)
            else:
                assert after >= before, (combo, worse)


@given(c15_answers)
def test_c15pal_converted_scales_none_iff_an_item_missing(answers):
    scores = c15pal_scores(answers)
    for scale, (items, _kind) in scoring.C15PAL_CONVERTED_SCALES.items():
        assert (scores[scale] is None) == any(answers[i] is None for i in items)
    for scale, (items, _kind, _range) in scoring.C15PAL_LINEAR_SCALES.items():
        answered = sum(answers[i] is not None for i in items)
        assert (scores[scale] is None) == (2 * answered < len(items))


@given(c15_answers)
def test_scoring_is_deterministic(answers):
    """Same answers → same scores, whatever the dict order, and the input is not changed."""
    copy = dict(answers)
    first = score("c15pal", answers)
    again = score("c15pal", dict(reversed(list(answers.items()))))
    assert first == again
    assert answers == copy


# --------------------------------------------------------------------------- §4.3 BM22


def bm22(value: int = 1, **items: int | None) -> dict[str, int | None]:
    answers: dict[str, int | None] = {f"q{i}": value for i in range(1, 23)}
    answers.update(items)
    return answers


def test_bm22_scales_and_items():
    assert scoring.BM22_SCALES["PS"][0] == ("q1", "q2", "q3", "q4", "q5")
    assert scoring.BM22_SCALES["PC"][0] == ("q6", "q7", "q8")
    assert scoring.BM22_SCALES["FI"][0] == tuple(f"q{i}" for i in range(9, 17))
    assert scoring.BM22_SCALES["PA"][0] == tuple(f"q{i}" for i in range(17, 23))
    assert scoring.BM22_REVERSED_ITEMS == ("q21", "q22")


def test_bm22_best_and_worst():
    """No symptoms, no interference, no worries and fully hopeful/positive → the best scores."""
    best = bm22(1, q21=4, q22=4)
    assert bm22_scores(best) == {"PS": 0.0, "PC": 0.0, "FI": 100.0, "PA": 100.0}
    worst = bm22(4, q21=1, q22=1)
    assert bm22_scores(worst) == {"PS": 100.0, "PC": 100.0, "FI": 0.0, "PA": 0.0}


def test_bm22_worked_example():
    answers = bm22(1, q1=2, q2=3, q6=4, q9=2, q10=3, q17=2, q21=3, q22=None)
    scores = bm22_scores(answers)
    assert scores["PS"] == pytest.approx((1.6 - 1) / 3 * 100)  # RS (2+3+1+1+1)/5
    assert scores["PC"] == pytest.approx((2 - 1) / 3 * 100)  # RS (4+1+1)/3
    assert scores["FI"] == pytest.approx((1 - (1.375 - 1) / 3) * 100)  # RS 11/8
    # PA: 17-20 → 2,1,1,1; 21 reversed 5-3 = 2; 22 missing → RS 7/5
    assert scores["PA"] == pytest.approx((1 - (1.4 - 1) / 3) * 100)


@pytest.mark.parametrize(
    ("scale", "answered", "scored"),
    [
        ("PS", 3, True),
        ("PS", 2, False),
        ("PC", 2, True),
        ("PC", 1, False),
        ("FI", 4, True),
        ("FI", 3, False),
        ("PA", 3, True),
        ("PA", 2, False),
    ],
)
def test_bm22_half_rule(scale, answered, scored):
    items = scoring.BM22_SCALES[scale][0]
    answers = {code: (2 if n < answered else None) for n, code in enumerate(items)}
    assert (bm22_scores(answers)[scale] is not None) is scored


bm22_answers = st.fixed_dictionaries({f"q{i}": maybe4 for i in range(1, 23)})
bm22_complete = st.fixed_dictionaries({f"q{i}": st.integers(1, 4) for i in range(1, 23)})


@given(bm22_answers)
def test_bm22_within_0_100(answers):
    for value in bm22_scores(answers).values():
        assert value is None or 0 <= value <= 100


@given(bm22_complete, st.integers(1, 22))
def test_bm22_monotonic_as_an_item_worsens(answers, number):
    """Worsening an item (a higher answer; a lower one for the positive items 21-22) never
    lowers a symptom scale and never raises a functional scale."""
    code = f"q{number}"
    reversed_item = code in scoring.BM22_REVERSED_ITEMS
    worse = answers[code] - 1 if reversed_item else answers[code] + 1
    assume(1 <= worse <= 4)
    before, after = bm22_scores(answers), bm22_scores(answers | {code: worse})
    for scale, (items, kind) in scoring.BM22_SCALES.items():
        if code not in items:
            assert after[scale] == before[scale]
        elif kind == "symptom":
            assert after[scale] >= before[scale]
        else:
            assert after[scale] <= before[scale]


# --------------------------------------------------------------------------- §4.4 BPI


def test_bpi_interference_needs_four_of_seven():
    """Interference = mean of the answered items, valid with ≥ 4 of 7: 3 answered → None."""
    three = {"activity": 2, "mood": 4, "walking": 6}
    assert bpi_scores(three)["interference"] is None
    four = three | {"sleep": 8}
    assert bpi_scores(four)["interference"] == pytest.approx(5.0)
    seven = dict.fromkeys(scoring.BPI_INTERFERENCE_ITEMS, 3) | {"work": 10}
    assert bpi_scores(seven)["interference"] == pytest.approx(28 / 7)


def test_bpi_severity_items_and_mean():
    answers = {"worst": 7, "least": 2, "average": 4, "now": 5}
    scores = bpi_scores(answers)
    assert (scores["worst"], scores["least"], scores["average"], scores["now"]) == (7, 2, 4, 5)
    assert scores["severity"] == pytest.approx(4.5)
    assert bpi_scores(answers | {"now": None})["severity"] is None
    assert bpi_scores(answers | {"now": None})["worst"] == 7


def test_bpi_zero_is_an_answer_not_missing():
    scores = bpi_scores(
        {"worst": 0, "least": 0, "average": 0, "now": 0}
        | dict.fromkeys(scoring.BPI_INTERFERENCE_ITEMS, 0)
    )
    assert scores["worst"] == 0.0
    assert scores["severity"] == 0.0
    assert scores["interference"] == 0.0


def test_bpi_omed_from_analgesics():
    rows = [
        {"drug": "oxycodone", "route": "oral", "daily_dose": 20, "unit": "mg/day"},
        {"drug": "paracetamol", "route": "oral", "daily_dose": 4000, "unit": "mg/day"},
    ]
    assert bpi_scores({"uses_analgesics": 1, "analgesics": rows})["omed"] == pytest.approx(30.0)
    assert bpi_scores({"analgesics": rows})["omed"] == pytest.approx(30.0)  # list only
    assert bpi_scores({"uses_analgesics": 2})["omed"] == 0.0  # explicit "no painkillers"
    assert bpi_scores({"uses_analgesics": 2, "analgesics": rows})["omed"] == 0.0
    assert bpi_scores({"uses_analgesics": 1})["omed"] is None  # list still missing
    assert bpi_scores({})["omed"] is None  # skipped: unknown, not 0
    with pytest.raises(ScoringError):
        bpi_scores({"uses_analgesics": 3})


@pytest.mark.parametrize("bad", [{"worst": 11}, {"mood": -1}, {"now": "5"}])
def test_bpi_refuses_out_of_range(bad):
    with pytest.raises(ScoringError):
        bpi_scores(bad)


nrs = st.one_of(st.none(), st.integers(0, 10))
pain_answers = st.fixed_dictionaries(
    dict.fromkeys((*scoring.BPI_SEVERITY_ITEMS, *scoring.BPI_INTERFERENCE_ITEMS), nrs)
)


@given(pain_answers)
def test_bpi_scores_within_0_10_and_rule(answers):
    scores = bpi_scores(answers)
    for key in ("worst", "least", "average", "now", "severity", "interference"):
        assert scores[key] is None or 0 <= scores[key] <= 10
    answered = sum(answers[c] is not None for c in scoring.BPI_INTERFERENCE_ITEMS)
    assert (scores["interference"] is None) == (answered < 4)


@given(pain_answers, st.sampled_from(scoring.BPI_INTERFERENCE_ITEMS))
def test_bpi_interference_monotonic(answers, item):
    assume(answers[item] is not None and answers[item] < 10)
    before = bpi_scores(answers)["interference"]
    after = bpi_scores(answers | {item: answers[item] + 1})["interference"]
    assert (before is None) == (after is None)
    if before is not None:
        assert after > before


# --------------------------------------------------------------------------- §4.5 OMED

# SPEC.md §4.5 default factors, typed in again to check the data file.
SPEC_FACTORS = {
    ("morphine", "oral"): 1,
    ("oxycodone", "oral"): 1.5,
    ("hydromorphone", "oral"): 5,
    ("codeine", "oral"): 0.15,
    ("tramadol", "oral"): 0.2,
    ("tapentadol", "oral"): 0.4,
    ("oxymorphone", "oral"): 3,
    ("hydrocodone", "oral"): 1,
    ("methadone", "oral"): 4.7,
    ("fentanyl", "transdermal"): 2.4,
}


@pytest.mark.parametrize(("drug", "route"), sorted(SPEC_FACTORS))
def test_omed_per_drug(drug, route):
    """Each drug's dose × its SPEC factor (fentanyl per µg/h of patch strength)."""
    unit = "µg/h" if drug == "fentanyl" else "mg/day"
    row = {"drug": drug, "route": route, "daily_dose": 40, "unit": unit}
    assert omed([row]) == pytest.approx(40 * SPEC_FACTORS[(drug, route)])


def test_omed_table_holds_exactly_the_spec_factors():
    table = analgesics.table()
    converted = {
        (code, route): factor
        for code, drug in table.drugs.items()
        for route, (factor, _unit) in drug.conversions.items()
    }
    assert converted == SPEC_FACTORS
    assert table.version == analgesics.current_version()


def test_omed_examples():
    assert omed(
        [{"drug": "fentanyl", "route": "transdermal", "daily_dose": 25, "unit": "µg/h"}]
    ) == pytest.approx(60.0)
    assert omed(
        [{"drug": "fentanyl", "route": "transdermal", "daily_dose": 12, "unit": "mcg/h"}]
    ) == pytest.approx(28.8)
    both = [
        {"drug": "morphine", "route": "oral", "daily_dose": 60, "unit": "mg/day"},
        {"drug": "oxycodone", "route": "oral", "daily_dose": 10, "unit": "mg/day"},
        {"drug": "nsaid", "route": "oral", "daily_dose": 1200, "unit": "mg/day"},
    ]
    assert omed(both) == pytest.approx(75.0)
    assert omed([]) == 0.0
    assert omed(None) is None


def test_omed_is_route_aware():
    """A route without a factor gives no OMED (not the oral one): no guessing."""
    sc = {"drug": "morphine", "route": "subcutaneous", "daily_dose": 20, "unit": "mg/day"}
    assert omed([sc]) is None
    oral = {"drug": "morphine", "route": "oral", "daily_dose": 20, "unit": "mg/day"}
    assert omed([oral, sc]) is None
    assert (
        omed([{"drug": "other_opioid", "route": "oral", "daily_dose": 5, "unit": "mg/day"}]) is None
    )
    # a non-opioid by any route adds nothing
    assert (
        omed([{"drug": "paracetamol", "route": "rectal", "daily_dose": 1000, "unit": "mg/day"}])
        == 0.0
    )


@pytest.mark.parametrize(
    "row",
    [
        {"drug": "fentanyl", "route": "transdermal", "daily_dose": 25, "unit": "mg/day"},
        {"drug": "morphine", "route": "oral", "daily_dose": 20, "unit": "µg/h"},
        {"drug": "heroin", "route": "oral", "daily_dose": 20, "unit": "mg/day"},
        {"drug": "morphine", "route": "ear", "daily_dose": 20, "unit": "mg/day"},
        {"drug": "morphine", "route": "oral", "daily_dose": 0, "unit": "mg/day"},
        {"drug": "morphine", "route": "oral", "daily_dose": -5, "unit": "mg/day"},
        {"drug": "morphine", "route": "oral", "daily_dose": "20", "unit": "mg/day"},
        {"drug": "morphine", "route": "oral", "daily_dose": float("nan"), "unit": "mg/day"},
        {"drug": "morphine", "route": "oral", "daily_dose": 20},
        {"drug": "morphine", "route": "oral", "daily_dose": 20, "unit": "mg/day", "extra": 1},
        "morphine 20 mg",
    ],
)
def test_omed_refuses_invalid_rows(row):
    with pytest.raises(ValueError):
        omed([row])


def test_omed_unknown_table_version():
    with pytest.raises(ValueError, match="version"):
        omed([], table_version="1900.1")
    assert omed([], table_version=analgesics.current_version()) == 0.0


# --------------------------------------------------------------------------- §4.5 response

# (baseline pain, baseline OMED, pain, OMED) → category, following SPEC.md §4.5's words.
PAIN_RESPONSE_CASES = [
    # complete: pain 0 with no increase in OMED
    (6, 60, 0, 60, "complete"),
    (6, 60, 0, 0, "complete"),
    (3, 0, 0, 0, "complete"),
    (6, 60, 0, 61, "indeterminate"),  # pain 0 but OMED up (< 25 %): not complete, not partial
    (6, 60, 0, 90, "indeterminate"),  # pain gone but OMED up 50 %: pain not "stable or +1"
    # partial: pain down ≥ 2 without an OMED increase
    (6, 60, 4, 60, "partial"),
    (6, 60, 4, 30, "partial"),
    (6, 0, 4, 0, "partial"),
    (6, 60, 4, 61, "indeterminate"),  # any OMED increase blocks the pain branch
    (6, 60, 5, 60, "indeterminate"),  # down 1 only
    # partial: OMED down ≥ 25 % without a pain increase
    (6, 60, 6, 45, "partial"),  # exactly −25 %
    (6, 60, 5, 40, "partial"),
    (6, 60, 6, 46, "indeterminate"),  # −23 %
    (6, 60, 7, 30, "indeterminate"),  # OMED halved but pain up 1
    (5, 20, 5, 15.0, "partial"),
    # progression: pain up ≥ 2 with stable OMED (change < 25 % either way)
    (4, 60, 6, 60, "progression"),
    (4, 60, 6, 70, "progression"),  # +17 % is stable
    (4, 60, 6, 50, "progression"),  # −17 % is stable
    (4, 60, 6, 45, "indeterminate"),  # −25 % is not stable
    (
        4,
        60,
        6,
        75,
        "indeterminate",
    ),  # pain +2 with OMED +25 %: neither "stable OMED" nor "pain stable or +1"
    (4, 0, 7, 0, "progression"),
    (4, 0, 7, 10, "indeterminate"),  # from 0, any OMED is a change
    # progression: OMED up ≥ 25 % with pain stable or up 1
    (4, 60, 4, 75, "progression"),  # exactly +25 %
    (4, 60, 5, 90, "progression"),
    (4, 60, 3, 90, "indeterminate"),  # pain down 1: not stable
    (4, 60, 4, 74, "indeterminate"),  # +23 %
    (4, 0, 4, 10, "progression"),  # starting an opioid with the same pain
    (4, 0, 5, 30, "progression"),
    # everything else
    (4, 60, 4, 60, "indeterminate"),
    (4, 60, 5, 60, "indeterminate"),
    (4, 60, 3, 60, "indeterminate"),
    (0, 0, 0, 0, "complete"),  # evaluability (baseline ≥ 2) is decided in the analysis
    (10, 100, 10, 100, "indeterminate"),
    # float arithmetic: 1.5 × 20 mg vs 30 mg morphine is "no increase"
    (6, 30, 0, 1.5 * 20, "complete"),
    (4, 30, 4, 0.75 * 30 + 1e-12, "partial"),  # rounding noise is not a change
    (4, 30, 4, 22.51, "indeterminate"),  # but a real 0.01 mg is
]


@pytest.mark.parametrize(("p0", "m0", "p1", "m1", "expected"), PAIN_RESPONSE_CASES)
def test_pain_response_table(p0, m0, p1, m1, expected):
    assert pain_response(p0, m0, p1, m1) == expected


def test_pain_response_missing_input_is_not_a_category():
    assert pain_response(None, 60, 3, 60) is None
    assert pain_response(6, None, 3, 60) is None
    assert pain_response(6, 60, None, 60) is None
    assert pain_response(6, 60, 3, None) is None


@pytest.mark.parametrize(
    "args", [(11, 0, 0, 0), (5, -1, 5, 0), (5, 0, 5, float("inf")), (True, 0, 0, 0), (5.5, 0, 5, 0)]
)
def test_pain_response_refuses_invalid(args):
    with pytest.raises(ScoringError):
        pain_response(*args)


pain_nrs = st.integers(0, 10)
omed_values = st.one_of(st.just(0.0), st.floats(0, 1000, allow_nan=False, allow_infinity=False))


@given(pain_nrs, omed_values, pain_nrs, omed_values)
@settings(max_examples=300)
def test_pain_response_properties(p0, m0, p1, m1):
    """The category is one of four and agrees with the definitions' necessary conditions."""
    result = pain_response(p0, m0, p1, m1)
    assert result in {"complete", "partial", "progression", "indeterminate"}
    if p1 == 0 and m1 <= m0:
        assert result == "complete"
    if result == "complete":
        assert p1 == 0 and m1 <= m0 + 1e-9
    if result == "partial":
        assert p1 <= p0
    if result == "progression":
        assert p1 >= p0 and not (m1 < m0 and p1 < p0 + 2)
    assert pain_response(p0, m0, p1, m1) == result  # deterministic


# --------------------------------------------------------------------------- dispatch


def test_score_dispatch_and_unknown():
    assert set(score("c15pal", {})) == set(scoring.C15PAL_SCALE_ORDER)
    assert set(score("bm22", {})) == {"PS", "PC", "FI", "PA"}
    assert set(score("pain", {})) == {
        "worst",
        "least",
        "average",
        "now",
        "severity",
        "interference",
        "omed",
    }
    assert score("eq5d5l", {}) == {"index": None, "vas": None}
    assert score("imcq", {"gp_visits": 3}) == {}
    assert score("ipcq", {"paid_work": 2}) == {}
    with pytest.raises(KeyError):
        score("qlq-c30", {})


def test_table_versions_recorded():
    assert scoring.table_versions("eq5d5l") == {"eq5d5l_tariff": "NL-2016"}
    assert scoring.table_versions("pain") == {"omed": analgesics.current_version()}
    assert "c15pal_conversion" in scoring.table_versions("c15pal")
    assert scoring.table_versions("imcq") == {}
    with pytest.raises(KeyError):
        scoring.table_versions("nope")


@pytest.mark.parametrize("code", ["c15pal", "bm22", "pain", "eq5d5l", "imcq", "ipcq"])
def test_scale_info_describes_exactly_the_score_keys(code):
    """Every key score() returns has a bilingual label and a range its values respect."""
    info = scoring.scale_info(code)
    assert [i.code for i in info] == list(score(code, {}))
    for i in info:
        assert i.label["nl"] and i.label["en"]
    if code == "c15pal":
        # the instrument's order (the C15-PAL scoring manual): PF2, the primary endpoint, first
        assert [i.code for i in info] == [
            "PF2",
            "EF",
            "FA",
            "NV",
            "PA",
            "DY",
            "SL",
            "AP",
            "CO",
            "QL",
        ]
        assert {i.code for i in info if i.higher_is_better} == {"QL", "PF2", "EF"}
    with pytest.raises(KeyError):
        scoring.scale_info("nope")


# --------------------------------------------------------------------------- precision


@pytest.mark.parametrize(
    ("state", "expected"),
    [("21111", 0.918), ("21345", 0.05), ("33333", 0.511), ("55555", -0.446), ("12345", 0.047)],
)
def test_eq5d5l_index_is_the_published_three_decimal_value(state, expected):
    """Stored exactly as the tariff publishes it: 21111 is 0.918, not 0.9179999999999999."""
    assert eq5d5l_index(state) == expected
    assert (
        score("eq5d5l", dict(zip(scoring.EQ5D_DIMENSIONS, map(int, state), strict=True)))["index"]
        == expected
    )


def test_omed_has_no_float_artefacts():
    rows = [{"drug": "methadone", "route": "oral", "daily_dose": 1.5, "unit": "mg/day"}]
    assert scoring.omed(rows) == 7.05  # 4.7 x 1.5, not 7.050000000000001
    patch = [{"drug": "fentanyl", "route": "transdermal", "daily_dose": 1.5, "unit": "µg/h"}]
    assert scoring.omed(patch) == 3.6  # 2.4 x 1.5, not 3.5999999999999996


@pytest.mark.parametrize(
    ("code", "key", "decimals"),
    [
        ("c15pal", "PF2", 1),
        ("bm22", "FI", 1),
        ("pain", "worst", 0),
        ("pain", "severity", 2),
        ("pain", "omed", 1),
        ("eq5d5l", "index", 3),
        ("eq5d5l", "vas", 0),
    ],
)
def test_every_scale_says_the_precision_it_is_shown_with(code, key, decimals):
    info = {i.code: i for i in scoring.scale_info(code)}
    assert info[key].decimals == decimals
