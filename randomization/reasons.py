"""Human-readable text for the machine-readable refusal and ineligibility reason codes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from django.utils.translation import gettext_lazy as _

LABELS = {
    "not_screened": _("No screening recorded for this trial."),
    "not_eligible": _("The latest screening is not eligible."),
    "screening_outdated_protocol": _(
        "The latest screening used an earlier protocol version; screen again."
    ),
    "trial_closed": _("The trial is closed to recruitment."),
    "trial_in_setup": _(
        "The trial is in set-up: randomisation opens when the statistician activates the "
        "production sequence."
    ),
    "trial_ended": _("The trial is closed."),
    "consent_cohort_missing": _("Cohort consent (a) is missing or refused."),
    "consent_randomisation_offer_missing": _(
        "Consent (c), to be offered experimental interventions, is missing or refused."
    ),
    "consent_control_uninformed_missing": _(
        "Consent (d), to serve as an uninformed control, is missing or refused."
    ),
    "withdrawn_trial": _("The participant withdrew from trial participation."),
    "deceased": _("The participant has died."),
    "corrected_in_error": _("Randomised in error and corrected: cannot be randomised again."),
    "no_active_sequence": _("Randomisation is not available at the moment."),
    "no_stratum": _("Randomisation is not available at the moment."),
    "sequence_exhausted": _("Randomisation is not available at the moment."),
    "randomisation_unavailable": _("Randomisation is not available at the moment."),
    "not_allowed": _("Your role does not allow this for this participant."),
}

PREFIXES = {
    "inclusion_not_met": _("Inclusion criterion not met"),
    "inclusion_unknown": _("Inclusion criterion unknown"),
    "exclusion_met": _("Exclusion criterion present"),
    "exclusion_unknown": _("Exclusion criterion unknown"),
    "unanswered": _("Not answered"),
}


def describe(reasons: Iterable[str], criteria_text: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per reason code (unknown codes are shown as they are)."""
    criteria_text = criteria_text or {}
    out: list[str] = []
    for code in reasons:
        prefix, sep, rest = code.partition(":")
        if sep and prefix in PREFIXES:
            out.append(f"{PREFIXES[prefix]}: {criteria_text.get(rest, rest)}")
        else:
            out.append(str(LABELS.get(code, code)))
    return out


def basis_text(
    derived_from: str, basis: Mapping[str, Any], *, date_of_birth: date | None = None
) -> str:
    """What a derived answer rests on, in words: 'Date of birth 2010-01-01: 16 years old on
    the screening date' for site staff (``date_of_birth`` passed), only the age otherwise."""
    from cohort.models import PrimaryTumour

    if derived_from == "age_at_screening":
        if date_of_birth is not None:
            return _("Date of birth %(dob)s: %(age)s years old on the screening date") % {
                "dob": date_of_birth.isoformat(),
                "age": basis.get("age"),
            }
        return _("%(age)s years old on the screening date (from the date of birth)") % {
            "age": basis.get("age")
        }
    if derived_from == "primary_tumour":
        value = basis.get("primary_tumour") or ""
        label = PrimaryTumour(value).label if value in PrimaryTumour.values else value
        return _("Primary tumour recorded at registration: %(tumour)s") % {"tumour": label}
    if derived_from == "randomisation_consent":
        reasons = list(basis.get("consent_reasons") or [])
        if not reasons:
            return str(
                _("Consent records: consent to randomisation (c) and (d) given, not withdrawn")
            )
        return _("Consent records: %(reasons)s") % {
            "reasons": " ".join(str(r).rstrip(".") + "." for r in describe(reasons)).rstrip(".")
        }
    if derived_from == "alive_at_screening":
        if basis.get("died_on"):
            return _("Died on %(date)s") % {"date": basis["died_on"]}
        return str(_("No death recorded"))
    return str(derived_from)
