"""Study numbers under 20 simultaneous registrations: unique, from the sequence, none lost."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from cohort.models import Identity, Participant
from tests.cohort.conftest import registration_data


@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_registrations_get_twenty_unique_numbers(nurse_a, site_a):
    from cohort.services import participant_register

    n = 20
    barrier = threading.Barrier(n)
    numbers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    payloads = [registration_data(site_a, hospital_number=f"PAR{i:04d}") for i in range(n)]

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            p = participant_register(by=nurse_a, **payloads[i])
            with lock:
                numbers.append(p.study_number)
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(numbers) == n and len(set(numbers)) == n
    stored = list(Participant.objects.values_list("study_number", flat=True))
    assert sorted(stored) == sorted(numbers)
    assert Identity.objects.count() == n
    ints = sorted(int(s[4:]) for s in numbers)
    assert ints == list(range(ints[0], ints[0] + n))  # consecutive: none skipped


@pytest.mark.django_db(transaction=True)
def test_the_same_hospital_number_registered_twice_at_once_gives_one_participant(
    nurse_a, investigator_a, site_a
):
    from cohort.services import DuplicateHospitalNumber, participant_register

    barrier = threading.Barrier(2)
    outcomes: list[object] = []
    lock = threading.Lock()

    def worker(user) -> None:
        try:
            barrier.wait(timeout=30)
            result: object = participant_register(
                by=user, **registration_data(site_a, hospital_number="RACE0001")
            )
        except DuplicateHospitalNumber as exc:
            result = exc
        except BaseException as exc:  # noqa: BLE001
            result = exc
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(u,)) for u in (nurse_a, investigator_a)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    made = [o for o in outcomes if isinstance(o, Participant)]
    refused = [o for o in outcomes if isinstance(o, DuplicateHospitalNumber)]
    assert len(made) == 1 and len(refused) == 1, outcomes
    assert refused[0].existing_study_number == made[0].study_number
    assert Participant.objects.count() == 1
