"""Two people saving one clinical record at the same moment, on real PostgreSQL (two
threads, two connections, released together): exactly one save wins, the other is refused
with who changed the record, and the winner's data is what is stored."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from crf import services
from crf.models import ClinicalRecord
from tests.conftest import events

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_simultaneous_saves_of_one_revision_one_wins_one_is_refused(
    blend, active_sequence, randomised, site_a, nurse_a, make_user
):
    active_sequence()
    allocation = randomised(site_a, nurse_a, arm="control")
    second = make_user("nurse", site_a, username="second_nurse")
    record = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="admission", data={"icu": False}
    )
    barrier = threading.Barrier(2)

    def save(args):
        user, icu = args
        try:
            barrier.wait(timeout=30)
            services.clinical_record_update(user=user, record=record, revision=1, data={"icu": icu})
            return ("saved", user.username, icu)
        except services.RecordChanged as refusal:
            return ("refused", user.username, refusal.changed_by)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(save, [(nurse_a, True), (second, None)]))
    outcomes = sorted(r[0] for r in results)
    assert outcomes == ["refused", "saved"], results
    (winner,) = [r for r in results if r[0] == "saved"]
    (loser,) = [r for r in results if r[0] == "refused"]
    assert loser[2] == winner[1]  # the refusal names the one who saved
    stored = ClinicalRecord.objects.get(pk=record.pk)
    assert stored.revision == 2 and stored.updated_by.username == winner[1]
    assert stored.data.get("icu") is winner[2] or ("icu" not in stored.data and winner[2] is None)
    # one insert and exactly one update on the audit trail
    assert sorted(
        events(ClinicalRecord, pgh_obj_id=record.pk).values_list("pgh_label", flat=True)
    ) == [
        "insert",
        "update",
    ]


def test_simultaneous_saves_of_two_forms_of_one_participant_both_land(
    blend, active_sequence, randomised, site_a, nurse_a, make_user
):
    """Both refresh the participant's expected forms: they queue on the participant's row
    (no deadlock, no lost row) and the cache ends as if they had run one after the other."""
    active_sequence()
    allocation = randomised(site_a, nurse_a, arm="control")
    second = make_user("nurse", site_a, username="second_nurse")
    admission = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="admission", data={}
    )
    baseline = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="baseline_clinical", data={}
    )
    barrier = threading.Barrier(2)

    def save(args):
        user, record, data = args
        try:
            barrier.wait(timeout=30)
            return services.clinical_record_update(
                user=user, record=record, revision=1, data=data
            ).revision
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        revisions = list(
            pool.map(
                save,
                [(nurse_a, admission, {"icu": True}), (second, baseline, {"worst_pain": 4})],
            )
        )
    assert revisions == [2, 2]
    from crf.models import FormExpectation

    statuses = dict(
        FormExpectation.objects.filter(participant=allocation.participant).values_list(
            "form_code", "status"
        )
    )
    assert statuses["admission"] == "draft" and statuses["baseline_clinical"] == "draft"
