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
from datetime import date
from typing import Any

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


# --- criteria derived from stored data (SPEC.md §3.2) -------------------------------------------
# A criterion's ``derived_from`` names one of these derivations and ``derivation_params`` holds
# its parameters, both versioned with the criterion. A derivation returns the answer the stored
# data give, or ``None`` when the stored data cannot decide it (then the nurse answers).

AGE_AT_SCREENING = "age_at_screening"
PRIMARY_TUMOUR = "primary_tumour"
RANDOMISATION_CONSENT = "randomisation_consent"
ALIVE_AT_SCREENING = "alive_at_screening"
DERIVATIONS = (AGE_AT_SCREENING, PRIMARY_TUMOUR, RANDOMISATION_CONSENT, ALIVE_AT_SCREENING)


@dataclass(frozen=True)
class StoredFacts:
    """What the system holds about a participant, as plain values.

    ``consent_reasons`` is the cohort's randomisation-consent verdict on the screening date
    (empty: consent (a), (c) and (d) given and not withdrawn, alive); ``None`` when not known.
    """

    date_of_birth: date | None = None
    primary_tumour: str | None = None
    consent_reasons: tuple[str, ...] | None = None
    died_on: date | None = None


@dataclass(frozen=True)
class Derived:
    """The answer the stored data give, and what it rests on (never identifying data)."""

    answer: str
    basis: dict[str, Any] = field(default_factory=dict)


def age_on(date_of_birth: date, on: date) -> int:
    """Completed years on ``on``. Someone born on 29 February completes a year on 1 March
    in a common year (the day after 28 February), as in completed-years arithmetic."""
    years = on.year - date_of_birth.year
    if (on.month, on.day) < (date_of_birth.month, date_of_birth.day):
        years -= 1
    return years


def derive(
    derivation: str, params: Mapping[str, Any], facts: StoredFacts, on: date
) -> Derived | None:
    """The answer of a derivable criterion on the screening date ``on``, or ``None``.

    - ``age_at_screening`` ``{"min_years": 18}``: *yes* when the completed age on ``on`` is at
      least ``min_years`` (so exactly 18 on the screening date is *yes*, 17 years and 364 days
      *no*); unknown date of birth → ``None``.
    - ``primary_tumour`` ``{"values": [...], "undecided": [...]}``: *yes* when the registered
      primary tumour is one of ``values``, ``None`` when it is one of ``undecided`` (e.g.
      unknown primary) or not recorded, otherwise *no*.
    - ``randomisation_consent``: *yes* when the consent records allow randomisation on ``on``,
      otherwise *no*; ``None`` when not known.
    - ``alive_at_screening``: *no* when a death on or before ``on`` is recorded, else *yes*.
    """
    if derivation == AGE_AT_SCREENING:
        if facts.date_of_birth is None or facts.date_of_birth > on:
            return None
        age = age_on(facts.date_of_birth, on)
        minimum = int(params.get("min_years", 18))
        return Derived(YES if age >= minimum else NO, {"age": age, "min_years": minimum})
    if derivation == PRIMARY_TUMOUR:
        tumour = facts.primary_tumour or ""
        if not tumour or tumour in params.get("undecided", ()):
            return None
        answer = YES if tumour in params.get("values", ()) else NO
        return Derived(answer, {"primary_tumour": tumour})
    if derivation == RANDOMISATION_CONSENT:
        if facts.consent_reasons is None:
            return None
        reasons = list(facts.consent_reasons)
        return Derived(NO if reasons else YES, {"consent_reasons": reasons})
    if derivation == ALIVE_AT_SCREENING:
        died_on = facts.died_on
        if died_on is not None and died_on <= on:
            return Derived(NO, {"died_on": died_on.isoformat()})
        return Derived(YES, {"died_on": None})
    raise ValueError(f"unknown derivation {derivation!r}")


@dataclass(frozen=True)
class DerivableSpec:
    code: str
    derived_from: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Contradiction:
    code: str
    typed: str
    derived: Derived


def merge_answers(
    criteria: Iterable[DerivableSpec],
    typed: Mapping[str, str],
    facts: StoredFacts,
    on: date,
) -> tuple[dict[str, str], dict[str, Derived], list[Contradiction]]:
    """Combine typed answers with the answers the stored data give.

    Returns (all answers, the derived ones by code, contradictions). A derived criterion
    needs no typed answer; a typed answer that differs from the derived one (``unknown``
    included: the system knows) is a contradiction. Criteria the data cannot decide keep
    the typed answer.
    """
    answers = dict(typed)
    derived: dict[str, Derived] = {}
    contradictions: list[Contradiction] = []
    for spec in criteria:
        if not spec.derived_from:
            continue
        result = derive(spec.derived_from, spec.params, facts, on)
        if result is None:
            continue
        derived[spec.code] = result
        given = typed.get(spec.code)
        if given not in (None, "") and given != result.answer:
            contradictions.append(Contradiction(spec.code, given, result))
        answers[spec.code] = result.answer
    return answers, derived, contradictions
