"""Pure checks of the randomization services: already-read facts in, reason codes or counts
out. No ORM, no I/O; the services read the facts (``selectors``), call these, then write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def screening_reasons(
    *,
    screened: bool,
    protocol_version: str | None,
    current_protocol: str,
    eligible: bool,
    reasons: Sequence[str],
) -> list[str]:
    """Why the latest screening does not allow randomising (empty: it does)."""
    if not screened:
        return ["not_screened"]
    if protocol_version != current_protocol:
        return ["screening_outdated_protocol"]
    if not eligible:
        return ["not_eligible", *reasons]
    return []


def readiness_reasons(
    trial_refusal: str | None, screening: Sequence[str], consent: Sequence[str]
) -> list[str]:
    """Every reason against randomising, in the order people read them: the trial, the
    screening, then the consent reasons the screening did not already name."""
    out = [trial_refusal] if trial_refusal else []
    out += screening
    out += [r for r in consent if r not in out]
    return out


Counts = dict[str, dict[str, dict[str, int]]]


def minimisation_counts(
    rows: Iterable[Mapping[str, Any]], factors: Sequence[str], *, arm: str, count: str
) -> Counts:
    """Marginal counts ``{factor: {level: {arm: n}}}`` from rows grouped by arm and every
    factor's level (``rows[f]`` is the level of factor ``f``)."""
    counts: Counts = {f: {} for f in factors}
    for row in rows:
        n = int(row[count])
        for f in factors:
            bucket = counts[f].setdefault(str(row[f]), {})
            code = str(row[arm])
            bucket[code] = bucket.get(code, 0) + n
    return counts


TRIAL_NUMBER_DIGITS = 3


def trial_number(code: str, n: int) -> str:
    """The ``n``-th trial number of a trial: ``BLEND-017`` (at least three digits)."""
    return f"{code}-{n:0{TRIAL_NUMBER_DIGITS}d}"
