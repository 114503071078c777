"""Parallel randomisations in different strata at once (both sites, each with several
sexes): the stratum locks do not serialise them, so only the trial row's lock keeps the
trial numbers gapless. The randomisation statement takes the next number by updating the
trial row's counter (which locks the row until the statement commits). Replaced by a
count of the allocations (no lock), these tests fail: two strata read the same count and
one request fails on the unique trial number (seen: "Key (trial_number)=(BLEND-014)
already exists", in both tests here and three in ``test_concurrency.py``)."""

from __future__ import annotations

from collections import Counter

import pytest

from randomization import services
from randomization.models import Allocation, Stratum
from tests.randomization.conftest import events
from tests.randomization.test_concurrency import _assert_contiguous_and_matching, _run_parallel

pytestmark = pytest.mark.django_db(transaction=True)

SEXES = ("female", "male", "other", "unknown")


def _randomise(item):
    participant, nurse, trial = item
    return services.allocation_randomise(by=nurse, trial=trial, participant=participant)


def test_parallel_randomisations_across_strata_get_gapless_trial_numbers(
    active_sequence, eligible_participant, nurse_a, nurse_b, site_a, site_b, blend
):
    """48 participants in 8 strata (2 sites × 4 sexes), released together: 48 allocations,
    trial numbers 1..48 each once, every stratum's slots taken in order."""
    sequence = active_sequence(factors=["site", "sex"], slots_per_stratum=12)
    work = [
        (eligible_participant(site, nurse, sex=sex), nurse, blend)
        for _round in range(6)
        for site, nurse in ((site_a, nurse_a), (site_b, nurse_b))
        for sex in SEXES
    ]

    results = _run_parallel(_randomise, work)
    assert all(r.created for r in results)
    numbers = sorted(Allocation.objects.values_list("trial_number", flat=True))
    assert numbers == [f"BLEND-{n:03d}" for n in range(1, 49)]
    assert Counter(Allocation.objects.values_list("stratum", flat=True)) == {
        f"site={site}|sex={sex}": 6 for site in ("site-a", "site-b") for sex in SEXES
    }
    _assert_contiguous_and_matching(sequence)
    assert sum(s.used for s in Stratum.objects.filter(sequence=sequence)) == 48
    assert events(Allocation, pgh_label="insert").count() == 48


def test_parallel_minimised_and_repeated_randomisations_across_sites(
    active_sequence, eligible_participant, nurse_a, nurse_b, site_a, site_b, blend
):
    """Minimisation (one lock row for the trial) with both sites at once, and every
    participant asked for twice in the same burst: one allocation each, gapless numbers,
    and the minimisation figures stored for each."""
    from randomization.models import MinimisationDecision

    active_sequence(method="minimisation", factors=["site", "sex"], block_sizes=[])
    participants = [
        (eligible_participant(site, nurse, sex=sex), nurse, blend)
        for site, nurse in ((site_a, nurse_a), (site_b, nurse_b))
        for sex in SEXES[:2]
        for _ in range(5)
    ]

    results = _run_parallel(_randomise, participants * 2)
    assert sum(r.created for r in results) == 20
    assert Allocation.objects.count() == 20
    numbers = sorted(Allocation.objects.values_list("trial_number", flat=True))
    assert numbers == [f"BLEND-{n:03d}" for n in range(1, 21)]
    assert MinimisationDecision.objects.count() == 20
    # The draws are the sequence's stream in order: positions 0..19, each once.
    assert Stratum.objects.get(key="all").used == 20
