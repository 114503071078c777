"""Questionnaire scoring, SPEC.md §4.1-§4.6: pure functions over plain values.

No ORM, no I/O beyond reading the versioned tables shipped as package data
(``crf/instruments/*.json``). EORTC scale scores keep full precision; values that are
published or computed with decimal factors are stored as published (the EQ-5D-5L index to
3 decimals, OMED without float artefacts). Each scale's :class:`ScaleInfo` says with how
many decimals it is shown. Every function is deterministic: the same answers always give
the same scores.

Entry point: :func:`score` (``instrument code, answers -> {scale: float | None}``), and
:func:`table_versions` for the table versions to store next to the scores.

Answer values must already be valid (see :func:`crf.instruments.validate`); an answer
outside an item's range raises :class:`ScoringError` rather than producing a wrong score.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from crf import analgesics
from crf.instruments import I18n

__all__ = [
    "BM22_REVERSED_ITEMS",
    "BM22_SCALES",
    "BPI_INTERFERENCE_ITEMS",
    "C15PAL_CONVERTED_SCALES",
    "C15PAL_LINEAR_SCALES",
    "SCALE_INFO",
    "ScaleInfo",
    "ScoringError",
    "bm22_scores",
    "bpi_scores",
    "c15pal_scores",
    "eq5d5l_index",
    "eq5d5l_scores",
    "omed",
    "pain_response",
    "qlq_linear",
    "scale_info",
    "score",
    "table_versions",
]

Kind = Literal["functional", "symptom", "global"]
PainResponse = Literal["complete", "partial", "progression", "indeterminate"]


class ScoringError(ValueError):
    """An answer is outside its item's range or of the wrong type."""


# --------------------------------------------------------------------------- tables


