"""Data locks (issue 12 groundwork): a locked record, participant or trial is read-only for
every record service; unlocking needs a reason; only data managers lock (the trial only a
sponsor-wide one); every step audited."""

from __future__ import annotations

import pytest

from core.refusals import NotAllowed
from crf import services
from crf.models import ClinicalRecord, DataLock
from tests.conftest import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a, arm="control")


@pytest.fixture
def site_dm(make_user, site_a):
    return make_user("data_manager", site_a, username="dm_site_a")


@pytest.fixture
def entry(allocation, nurse_a):
    return services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="adverse_event", data={"grade": 2}
    )


def _lock(level, *, user, allocation, entry):
    return services.data_lock(
        user=user,
        level=level,
        trial=allocation.trial,
        participant=allocation.participant,
        record=entry if level == "record" else None,
        reason="database lock for the interim analysis",
    )


@pytest.mark.parametrize("level", ["record", "participant", "trial"])
def test_every_write_is_refused_under_a_lock_and_allowed_after_unlock(
    level, allocation, entry, nurse_a, site_dm, monitor
):
    lock = _lock(
        level, user=monitor if level == "trial" else site_dm, allocation=allocation, entry=entry
    )
    before = (ClinicalRecord.objects.count(), events(ClinicalRecord).count())
    with pytest.raises(services.RecordLocked) as exc:
        services.clinical_record_update(user=nurse_a, record=entry, revision=1, data={"grade": 3})
    assert exc.value.reasons == [f"locked_{level}"] and exc.value.status_code == 409
    with pytest.raises(services.RecordLocked):
        services.clinical_record_void(user=nurse_a, record=entry, revision=1, reason="error")
    if level != "record":  # a record lock leaves the participant's other forms open
        with pytest.raises(services.RecordLocked):
            services.clinical_record_create(
                user=nurse_a, allocation=allocation, form_code="admission", data={}
            )
        with pytest.raises(services.RecordLocked):
            services.clinical_record_not_done(
                user=nurse_a,
                allocation=allocation,
                form_code="followup_clinical",
                occurrence="week4",
                reason="missed",
            )
    assert (ClinicalRecord.objects.count(), events(ClinicalRecord).count()) == before
    with pytest.raises(services.LockError):
        services.data_unlock(user=monitor, lock=lock, reason=" ")
    services.data_unlock(user=monitor, lock=lock, reason="query answered after the lock")
    record = services.clinical_record_update(
        user=nurse_a, record=entry, revision=1, data={"grade": 3}
    )
    assert record.data["grade"] == 3
    lock.refresh_from_db()
    assert lock.unlocked_by == monitor and lock.unlock_reason.startswith("query answered")
    assert list(events(DataLock, pgh_obj_id=lock.pk).values_list("pgh_label", flat=True)) == [
        "insert",
        "update",
    ]


def test_a_record_lock_leaves_the_other_forms_writable(allocation, entry, nurse_a, site_dm):
    _lock("record", user=site_dm, allocation=allocation, entry=entry)
    other = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="admission", data={}
    )
    assert other.pk


def test_who_may_lock(allocation, entry, nurse_a, site_dm, make_user, site_b, monitor):
    with pytest.raises(NotAllowed):
        _lock("participant", user=nurse_a, allocation=allocation, entry=entry)
    with pytest.raises(NotAllowed):
        _lock(
            "participant",
            user=make_user("data_manager", site_b),
            allocation=allocation,
            entry=entry,
        )
    with pytest.raises(NotAllowed):  # the whole trial: sponsor-wide only
        _lock("trial", user=site_dm, allocation=allocation, entry=entry)
    assert DataLock.objects.count() == 0
    _lock("trial", user=monitor, allocation=allocation, entry=entry)
    with pytest.raises(services.LockError) as exc:
        _lock("trial", user=monitor, allocation=allocation, entry=entry)
    assert exc.value.reasons == ["already_locked"]


def test_signing_is_independent_of_locks(allocation, nurse_a, site_dm, investigator_a):
    from django.test import RequestFactory

    from tests import factories

    done = services.clinical_record_create(
        user=nurse_a,
        allocation=allocation,
        form_code="end_of_study",
        data={"ended_on": "2026-11-01", "reason": "completed"},
        complete=True,
    )
    _lock("participant", user=site_dm, allocation=allocation, entry=done)
    signature = services.record_sign(
        user=investigator_a,
        record=done,
        password=factories.PASSWORD,
        request=RequestFactory().post("/", REMOTE_ADDR="10.0.0.8"),
        revision=1,
    )
    assert signature.is_valid
