"""The re-check page with a real Celery worker: a sponsor-wide data manager starts
crf.tasks.records_recheck for one form, the progress fragment (polled with htmx) follows
the run's RecheckRun row, and the counts show at the end; the polling stops once the run
has finished."""

from __future__ import annotations

import re
import time

import pytest
from django.urls import reverse

from crf import services

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_recheck_runs_in_the_worker_and_the_page_shows_progress_and_counts(
    client, celery_worker_process, active_sequence, randomised, site_a, nurse_a, monitor
):
    active_sequence()
    allocation = randomised(site_a, nurse_a, arm="control")
    for grade in (1, 2, 3):
        services.clinical_record_create(
            user=nurse_a, allocation=allocation, form_code="adverse_event", data={"grade": grade}
        )
    celery_worker_process()
    client.force_login(monitor)
    response = client.post(reverse("crf:review_recheck"), {"form_code": "adverse_event"})
    assert response.status_code == 302
    status_url = response["Location"]
    page = client.get(status_url).content.decode()
    assert 'data-testid="recheck-progress"' in page
    deadline = time.monotonic() + 60
    fragment = ""
    while time.monotonic() < deadline:
        fragment = client.get(status_url, HTTP_HX_REQUEST="true").content.decode()
        state = re.search(r'data-state="(\w+)"', fragment)[1]
        if state in ("done", "failed"):
            break
        assert f'hx-get="{status_url}" hx-trigger="every 1s"' in fragment  # still polling
        time.sleep(0.3)
    assert 'data-state="done"' in fragment, fragment
    assert "hx-trigger" not in fragment  # finished: no more polling
    result = re.search(r'data-testid="recheck-result">(.*?)</p>', fragment, re.S)[1]
    assert re.findall(r"\d+", result) == ["3", "0", "0"], result
    assert 'aria-valuenow="100"' in fragment
    # the run is logged: who asked, for which form, what it changed
    from crf.models import RecheckRun

    run = RecheckRun.objects.get()
    assert (run.requested_by, run.form_code, run.status, run.total) == (
        monitor,
        "adverse_event",
        "done",
        3,
    )
    listed = client.get(reverse("crf:review_recheck")).content.decode()
    assert f'data-run="{run.pk}"' in listed
