"""The trial lifecycle (SPEC.md §3.3, issue: status follows what happens) as pure rules.

    set-up ──(a production sequence goes live)──▶ recruiting
    recruiting ──(close, with a reason)──▶ closed to recruitment
    closed to recruitment ──(reopen, with a reason)──▶ recruiting
    closed to recruitment ──(close, with a reason)──▶ closed
    set-up ──(abandon, with a reason)──▶ closed

Randomising (and screening) is possible only while recruiting. A *test* installation
(``RANDOMISATION_ENVIRONMENT=test``, test sequences) may also randomise while the trial is
in set-up: that is how a trial is tried out before go-live. Closed to recruitment and closed
refuse everywhere.
"""

from __future__ import annotations

SETUP, RECRUITING, RECRUITMENT_CLOSED, CLOSED = (
    "setup",
    "recruiting",
    "recruitment_closed",
    "closed",
)
STATUSES = (SETUP, RECRUITING, RECRUITMENT_CLOSED, CLOSED)
TEST, PRODUCTION = "test", "production"

# Transitions a statistician or administrator makes by hand (each with a reason).
MANUAL = {
    (RECRUITING, RECRUITMENT_CLOSED),
    (RECRUITMENT_CLOSED, RECRUITING),
    (RECRUITMENT_CLOSED, CLOSED),
    (SETUP, CLOSED),
}


def manual_targets(current: str) -> list[str]:
    """The statuses a person may move the trial to from ``current``, in lifecycle order."""
    return [s for s in STATUSES if (current, s) in MANUAL]


def transition_refusal(
    current: str, target: str, *, production_sequence_active: bool
) -> str | None:
    """Why ``current`` → ``target`` by hand is refused (a reason code), or ``None``."""
    if target not in STATUSES:
        return "unknown_status"
    if current == target:
        return "same_status"
    if target == RECRUITING and current == SETUP:
        return "recruiting_needs_go_live"
    if (current, target) not in MANUAL:
        return "transition_not_allowed"
    if target == RECRUITING and not production_sequence_active:
        return "no_active_production_sequence"
    return None


def status_after_activation(current: str, environment: str) -> str:
    """Activating a sequence: a production one opens recruitment of a trial in set-up."""
    if environment == PRODUCTION and current == SETUP:
        return RECRUITING
    return current


def recruiting_statuses(environment: str) -> list[str]:
    """The trial statuses in which ``environment`` may screen and randomise."""
    return [s for s in STATUSES if recruitment_refusal(s, environment) is None]


def recruitment_refusal(status: str, environment: str) -> str | None:
    """Why nobody can be screened or randomised now (a reason code), or ``None``."""
    if status == RECRUITING:
        return None
    if status == SETUP:
        return None if environment == TEST else "trial_in_setup"
    if status == RECRUITMENT_CLOSED:
        return "trial_closed"
    return "trial_ended"
