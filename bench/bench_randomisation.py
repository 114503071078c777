"""Randomisation under load: 50 parallel requests through the service (real threads, one
database connection each, released together by a barrier) on a live test sequence.

Reports median / p95 latency per request and checks the result: 50 allocations, no
duplicate slot, no skipped position in any stratum, gapless trial numbers. Then 20
parallel requests for one participant: exactly one allocation.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

PARALLEL = 50
SAME_PARTICIPANT = 20


def _setup(n: int):
    from django.contrib.auth.models import Permission

    from cohort.models import ConsentFormVersion
    from core.audit import system_actor
    from core.models import Site, SiteMembership, User
    from randomization.models import Criterion, Trial
    from randomization.services import (
        current_environment,
        sequence_activate,
        sequence_generate,
    )

    with system_actor("bench"):
        sites = [
            Site.objects.get_or_create(code=code, defaults={"name": code})[0]
            for code in ("bench-rand-a", "bench-rand-b")
        ]
        nurses = []
        for site in sites:
            nurse, created = User.objects.get_or_create(username=f"bench-nurse-{site.code}")
            if created:
                SiteMembership.objects.create(user=nurse, site=site, role="nurse")
            nurses.append(nurse)
        stat, created = User.objects.get_or_create(username="bench-statistician")
        if created:
            SiteMembership.objects.create(user=stat, site=None, role="statistician")
            stat.user_permissions.add(Permission.objects.get(codename="manage_sequences"))
        stat = User.objects.get(pk=stat.pk)
        trial = Trial.objects.get(code="BLEND")
        sequence = sequence_generate(
            by=stat,
            trial=trial,
            method="permuted_blocks",
            environment=current_environment(),
            factors=["site"],
            block_sizes=[4, 6],
            slots_per_stratum=max(100, 2 * n),
        )
        sequence_activate(by=stat, sequence=sequence)
        form, _ = ConsentFormVersion.objects.get_or_create(
            code="bench-icf",
            version="1",
            language="nl",
            defaults={"effective_from": date(2020, 1, 1)},
        )
        answers = {
            c.code: ("yes" if c.kind == "inclusion" else "no")
            for c in Criterion.objects.filter(trial=trial, protocol_version=trial.protocol_version)
        }

    def make(count):
        return _participants(count, trial, sites, nurses, form, answers)

    return trial, sequence, make


def _participants(count, trial, sites, nurses, form, answers):
    from django.db import connection
    from django.utils import timezone

    from cohort.models import ConsentRecord, Participant
    from core.audit import system_actor
    from randomization.services import screening_record

    work = []
    with system_actor("bench"):
        for i in range(count):
            site, nurse = sites[i % 2], nurses[i % 2]
            with connection.cursor() as cur:
                cur.execute("SELECT nextval('cohort_study_number_seq')")
                (number,) = cur.fetchone()
            p = Participant.objects.create(
                study_number=f"PRE-{int(number):05d}",
                site=site,
                sex="female",
                year_of_birth=1960,
                primary_tumour="breast",
                referring_department="radiation_oncology",
                registered_by=nurse,
            )
            ConsentRecord.objects.bulk_create(
                [
                    ConsentRecord(
                        participant=p,
                        element=e,
                        answer=True,
                        given_on=timezone.localdate() - timedelta(days=5),
                        form_version=form,
                        mode="paper",
                        taken_by=nurse,
                    )
                    for e in ("cohort", "proms", "randomisation_offer", "control_uninformed")
                ]
            )
            screening_record(
                by=nurse,
                trial=trial,
                participant=p,
                screened_on=timezone.localdate(),
                answers=answers,
            )
            work.append((p, nurse))
    return work


def _parallel(fn, items) -> list:
    from django.db import connection, connections

    barrier = threading.Barrier(len(items))

    def run(item):
        try:
            # Like a server's persistent connections: connect first, then start the clock.
            connection.ensure_connection()
            barrier.wait(timeout=60)
            started = time.perf_counter()
            result = fn(item)
            return (time.perf_counter() - started) * 1000, result
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(run, items))


def run(ctx) -> dict:
    from core.audit import system_actor
    from randomization.models import Allocation, Stratum
    from randomization.services import allocation_randomise

    trial, sequence, make = _setup(PARALLEL)
    work, sequential_work, (single,) = make(PARALLEL), make(PARALLEL), make(1)

    def randomise(item):
        participant, nurse = item
        with system_actor("bench"):
            return allocation_randomise(by=nurse, trial=trial, participant=participant)

    results = _parallel(randomise, work)
    allocations = Allocation.objects.filter(participant__in=[p for p, _n in work])
    slots = list(allocations.values_list("slot_id", flat=True))
    skipped = 0
    for stratum in Stratum.objects.filter(sequence=sequence):
        positions = sorted(
            allocations.filter(stratum=stratum.key).values_list("slot__position", flat=True)
        )
        skipped += sum(1 for i, p in enumerate(positions, start=1) if p != i)
    numbers = sorted(
        int(n.rsplit("-", 1)[1]) for n in allocations.values_list("trial_number", flat=True)
    )

    # Service time without contention: the same number of requests one after another.
    sequential_ms = []
    for item in sequential_work:
        started = time.perf_counter()
        randomise(item)
        sequential_ms.append((time.perf_counter() - started) * 1000)

    same = _parallel(randomise, [single] * SAME_PARTICIPANT)
    same_count = Allocation.objects.filter(participant=single[0]).count()

    summary = ctx.summarise([ms for ms, _r in results])
    return {
        "parallel_requests": PARALLEL,
        "latency": summary,
        "sequential_latency": ctx.summarise(sequential_ms),
        "allocations": len(slots),
        "duplicate_slots": len(slots) - len(set(slots)),
        "skipped_positions": skipped,
        "trial_numbers_gapless": numbers == list(range(numbers[0], numbers[0] + len(numbers))),
        "same_participant": {
            "parallel_requests": SAME_PARTICIPANT,
            "allocations": same_count,
            "created": sum(1 for _ms, r in same if r.created),
            "latency": ctx.summarise([ms for ms, _r in same]),
        },
        "budget_p95_ms": 200,
        "within_budget": summary["p95_ms"] < 200,
    }
