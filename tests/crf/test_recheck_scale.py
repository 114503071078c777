"""A rule change re-checked over 10,000 records (issue 12 acceptance): the SBRT dose range
of the protocol moves from 8-24 Gy to 10-25 Gy per fraction; the re-run through a real
Celery worker reports its progress while it runs, opens a query on every record now
outside the range and closes the ones now inside it, matching a count made directly from
the data; a second run changes nothing."""

from __future__ import annotations

import copy
import time
from datetime import timedelta

import pghistory
import pytest
from django.utils import timezone

from core.refusals import NotAllowed
from crf import instruments, services
from crf.definition_store import current_definition
from crf.models import ClinicalRecord, DataQuery, FormDefinition, QueryMessage, RecheckRun
from tests.conftest import events

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PARTICIPANTS = 20
PER_PARTICIPANT = 500  # 10,000 SBRT courses
# Gy per fraction of the courses, in turn: 9 is low under the new rule only, 25 high under
# the old rule only, 26 high under both
PER_FRACTION = (9, 12, 16, 18, 21, 22, 25, 26)


def _course(k: int, day: str) -> dict:
    fractions = 1 + k % 2  # a course is at most 60 Gy
    return {
        "started_at": f"{day}T09:30",
        "targets": [
            {"levels": ["T8"], "dose_gy": PER_FRACTION[k % 8] * fractions, "fractions": fractions}
        ],
        "site_sparing": False,
        "completed_as_planned": True,
        "deviation": False,
    }


def _seed(allocations, nurse) -> list[ClinicalRecord]:
    """The courses through the tracked path (the audit trigger fires per row), validated as
    the save service would; no check has run on them yet."""
    form = instruments.load("sbrt_delivery")
    definition = current_definition("sbrt_delivery")
    day = (timezone.localdate() - timedelta(days=30)).isoformat()
    now = timezone.now()
    rows = []
    for a_index, allocation in enumerate(allocations):
        for i in range(PER_PARTICIPANT):
            data = instruments.compute(form, _course(a_index * PER_PARTICIPANT + i, day))
            assert not instruments.validate(form, data, complete=True)
            rows.append(
                ClinicalRecord(
                    trial_id=allocation.trial_id,
                    participant_id=allocation.participant_id,
                    form_code="sbrt_delivery",
                    occurrence=str(i + 1),
                    definition=definition,
                    data=data,
                    status="complete",
                    revision=1,
                    created_by=nurse,
                    updated_by=nurse,
                    created_at=now,
                    updated_at=now,
                    completed_at=now,
                )
            )
    with pghistory.context(actor="test-seed"):
        return ClinicalRecord.objects.bulk_create(rows, batch_size=1000)


def _outside(low: float, high: float) -> set[int]:
    """The records whose dose per fraction lies outside [low, high], counted from the data."""
    return {
        pk
        for pk, targets in ClinicalRecord.objects.filter(form_code="sbrt_delivery").values_list(
            "pk", "data__targets"
        )
        if any(not low <= t["dose_gy"] / t["fractions"] <= high for t in targets)
    }


def _open_check_queries() -> set[int]:
    return set(
        DataQuery.objects.filter(origin="check", check_name="dose_per_fraction_in_range")
        .exclude(status="closed")
        .values_list("record_id", flat=True)
    )


def _new_rule(low: float, high: float) -> FormDefinition:
    """A new version of the SBRT form with the range changed (doses are data, not code)."""
    shipped = current_definition("sbrt_delivery")
    content = copy.deepcopy(shipped.content)
    content["version"] = "test-range-10-25"
    for check in content["checks"]:
        if isinstance(check, dict) and check["name"] == "dose_per_fraction_in_range":
            check.update(min_gy=low, max_gy=high)
    return FormDefinition.objects.create(
        code="sbrt_delivery",
        version=content["version"],
        kind="clinical",
        occurs=shipped.occurs,
        title=shipped.title,
        content=content,
        sha256="1" * 64,
    )


