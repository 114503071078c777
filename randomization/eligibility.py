"""The eligibility verdict (SPEC.md §3.2) as a pure function over plain values.

Eligible only when every inclusion criterion is answered *yes*, every exclusion
criterion *no*, and the TwiCs randomisation consent holds (elements (c) and (d)
given and not withdrawn, not dead: the cohort's ``randomisation_consent`` gives
its reasons, which are passed in here unchanged).

Reasons are machine-readable strings; they feed the CONSORT flow:

- ``inclusion_not_met:<code>`` / ``inclusion_unknown:<code>``
- ``exclusion_met:<code>`` / ``exclusion_unknown:<code>``
- ``unanswered:<code>`` (a criterion without an answer)
- the consent reasons as given, e.g. ``consent_randomisation_offer_missing``,
  ``withdrawn_trial``, ``deceased``
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

YES, NO, UNKNOWN = "yes", "no", "unknown"
INCLUSION, EXCLUSION = "inclusion", "exclusion"
ANSWERS = (YES, NO, UNKNOWN)


@dataclass(frozen=True)
class CriterionSpec:
    code: str
    kind: str  # "inclusion" | "exclusion"


@dataclass(frozen=True)
class EligibilityVerdict:
    eligible: bool
    reasons: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.eligible


def verdict(
    criteria: Iterable[CriterionSpec],
    answers: Mapping[str, str],
    consent_reasons: Iterable[str] = (),
) -> EligibilityVerdict:
    """The verdict for ``answers`` (criterion code → yes/no/unknown) against ``criteria``.

    Unknown answers never make a participant eligible. Answers to codes that are not
    among ``criteria`` are ignored (they belong to another protocol version).
    """
    reasons: list[str] = []
    for criterion in criteria:
        if criterion.kind not in (INCLUSION, EXCLUSION):
            raise ValueError(f"unknown criterion kind {criterion.kind!r}")
        answer = answers.get(criterion.code)
        if answer is None or answer == "":
            reasons.append(f"unanswered:{criterion.code}")
        elif answer not in ANSWERS:
            raise ValueError(f"unknown answer {answer!r} for {criterion.code}")
        elif criterion.kind == INCLUSION and answer != YES:
            reasons.append(f"inclusion_{'not_met' if answer == NO else 'unknown'}:{criterion.code}")
        elif criterion.kind == EXCLUSION and answer != NO:
            reasons.append(f"exclusion_{'met' if answer == YES else 'unknown'}:{criterion.code}")
    reasons.extend(consent_reasons)
    return EligibilityVerdict(eligible=not reasons, reasons=reasons)
