"""Demo data for the crf app: the follow-up schedule of randomised demo participants.

For a demo allocation without a start of treatment, a planned day 0 three days after
randomisation is recorded through randomization's own service (which anchors the
schedule, as in real use); allocations with a day 0 are (re-)anchored directly, which is
idempotent. Skips quietly when nobody is randomised. After the demo transaction commits,
one sweep sends what is due (``make run`` writes the mail to EMAIL_FILE_PATH, readable at
/crf/demo-mail/); beat does the rest every two minutes.
"""

from __future__ import annotations

from datetime import timedelta
from io import TextIOBase
from typing import TYPE_CHECKING

from core.audit import system_actor

if TYPE_CHECKING:  # pragma: no cover
    from core.models import User
    from randomization.models import Allocation


def _site_nurse(site_id: int) -> User | None:
    from core.models import SiteMembership

    membership = (
        SiteMembership.objects.filter(site_id=site_id, role="nurse")
        .select_related("user")
        .order_by("pk")
        .first()
    )
    return membership.user if membership else None


def _demo_baseline(assessed_on: str) -> dict[str, object]:
    return {
        "assessed_on": assessed_on,
        "primary_tumour": "breast",
        "index_levels": ["T10"],
        "sins_location": "semi_rigid",
        "sins_pain": "mechanical",
        "sins_lesion": "lytic",
        "sins_alignment": "normal",
        "sins_collapse": "under_50",
        "sins_posterolateral": "unilateral",
        "bilsky": "1b",
        "asia": "E",
        "who_ps": 1,
        "worst_pain": 7,
        "uses_analgesics": False,
        "systemic_therapy": False,
    }


def _seed_clinical_forms(allocations: list[Allocation]) -> int:
    """A few clinical forms per demo participant, entered by the site's nurse through the
    services: a completed baseline (SINS computed), an admission draft, and for the first
    participant an adverse event, so the form grid and the logs show something."""
    from django.utils import timezone

    from crf import services
    from crf.models import ClinicalRecord

    entered = 0
    for index, allocation in enumerate(allocations):
        nurse = _site_nurse(allocation.site_id)
        if nurse is None or allocation.status != "active":
            continue
        if ClinicalRecord.objects.filter(participant=allocation.participant).exists():
            continue
        day = timezone.localdate(allocation.randomised_at).isoformat()
        with system_actor("seed_demo:crf"):
            services.clinical_record_create.nested(
                user=nurse,
                allocation=allocation,
                form_code="baseline_clinical",
                data=_demo_baseline(day),
                complete=True,
            )
            services.clinical_record_create.nested(
                user=nurse, allocation=allocation, form_code="admission", data={"icu": False}
            )
            entered += 2
            if index == 0:
                services.clinical_record_create.nested(
                    user=nurse,
                    allocation=allocation,
                    form_code="adverse_event",
                    data={"term": "10053692", "grade": 1, "onset_on": day, "serious": False},
                )
                entered += 1
    return entered


def seed(stdout: TextIOBase) -> None:
    try:
        from randomization.models import Allocation
    except ImportError:  # randomization not built yet
        return
    from django.db import transaction
    from django.utils import timezone

    from crf import services
    from crf.models import Questionnaire

    allocations = list(Allocation.objects.select_related("participant", "trial", "site"))
    if not allocations:
        return
    anchored = 0
    with system_actor("seed_demo:crf"):
        for allocation in allocations:
            if Questionnaire.objects.filter(
                participant=allocation.participant, trial=allocation.trial
            ).exists():
                continue
            day0 = getattr(allocation, "day0", None)
            if day0:
                services.schedule_anchor(
                    participant=allocation.participant,
                    trial=allocation.trial,
                    day0=day0,
                    is_actual=allocation.treatment_start_actual is not None,
                )
                anchored += 1
                continue
            nurse = _site_nurse(allocation.site_id)
            if nurse is None:
                continue
            from randomization.services import treatment_start_set

            planned = timezone.localdate(allocation.randomised_at) + timedelta(days=3)
            try:
                with transaction.atomic():
                    treatment_start_set.nested(by=nurse, allocation=allocation, planned=planned)
            except Exception as exc:  # noqa: BLE001 - demo data: report and go on
                stdout.write(f"crf demo: no planned day 0 for {allocation.pk}: {exc}\n")
                continue
            anchored += 1
    forms = _seed_clinical_forms(allocations)
    if forms:
        stdout.write(f"crf demo: {forms} clinical form(s) entered\n")
    if not anchored:
        return
    stdout.write(f"crf demo: follow-up schedules for {anchored} randomised participant(s)\n")

    def sweep() -> None:
        # After the demo transaction commits: the sweep's claim-send-mark steps must each
        # commit on their own (that is what makes sending exactly-once).
        with system_actor("seed_demo:crf"):
            result = services.questionnaires_sweep()
        stdout.write(
            f"crf demo: sent {result.invitations} invitation(s), {result.reminders} reminder(s)\n"
        )

    transaction.on_commit(sweep)