def _run_with_progress(data_manager) -> tuple[RecheckRun, list[tuple[int, int]]]:
    """Ask for the re-check as the data manager's screen does and follow its progress row
    while a real worker runs it."""
    run = services.recheck_request(user=data_manager, form_code="sbrt_delivery")
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if (
            run.status == "running"
            and run.total
            and (not seen or seen[-1] != (run.done, run.total))
        ):
            seen.append((run.done, run.total))
        if run.status in ("done", "failed"):
            break
        time.sleep(0.05)
    assert run.status == "done", (run.status, run.error)
    return run, seen


def _counts(run: RecheckRun) -> dict:
    return {"records": run.total, "opened": run.opened, "closed": run.closed}


def test_a_rule_change_rechecked_over_ten_thousand_records(
    active_sequence, randomised, site_a, nurse_a, make_user, monitor, celery_worker_process
):
    active_sequence()
    allocations = [randomised(site_a, nurse_a, arm="intervention") for _ in range(PARTICIPANTS)]
    records = _seed(allocations, nurse_a)
    assert len(records) == 10_000 and DataQuery.objects.count() == 0
    assert events(ClinicalRecord).filter(pgh_obj_id__in=[r.pk for r in records]).count() == 10_000
    data_manager = monitor  # sponsor-wide: the re-run covers every site's records
    with pytest.raises(NotAllowed):  # a site's data manager may not re-run every site's
        services.recheck_request(user=make_user("data_manager", site_a), form_code="")
    celery_worker_process()

    # the shipped rule (8-24 Gy) over records that were never checked
    first, _seen = _run_with_progress(data_manager)
    old = _outside(8, 24)
    assert len(old) == 2_500  # 25 and 26 Gy per fraction
    assert _counts(first) == {"records": 10_000, "opened": len(old), "closed": 0}
    assert first.requested_by == data_manager and first.finished_at >= first.started_at
    assert _open_check_queries() == old

    # the rule changes: the records follow the new version of the form
    ClinicalRecord.objects.filter(form_code="sbrt_delivery").update(definition=_new_rule(10, 25))
    second, seen = _run_with_progress(data_manager)
    new = _outside(10, 25)
    assert len(new) == 2_500  # 9 and 26 Gy per fraction
    assert _counts(second) == {
        "records": 10_000,
        "opened": len(new - old),  # 9 Gy: 1,250
        "closed": len(old - new),  # 25 Gy: 1,250
    }
    assert len(new - old) == len(old - new) == 1_250
    assert _open_check_queries() == new
    # every step of a query is on its thread and on the audit trail
    closed = DataQuery.objects.filter(record_id__in=old - new, status="closed")
    assert closed.count() == 1_250
    assert QueryMessage.objects.filter(query__in=closed, action="resolved").count() == 1_250
    assert events(DataQuery).filter(pgh_obj_id__in=closed.values("pk")).count() == 2 * 1_250
    # progress was visible while it ran, in order, up to every record
    assert len(seen) >= 3, seen
    assert [s[1] for s in seen] == [10_000] * len(seen)
    assert [s[0] for s in seen] == sorted(s[0] for s in seen) and seen[0][0] < 10_000

    # one run per form at a time
    busy = RecheckRun.objects.create(form_code="sbrt_delivery", status="running", total=10_000)
    with pytest.raises(services.RecheckBusy):
        services.recheck_request(user=data_manager, form_code="sbrt_delivery")
    RecheckRun.objects.filter(pk=busy.pk).update(status="failed", error="test")

    # idempotent: a second run of the same rule changes nothing
    queries = DataQuery.objects.count()
    trail = events(DataQuery).count()
    again = services.records_recheck(form_code="sbrt_delivery")
    assert again.as_dict() == {"records": 10_000, "opened": 0, "closed": 0}
    assert (DataQuery.objects.count(), events(DataQuery).count()) == (queries, trail)
