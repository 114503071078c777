"""Concurrency on real PostgreSQL: real threads (each with its own connection) released
together by a barrier, and real HTTP requests against the live server."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from knox.models import AuthToken

from randomization import services
from randomization.models import Allocation, Slot, Stratum
from tests.randomization.conftest import events

pytestmark = pytest.mark.django_db(transaction=True)


def _run_parallel(fn, items):
    barrier = threading.Barrier(len(items))

    def work(item):
        try:
            barrier.wait(timeout=30)
            return fn(item)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(work, items))


def _assert_contiguous_and_matching(sequence):
    for stratum in Stratum.objects.filter(sequence=sequence):
        positions = sorted(
            Allocation.objects.filter(sequence=sequence, stratum=stratum.key).values_list(
                "slot__position", flat=True
            )
        )
        assert positions == list(range(1, len(positions) + 1)), stratum.key
        assert stratum.used == len(positions)
    # Every allocation got exactly the arm of its slot.
    for allocation in Allocation.objects.select_related("slot"):
        assert allocation.arm_id == allocation.slot.arm_id


def test_50_parallel_randomisations_take_50_distinct_contiguous_slots(
    active_sequence, eligible_participant, nurse_a, nurse_b, site_a, site_b, blend
):
    sequence = active_sequence(slots_per_stratum=60)
    work = [
        (eligible_participant(site, nurse), nurse)
        for site, nurse in [(site_a, nurse_a), (site_b, nurse_b)] * 25
    ]

    def randomise(item):
        participant, nurse = item
        return services.allocation_randomise(by=nurse, trial=blend, participant=participant)

    results = _run_parallel(randomise, work)
    assert all(r.created for r in results)
    assert Allocation.objects.count() == 50
    assert len({r.allocation.slot_id for r in results}) == 50
    numbers = sorted(Allocation.objects.values_list("trial_number", flat=True))
    assert numbers == [f"BLEND-{n:03d}" for n in range(1, 51)]
    assert Counter(Allocation.objects.values_list("stratum", flat=True)) == {
        "site=site-a": 25,
        "site=site-b": 25,
    }
    _assert_contiguous_and_matching(sequence)
    assert events(Allocation, pgh_label="insert").count() == 50


def test_20_parallel_requests_for_one_participant_give_one_allocation(
    active_sequence, eligible_participant, nurse_a, investigator_a, site_a, blend
):
    sequence = active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    users = [nurse_a, investigator_a] * 10

    def randomise(user):
        return services.allocation_randomise(by=user, trial=blend, participant=participant)

    results = _run_parallel(randomise, users)
    assert Allocation.objects.count() == 1
    assert sum(r.created for r in results) == 1
    assert {r.allocation.pk for r in results} == {Allocation.objects.get().pk}
    assert events(Allocation).count() == 1
    assert Stratum.objects.get(sequence=sequence, key="site=site-a").used == 1
    assert Slot.objects.filter(sequence=sequence, allocation__isnull=False).count() == 1


def _token(user) -> str:
    return AuthToken.objects.create(user)[1]


def _post(url: str, token: str, body: dict) -> tuple[int, dict]:
    """POST with a client's network retry: the test server's listen backlog is small, so a
    burst of connections can be reset; retrying is exactly what idempotency must survive."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    for attempt in range(8):
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - local live server
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except (ConnectionError, urllib.error.URLError):
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("server unreachable")


def test_parallel_http_randomisations_against_the_live_server(
    live_server, active_sequence, eligible_participant, nurse_a, nurse_b, site_a, site_b, blend
):
    """30 different participants and 10 repeats of one participant, all at once over HTTP."""
    sequence = active_sequence(slots_per_stratum=60)
    tokens = {nurse_a.pk: _token(nurse_a), nurse_b.pk: _token(nurse_b)}
    url = f"{live_server.url}/api/v1/trials/BLEND/randomisations/"
    different = [
        (eligible_participant(site, nurse), nurse)
        for site, nurse in [(site_a, nurse_a), (site_b, nurse_b)] * 15
    ]
    same = eligible_participant(site_a, nurse_a)
    work = [(p.study_number, tokens[n.pk]) for p, n in different] + [
        (same.study_number, tokens[nurse_a.pk])
    ] * 10

    results = _run_parallel(lambda item: _post(url, item[1], {"participant": item[0]}), work)
    statuses = Counter(status for status, _body in results)
    # One 201 per participant; every repeat (or retried request) a 200 with the same body.
    assert statuses[201] == 31 and statuses[200] == 9, results
    assert Allocation.objects.count() == 31
    bodies_same = [
        body
        for (status, body), item in zip(results, work, strict=True)
        if item[0] == same.study_number
    ]
    assert len({json.dumps(b, sort_keys=True) for b in bodies_same}) == 1
    assert len(set(Allocation.objects.values_list("slot_id", flat=True))) == 31
    _assert_contiguous_and_matching(sequence)
    # Every insert event is attributed to the nurse whose token made the request.
    for event in events(Allocation, pgh_label="insert").select_related("pgh_context"):
        assert event.pgh_context.metadata["user"] == event.randomised_by_id


def test_parallel_saves_of_one_offer_give_one_offer_and_no_error(
    active_sequence, randomised, nurse_a, site_a
):
    from django.utils import timezone

    from randomization.models import InterventionOffer

    active_sequence()
    allocation = randomised(site_a, nurse_a, arm="intervention")
    today = timezone.localdate()

    def save(_i):
        return services.offer_decision_record(
            by=nurse_a, allocation=allocation, offered_on=today, decision="pending"
        )

    offers = _run_parallel(save, list(range(10)))
    assert InterventionOffer.objects.count() == 1
    assert {o.pk for o in offers} == {InterventionOffer.objects.get().pk}
