"""Demo data for the crf app: the follow-up schedule of randomised demo participants.

Idempotent: anchoring twice on the same day 0 changes nothing. Skips quietly when no
demo participant has a start of treatment yet. Then one sweep sends whatever is due
(``make run`` writes the mail to EMAIL_FILE_PATH, readable at /crf/demo-mail/).
"""

from __future__ import annotations


def seed(stdout) -> None:
    try:
        from randomization.models import Allocation
    except ImportError:  # randomization not built yet
        return
    from django.db import transaction

    from core.audit import system_actor
    from crf import services
    from crf.models import Questionnaire

    allocations = [
        a
        for a in Allocation.objects.select_related("participant", "trial")
        if getattr(a, "day0", None)
    ]
    if not allocations:
        return
    anchored = 0
    with system_actor("seed_demo:crf"):
        for allocation in allocations:
            has_rows = Questionnaire.objects.filter(
                participant=allocation.participant, trial=allocation.trial
            ).exists()
            services.schedule_anchor(
                participant=allocation.participant,
                trial=allocation.trial,
                day0=allocation.day0,
                is_actual=allocation.treatment_start_actual is not None,
            )
            anchored += 0 if has_rows else 1
    stdout.write(f"crf: follow-up schedules for {anchored} new participant(s)\n")

    def sweep() -> None:
        # After the demo transaction commits: the sweep's claim-send-mark steps must each
        # commit on their own (that is what makes sending exactly-once).
        with system_actor("seed_demo:crf"):
            result = services.questionnaires_sweep()
        stdout.write(
            f"crf: sent {result.invitations} invitation(s) and {result.reminders} reminder(s)\n"
        )

    transaction.on_commit(sweep)