@cache
def _table(name: str) -> dict[str, Any]:
    path = resources.files("crf").joinpath("instruments", f"{name}.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _version(name: str, version: str | None) -> tuple[str, dict[str, Any]]:
    data = _table(name)
    version = version or data["current"]
    try:
        return version, data["versions"][version]
    except KeyError:
        raise ValueError(f"unknown {name} version {version!r}") from None


# --------------------------------------------------------------------------- helpers


def _item(value: Any, low: int, high: int, name: str = "item") -> int | None:
    """An answered item as ``int`` in ``[low, high]``; ``None`` when not answered."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScoringError(f"{name}: {value!r} is not a number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ScoringError(f"{name}: {value!r} is not a whole number")
        value = int(value)
    if not low <= value <= high:
        raise ScoringError(f"{name}: {value} is outside {low}-{high}")
    return int(value)


# --------------------------------------------------------------------------- §4.1


def qlq_linear(items: Sequence[int | None], kind: Kind, range_: int) -> float | None:
    """EORTC QLQ-C30 family linear transformation (SPEC.md §4.1).

    ``items``: the scale's answers (``None`` = not answered), each in ``1 .. range_ + 1``.
    ``kind``: ``"functional"`` (higher = better), ``"symptom"`` (higher = worse) or
    ``"global"`` (global health / QoL, higher = better). ``range_`` is 3 for 1-4 items and
    6 for 1-7 items. RS is the mean of the answered items; the scale is scored when at least
    half of its items are answered, and is ``None`` otherwise.
    """
    if range_ not in (3, 6):
        raise ValueError("range_ must be 3 (items 1-4) or 6 (items 1-7)")
    if kind not in ("functional", "symptom", "global"):
        raise ValueError(f"unknown scale kind {kind!r}")
    if not items:
        raise ValueError("a scale needs at least one item")
    answered = [v for v in (_item(v, 1, range_ + 1) for v in items) if v is not None]
    if not answered or 2 * len(answered) < len(items):
        return None
    raw = sum(answered) / len(answered)
    if kind == "functional":
        return (1 - (raw - 1) / range_) * 100
    # Symptom scales and global QoL use the same formula; global items point the other way
    # (7 = excellent), so a higher score is better there.
    return (raw - 1) / range_ * 100


# --------------------------------------------------------------------------- §4.2

# Scales scored with §4.1: code -> (items, kind, range)
C15PAL_LINEAR_SCALES: dict[str, tuple[tuple[str, ...], Kind, int]] = {
    "PA": (("q5", "q12"), "symptom", 3),
    "DY": (("q4",), "symptom", 3),
    "SL": (("q6",), "symptom", 3),
    "AP": (("q8",), "symptom", 3),
    "CO": (("q10",), "symptom", 3),
    "QL": (("q15",), "global", 6),
}
# Scales converted to the QLQ-C30 metric (all items required): code -> (items, kind)
C15PAL_CONVERTED_SCALES: dict[str, tuple[tuple[str, ...], Kind]] = {
    "PF2": (("q1", "q2", "q3"), "functional"),
    "EF": (("q13", "q14"), "functional"),
    "FA": (("q7", "q11"), "symptom"),
    "NV": (("q9",), "symptom"),
}
# The order of the C15-PAL scoring manual: functional scales (PF2, the primary endpoint,
# first), symptom scales, then overall quality of life.
C15PAL_SCALE_ORDER = ("PF2", "EF", "FA", "NV", "PA", "DY", "SL", "AP", "CO", "QL")


def _conversion(version: str | None = None) -> dict[str, Any]:
    return _version("c15pal_conversion", version)[1]


def _converted(scale: str, key: str, version: str | None = None) -> float:
    entry = _conversion(version)[scale]
    table = entry["by_pair"] if key in entry.get("by_pair", {}) else None
    if table is None:
        table = entry.get("by_sum") or entry["by_item"]
    converted: float = table[key] * 100 / entry["denominator"]
    return converted


def c15pal_pf2(i1: int | None, i2: int | None, i3: int | None) -> float | None:
    """Physical functioning (PF2), converted to the QLQ-C30 metric; all items required."""
    values = [_item(v, 1, 4, name) for v, name in ((i1, "q1"), (i2, "q2"), (i3, "q3"))]
    if None in values:
        return None
    s = 12 - sum(values)  # type: ignore[arg-type]
    return _converted("PF2", str(s))


def c15pal_ef(i13: int | None, i14: int | None) -> float | None:
    """Emotional functioning (EF), converted; both items required."""
    a, b = _item(i13, 1, 4, "q13"), _item(i14, 1, 4, "q14")
    if a is None or b is None:
        return None
    return _converted("EF", str(8 - (a + b)))


def c15pal_fa(i7: int | None, i11: int | None) -> float | None:
    """Fatigue (FA), converted; both items required. s = 3 depends on which item is higher."""
    a, b = _item(i7, 1, 4, "q7"), _item(i11, 1, 4, "q11")
    if a is None or b is None:
        return None
    s = a + b - 2
    return _converted("FA", f"{a},{b}" if s == 3 else str(s))


def c15pal_nv(i9: int | None) -> float | None:
    """Nausea and vomiting (NV), converted from the single item 9."""
    a = _item(i9, 1, 4, "q9")
    if a is None:
        return None
    return _converted("NV", str(a))


def c15pal_scores(answers: Mapping[str, Any]) -> dict[str, float | None]:
    """EORTC QLQ-C15-PAL scales (SPEC.md §4.2).

    PF2, EF, FA and NV use the C15-PAL conversion to the QLQ-C30 metric and are ``None``
    unless every item of the scale is answered; PA, DY, SL, AP, CO and QL use §4.1.
    """
    get = answers.get
    scores: dict[str, float | None] = {
        "PF2": c15pal_pf2(get("q1"), get("q2"), get("q3")),
        "EF": c15pal_ef(get("q13"), get("q14")),
        "FA": c15pal_fa(get("q7"), get("q11")),
        "NV": c15pal_nv(get("q9")),
    }
    for scale, (items, kind, range_) in C15PAL_LINEAR_SCALES.items():
        scores[scale] = qlq_linear([get(code) for code in items], kind, range_)
    return {scale: scores[scale] for scale in C15PAL_SCALE_ORDER}


# --------------------------------------------------------------------------- §4.3

# QLQ-BM22 item directions. Every item is answered 1 (not at all) .. 4 (very much).
# Painful sites (1-5) and painful characteristics (6-8) are symptom scales: "very much" is
# worse, higher score = more symptoms. Functional interference (9-16) asks how much pain
# got in the way (negatively phrased), so the §4.1 functional formula gives higher = better
# functioning as-is. Psychosocial aspects (17-22) is a functional scale whose items 17-20
# are negatively phrased (isolation, worries) while items 21-22 are positively phrased
# (hopeful about pain, positive about health): those two are reversed (5 - answer) before
# the functional formula, so that higher PA = better psychosocial functioning and the
# scale is monotonic in each item's meaning. This must be checked against the licensed
# BM22 scoring instructions before release (SPEC.md §4.3); the reversal is this one tuple.
BM22_REVERSED_ITEMS: tuple[str, ...] = ("q21", "q22")
BM22_SCALES: dict[str, tuple[tuple[str, ...], Kind]] = {
    "PS": (("q1", "q2", "q3", "q4", "q5"), "symptom"),
    "PC": (("q6", "q7", "q8"), "symptom"),
    "FI": (("q9", "q10", "q11", "q12", "q13", "q14", "q15", "q16"), "functional"),
    "PA": (("q17", "q18", "q19", "q20", "q21", "q22"), "functional"),
}


def bm22_scores(answers: Mapping[str, Any]) -> dict[str, float | None]:
    """EORTC QLQ-BM22 scales PS, PC (symptom) and FI, PA (functional), §4.1 with half rule."""
    scores: dict[str, float | None] = {}
    for scale, (items, kind) in BM22_SCALES.items():
        values = []
        for code in items:
            value = _item(answers.get(code), 1, 4, code)
            if value is not None and code in BM22_REVERSED_ITEMS:
                value = 5 - value
            values.append(value)
        scores[scale] = qlq_linear(values, kind, 3)
    return scores


# --------------------------------------------------------------------------- §4.4

BPI_SEVERITY_ITEMS = ("worst", "least", "average", "now")
BPI_INTERFERENCE_ITEMS = (
    "activity",
    "mood",
    "walking",
    "work",
    "relations",
    "sleep",
    "enjoyment",
)
BPI_INTERFERENCE_MIN_ANSWERED = 4


def bpi_scores(answers: Mapping[str, Any]) -> dict[str, float | None]:
    """Pain items and BPI short-form scores (SPEC.md §4.4).

    ``worst``, ``least``, ``average``, ``now``: the 0-10 answers as given (worst pain at the
    index site is the pain-response input). ``severity``: mean of those four, only when all
    four are answered. ``interference``: mean of the answered interference items, valid only
    with at least 4 of the 7 answered. ``omed``: oral morphine equivalent daily dose of the
    ``analgesics`` list; 0 after "no painkillers"; ``None`` when not answered or when an
    opioid has no conversion for its route.
    """
    severity_values = [_item(answers.get(code), 0, 10, code) for code in BPI_SEVERITY_ITEMS]
    interference = [
        v
        for v in (_item(answers.get(code), 0, 10, code) for code in BPI_INTERFERENCE_ITEMS)
        if v is not None
    ]
    scores: dict[str, float | None] = {
        code: (None if value is None else float(value))
        for code, value in zip(BPI_SEVERITY_ITEMS, severity_values, strict=True)
    }
    scores["severity"] = (
        None if None in severity_values else sum(severity_values) / len(severity_values)  # type: ignore[arg-type]
    )
    scores["interference"] = (
        sum(interference) / len(interference)
        if len(interference) >= BPI_INTERFERENCE_MIN_ANSWERED
        else None
    )
    scores["omed"] = _pain_omed(answers)
    return scores


def _pain_omed(answers: Mapping[str, Any]) -> float | None:
    """OMED of the pain instrument: 0 after an explicit "no painkillers" (``uses_analgesics``
    = 2), the list's OMED after "yes" (1) or when only a list was recorded, ``None`` when
    neither was answered (a skipped question is not "no opioids")."""
    uses = _item(answers.get("uses_analgesics"), 1, 2, "uses_analgesics")
    if uses == 2:
        return 0.0
    try:
        return omed(answers.get("analgesics"))
    except ValueError as exc:
        raise ScoringError(f"analgesics: {exc}") from None


# --------------------------------------------------------------------------- §4.5


def omed(
    analgesics_list: Iterable[Mapping[str, Any]] | None, table_version: str | None = None
) -> float | None:
    """Oral morphine equivalent daily dose in mg/day (SPEC.md §4.5); see :mod:`crf.analgesics`.

    Route-aware: each (drug, route) has its own factor and unit in the versioned table
    (transdermal fentanyl in µg/h of patch strength, factor 2.4). ``None`` when the list is
    not answered or an opioid has no conversion for its route; 0 for no opioids.
    """
    value = analgesics.omed(analgesics_list, table_version=table_version)
    return None if value is None else round(value, OMED_DECIMALS)


OMED_DECIMALS = 3  # mg/day; drops float artefacts (4.7 x 1.5 = 7.050000000000001)
# Tolerance for comparing OMEDs computed with decimal factors (1.5 x 20 = 30.000000000000004).
_EPS = 1e-9
OMED_CHANGE = 0.25  # the consensus 25 % threshold
PAIN_CHANGE = 2  # the consensus 2-point threshold


def pain_response(
    baseline_pain: int | None,
    baseline_omed: float | None,
    pain: int | None,
    omed: float | None,
) -> PainResponse | None:
    """International consensus pain response (Chow et al. 2012) as SPEC.md §4.5 words it.

    Inputs: worst pain at the treated site (0-10) and OMED (mg/day), at baseline and now.

    - complete: pain 0 with no increase in OMED;
    - partial: pain down >= 2 points without an OMED increase, or OMED down >= 25 %
      without a pain increase;
    - progression: pain up >= 2 points with stable OMED, or OMED up >= 25 % with pain
      stable or up by 1 point;
    - indeterminate: everything else.

    Readings we had to choose (documented, tested): "no increase"/"without an increase" is
    ``omed <= baseline_omed`` (any increase counts); "stable OMED" is a change of less than
    25 % either way (the consensus threshold; from a baseline of 0 only 0 is stable);
    "pain stable" is the same score. The categories are checked in the order above (a
    response that is both complete and partial is complete; the others cannot overlap).
    Whether a patient is evaluable at all (e.g. baseline worst pain >= 2) is an analysis
    decision outside this function. Returns ``None`` when any input is missing: a missing
    assessment is not an "indeterminate" response.
    """
    if None in (baseline_pain, baseline_omed, pain, omed):
        return None
    p0 = _item(baseline_pain, 0, 10, "baseline_pain")
    p1 = _item(pain, 0, 10, "pain")
    for name, value in (("baseline_omed", baseline_omed), ("omed", omed)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ScoringError(f"{name}: {value!r} is not a number")
        if value < 0:
            raise ScoringError(f"{name}: {value} is negative")
    m0, m1 = float(baseline_omed), float(omed)  # type: ignore[arg-type]
    assert p0 is not None and p1 is not None

    omed_increased = m1 > m0 + _EPS
    omed_down_25 = m0 > 0 and m1 <= m0 * (1 - OMED_CHANGE) + _EPS
    omed_up_25 = m1 >= m0 * (1 + OMED_CHANGE) - _EPS and (m1 > m0 + _EPS)
    # from a baseline of 0 only 0 is stable
    omed_stable = abs(m1 - m0) < m0 * OMED_CHANGE - _EPS if m0 > 0 else m1 <= _EPS

    if p1 == 0 and not omed_increased:
        return "complete"
    if (p1 <= p0 - PAIN_CHANGE and not omed_increased) or (omed_down_25 and p1 <= p0):
        return "partial"
    if (p1 >= p0 + PAIN_CHANGE and omed_stable) or (omed_up_25 and p0 <= p1 <= p0 + 1):
        return "progression"
    return "indeterminate"


# --------------------------------------------------------------------------- §4.6

EQ5D_DIMENSIONS = ("mo", "sc", "ua", "pd", "ad")
EQ5D_INDEX_DECIMALS = 3  # the Dutch tariff is published to 3 decimals


def _state(state: str | Sequence[int]) -> tuple[int, ...]:
    if isinstance(state, str):
        if len(state) != 5 or not all(ch in "12345" for ch in state):
            raise ScoringError(f"EQ-5D-5L state {state!r} must be five digits 1-5")
        return tuple(int(ch) for ch in state)
    levels = tuple(state)
    if len(levels) != 5:
        raise ScoringError(f"EQ-5D-5L state {state!r} must have five levels")
    return tuple(_item(level, 1, 5, "level") for level in levels)  # type: ignore[misc]


def eq5d5l_index(state: str | Sequence[int], tariff: str | None = None) -> float:
    """EQ-5D-5L index with the Dutch tariff (SPEC.md §4.6); ``"11111"`` (or a tuple) → 1.

    Any other state: 1 − constant − the decrement of each dimension's level (level 1 adds
    nothing). The tariff is versioned data (``crf/instruments/eq5d5l_tariff.json``). The
    value is rounded to 3 decimals, as the tariff is published (21111 → 0.918 exactly, not
    the binary sum 0.9179999999999999).
    """
    levels = _state(state)
    if None in levels:
        raise ScoringError("EQ-5D-5L state has a missing level")
    _name, table = _version("eq5d5l_tariff", tariff)
    code = "".join(map(str, levels))
    if code == table["full_health"]:
        return float(table["full_health_value"])
    value: float = 1.0 - table["constant"]
    for dimension, level in zip(table["dimensions"], levels, strict=True):
        if level > 1:
            value -= table["decrements"][dimension][str(level)]
    return round(value, EQ5D_INDEX_DECIMALS)


def eq5d5l_scores(answers: Mapping[str, Any]) -> dict[str, float | None]:
    """``index`` (``None`` unless all five dimensions are answered) and ``vas`` as given."""
    levels = [_item(answers.get(code), 1, 5, code) for code in EQ5D_DIMENSIONS]
    vas = answers.get("vas")
    if vas is not None:
        if isinstance(vas, bool) or not isinstance(vas, int | float) or not 0 <= vas <= 100:
            raise ScoringError(f"vas: {vas!r} is outside 0-100")
        vas = float(vas)
    index = None if None in levels else eq5d5l_index(tuple(levels))  # type: ignore[arg-type]
    return {"index": index, "vas": vas}


# --------------------------------------------------------------------------- dispatch


def _no_scores(answers: Mapping[str, Any]) -> dict[str, float | None]:
    """iMCQ / iPCQ: item-level answers are stored; valuation is analysis (SPEC.md §4.7)."""
    return {}


_SCORERS: dict[str, Callable[[Mapping[str, Any]], dict[str, float | None]]] = {
    "c15pal": c15pal_scores,
    "bm22": bm22_scores,
    "pain": bpi_scores,
    "eq5d5l": eq5d5l_scores,
    "imcq": _no_scores,
    "ipcq": _no_scores,
}


def score(instrument_code: str, answers: Mapping[str, Any]) -> dict[str, float | None]:
    """Scores of one completed (or partly completed) instrument, full precision.

    Missing scales are ``None``. Raises :class:`ScoringError` for out-of-range answers and
    ``KeyError`` for an unknown instrument code.
    """
    try:
        scorer = _SCORERS[instrument_code]
    except KeyError:
        raise KeyError(f"unknown instrument {instrument_code!r}") from None
    return scorer(answers)


@dataclass(frozen=True)
class ScaleInfo:
    """What a score key means, for screens and exports."""

    code: str
    label: I18n
    higher_is_better: bool | None  # None: neither (e.g. a dose)
    low: float
    high: float | None  # None: open-ended
    decimals: int = 1  # shown with this many decimals (the precision the scale needs)


def _info(
    code: str,
    nl: str,
    en: str,
    better: bool | None,
    low: float,
    high: float | None,
    decimals: int = 1,
) -> ScaleInfo:
    return ScaleInfo(code, I18n(nl=nl, en=en), better, low, high, decimals)


SCALE_INFO: dict[str, tuple[ScaleInfo, ...]] = {
    # EORTC scales 0-100: one decimal (steps of 100/15, 100/9, 100/6 ...).
    "c15pal": (
        _info("PF2", "Lichamelijk functioneren", "Physical functioning", True, 0, 100),
        _info("EF", "Emotioneel functioneren", "Emotional functioning", True, 0, 100),
        _info("FA", "Vermoeidheid", "Fatigue", False, 0, 100),
        _info("NV", "Misselijkheid en braken", "Nausea and vomiting", False, 0, 100),
        _info("PA", "Pijn", "Pain", False, 0, 100),
        _info("DY", "Kortademigheid", "Dyspnoea", False, 0, 100),
        _info("SL", "Slapeloosheid", "Insomnia", False, 0, 100),
        _info("AP", "Verminderde eetlust", "Appetite loss", False, 0, 100),
        _info("CO", "Obstipatie", "Constipation", False, 0, 100),
        _info("QL", "Algehele kwaliteit van leven", "Global quality of life", True, 0, 100),
    ),
    "bm22": (
        _info("PS", "Pijnlocaties", "Painful sites", False, 0, 100),
        _info("PC", "Pijnkenmerken", "Painful characteristics", False, 0, 100),
        _info("FI", "Functionele hinder", "Functional interference", True, 0, 100),
        _info("PA", "Psychosociale aspecten", "Psychosocial aspects", True, 0, 100),
    ),
    "pain": (
        # single 0-10 answers are whole numbers; severity is a mean of 4 (quarters)
        _info("worst", "Ergste pijn", "Worst pain", False, 0, 10, 0),
        _info("least", "Minste pijn", "Least pain", False, 0, 10, 0),
        _info("average", "Gemiddelde pijn", "Average pain", False, 0, 10, 0),
        _info("now", "Pijn nu", "Pain now", False, 0, 10, 0),
        _info("severity", "Pijnernst (BPI)", "Pain severity (BPI)", False, 0, 10, 2),
        _info("interference", "Pijnhinder (BPI)", "Pain interference (BPI)", False, 0, 10, 1),
        _info("omed", "OMED (mg/dag)", "OMED (mg/day)", None, 0, None, 1),
    ),
    "eq5d5l": (
        _info(
            "index",
            "EQ-5D-5L index (NL)",
            "EQ-5D-5L index (NL)",
            True,
            -0.446,
            1,
            EQ5D_INDEX_DECIMALS,
        ),
        _info("vas", "EQ VAS", "EQ VAS", True, 0, 100, 0),
    ),
    "imcq": (),
    "ipcq": (),
}


def scale_info(instrument_code: str) -> tuple[ScaleInfo, ...]:
    """The score keys :func:`score` returns for an instrument, in display order, with
    bilingual labels, direction and range (e.g. for the nurse's questionnaire page)."""
    try:
        return SCALE_INFO[instrument_code]
    except KeyError:
        raise KeyError(f"unknown instrument {instrument_code!r}") from None


def table_versions(instrument_code: str) -> dict[str, str]:
    """The versions of the scoring tables :func:`score` uses for this instrument now;
    store them with the scores so a later table change is traceable."""
    if instrument_code == "c15pal":
        return {"c15pal_conversion": _table("c15pal_conversion")["current"]}
    if instrument_code == "eq5d5l":
        return {"eq5d5l_tariff": _table("eq5d5l_tariff")["current"]}
    if instrument_code == "pain":
        return {"omed": analgesics.current_version()}
    if instrument_code in _SCORERS:
        return {}
    raise KeyError(f"unknown instrument {instrument_code!r}")
