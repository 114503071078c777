"""Writes for schedules, questionnaires and CRFs.

The two functions below are the contract other apps call; the crf work fills them in.
"""

from __future__ import annotations

from datetime import date


def schedule_anchor(*, participant, trial, day0: date, is_actual: bool) -> None:
    """Create or re-anchor the follow-up schedule of ``participant`` in ``trial`` on day 0.

    Called by randomization when a planned or actual start of treatment is recorded.
    """


def questionnaires_cancel_pending(*, participant, reason: str) -> int:
    """Cancel every not-yet-sent questionnaire of ``participant`` at once; returns how many.

    Called by cohort when a questionnaire-stopping withdrawal or a death is recorded.
    """
    return 0
