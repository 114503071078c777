"""Demo data for the randomization app (called by ``manage.py seed_demo``; idempotent).

BLEND and its criteria come from data migrations (production has them too). Here: the
demo statistician gets the sequence permission, BLEND gets an active *test* sequence (the
trial stays *in set-up*: only a production sequence opens recruitment; a test installation
may randomise in set-up), and a few cohort demo participants are screened and randomised —
only when the cohort demo participants exist; otherwise this quietly does nothing more.
Criteria the stored data decide are not answered: the service derives them. The writes run
inside ``seed_demo``'s transaction (``.within``), not in transactions of their own.
"""

from __future__ import annotations

from io import TextIOBase

from django.contrib.auth.models import Permission
from django.utils import timezone

from cohort.models import Participant
from cohort.selectors import randomisation_consent
from core.models import User
from randomization import selectors, services
from randomization.models import Allocation, Environment, Screening, Sequence, SequenceStatus, Trial

SCREEN = 6  # participants screened
RANDOMISE = 4  # of which randomised (the eligible ones first)


def seed(stdout: TextIOBase) -> None:
    trial = Trial.objects.filter(code="BLEND").first()
    statistician = User.objects.filter(username="statistician").first()
    if trial is None or statistician is None:
        stdout.write("randomization demo: BLEND or the demo statistician missing, skipped")
        return
    permission = Permission.objects.get(codename="manage_sequences")
    statistician.user_permissions.add(permission)
    statistician = User.objects.get(pk=statistician.pk)  # fresh permission cache

    sequence = Sequence.objects.filter(
        trial=trial, environment=Environment.TEST, status=SequenceStatus.ACTIVE
    ).first()
    if sequence is None:
        sequence = services.sequence_generate.nested(
            by=statistician,
            trial=trial,
            method="permuted_blocks",
            environment=Environment.TEST,
            factors=["site"],
            block_sizes=[4, 6],
        )
        services.sequence_activate.nested(by=statistician, sequence=sequence)
        stdout.write(
            f"randomization demo: test sequence {sequence.pk} active ({sequence.fingerprint[:12]}…)"
        )

    nurses = {u.username: u for u in User.objects.filter(username__in=["nurse", "nurse2"])}
    # The demo nurse of each site (a site without one gets no screenings).
    by_site = {
        site: nurse
        for site, username in (("umcu", "nurse"), ("partner", "nurse2"))
        if (nurse := nurses.get(username)) is not None
    }
    candidates = list(
        Participant.objects.select_related("site")
        .filter(site__code__in=by_site)
        .order_by("registered_at")
    )
    # Alternate the sites so both demo nurses see screened and randomised participants.
    per_site: dict[str, list[Participant]] = {}
    for p in candidates:
        per_site.setdefault(p.site.code, []).append(p)
    candidates = (
        [p for group in zip(*per_site.values(), strict=False) for p in group]
        + [p for group in per_site.values() for p in group[min(map(len, per_site.values())) :]]
        if per_site
        else []
    )
    if not candidates:
        stdout.write("randomization demo: no cohort demo participants, no screenings")
        return
    if Screening.objects.filter(trial=trial, participant__in=candidates).exists():
        return  # already seeded

    criteria = selectors.criteria_current(trial=trial)
    eligible_answers = {c.code: ("yes" if c.kind == "inclusion" else "no") for c in criteria}
    today = timezone.localdate()
    screened = randomised = 0
    for participant in candidates[:SCREEN]:
        nurse = by_site[participant.site.code]
        # What the stored data decide (age, primary tumour, consent) is derived, not typed.
        derived = selectors.screening_evaluate(
            trial=trial, participant=participant, answers={}, on=today
        ).derived
        answers = {k: v for k, v in eligible_answers.items() if k not in derived}
        if screened == SCREEN - 1:
            answers["life_expectancy_under_3_months"] = "yes"  # one ineligible screening
        screening = services.screening_record.nested(
            by=nurse, trial=trial, participant=participant, screened_on=today, answers=answers
        )
        screened += 1
        if (
            screening.is_eligible
            and randomised < RANDOMISE
            and randomisation_consent(participant, today).allowed
            and selectors.current_environment() == Environment.TEST
        ):
            try:
                services.allocation_randomise.nested(by=nurse, trial=trial, participant=participant)
            except services.RandomisationError as exc:
                stdout.write(f"randomization demo: not randomised ({', '.join(exc.reasons)})")
                break
            randomised += 1
    stdout.write(
        f"randomization demo: {screened} screened, {randomised} randomised "
        f"({Allocation.objects.filter(trial=trial).count()} allocations in BLEND)"
    )
