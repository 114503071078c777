"""Human-readable text for the machine-readable refusal and ineligibility reason codes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.utils.translation import gettext_lazy as _

LABELS = {
    "not_screened": _("No screening recorded for this trial."),
    "not_eligible": _("The latest screening is not eligible."),
    "screening_outdated_protocol": _(
        "The latest screening used an earlier protocol version; screen again."
    ),
    "trial_closed": _("The trial is closed to recruitment."),
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
