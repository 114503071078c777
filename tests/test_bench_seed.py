"""The pages bench's seed (bench/bench_pages.py): at its smallest size every list a
page shows is longer than the page, so every size renders the same number of rows."""

from __future__ import annotations

import pytest

from bench import bench_pages
from core.pagination import COUNT_CAP
from crf import selectors as crf_selectors
from crf.views import WORKLIST_PAGE_SIZE
from randomization import selectors as randomization_selectors
from randomization.models import AllocationCorrection
from randomization.views import (
    CORRECTIONS_PAGE_SIZE,
    OVERVIEW_ALLOCATIONS_PAGE_SIZE,
    OVERVIEW_SCREENINGS,
)

pytestmark = pytest.mark.django_db


def test_every_listed_kind_fills_more_than_a_page_at_the_smallest_size(blend):
    base = bench_pages._base()
    bench_pages._seed_rows(bench_pages.REFERENCE, base)
    users = base["users"]

    corrections = randomization_selectors.corrections_visible(
        user=users["investigator"], trial=blend
    )
    assert corrections.count() > CORRECTIONS_PAGE_SIZE
    # a quarter of them still open, the rest decided
    assert 0 < corrections.filter(status="proposed").count() < corrections.count() / 2
    for bucket in crf_selectors.WORKLIST_BUCKETS:
        listed = crf_selectors.worklist(user=users["data_manager"], bucket=bucket).count()
        assert listed > WORKLIST_PAGE_SIZE, bucket
    # the failed list is also longer than the tabs' capped count (which reads that many)
    failed = crf_selectors.worklist(user=users["data_manager"], bucket="failed").count()
    assert failed > COUNT_CAP
    nurse = users["nurse"]
    assert (
        randomization_selectors.allocation_overview(user=nurse, trial=blend).count()
        > OVERVIEW_ALLOCATIONS_PAGE_SIZE
    )
    assert (
        len(randomization_selectors.screening_recent(user=nurse, trial=blend, limit=10_000))
        > OVERVIEW_SCREENINGS
    )
    # 1 % of the allocations once that is more than the minimum
    assert AllocationCorrection.objects.count() >= 2 * bench_pages.CORRECTIONS_MIN  # per site
