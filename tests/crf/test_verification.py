"""Source data verification (issue 12 groundwork): a monitor marks items verified; a later
change of a verified item clears its mark only; other items stay verified."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.refusals import NotAllowed
from crf import instruments, services
from crf.models import SourceVerification
from tests.conftest import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def admission(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    allocation = randomised(site_a, nurse_a, arm="control")
    day = timezone.localdate() - timedelta(days=5)
    return services.clinical_record_create(
        user=nurse_a,
        allocation=allocation,
        form_code="admission",
        data={
            "admitted_on": day.isoformat(),
            "discharged_on": (day + timedelta(days=3)).isoformat(),
            "icu": False,
            "discharge_destination": "home",
        },
        complete=True,
    )


@pytest.fixture
def site_monitor(make_user, site_a):
    return make_user("data_manager", site_a, username="monitor_site_a")


def test_key_items_by_default_and_a_change_clears_only_the_changed_items_mark(
    admission, site_monitor, nurse_a
):
    key = list(instruments.load("admission").sdv)
    assert key, "the admission form names its key items"
    marks = services.record_verify(user=site_monitor, record=admission, revision=1)
    assert sorted(m.item for m in marks) == sorted(key)
    services.record_verify(
        user=site_monitor, record=admission, revision=1, items=["icu", "admitted_on"]
    )
    verified = set(
        SourceVerification.objects.filter(record=admission, cleared_at__isnull=True).values_list(
            "item", flat=True
        )
    )
    assert verified == set(key) | {"icu", "admitted_on"}  # no duplicate marks
    services.clinical_record_update(
        user=nurse_a, record=admission, revision=1, data={"icu": True}, reason="source: ICU night"
    )
    still = set(
        SourceVerification.objects.filter(record=admission, cleared_at__isnull=True).values_list(
            "item", flat=True
        )
    )
    assert still == verified - {"icu"}
    cleared = SourceVerification.objects.get(record=admission, item="icu")
    assert cleared.cleared_by == nurse_a and cleared.cleared_at is not None
    assert events(SourceVerification, pgh_obj_id=cleared.pk).count() == 2


def test_who_verifies_what(admission, nurse_a, make_user, site_b, site_monitor):
    with pytest.raises(NotAllowed):
        services.record_verify(user=nurse_a, record=admission, revision=1)
    with pytest.raises(NotAllowed):
        services.record_verify(user=make_user("data_manager", site_b), record=admission, revision=1)
    with pytest.raises(services.RecordInvalid):
        services.record_verify(user=site_monitor, record=admission, revision=1, items=["nope"])
    with pytest.raises(services.RecordChanged):
        services.record_verify(user=site_monitor, record=admission, revision=7)
    assert SourceVerification.objects.count() == 0


def test_a_records_history_interleaves_changes_signatures_verifications_and_queries(
    admission, site_monitor, nurse_a, investigator_a
):
    from django.test import RequestFactory

    from crf.selectors import record_history
    from tests import factories

    services.record_verify(user=site_monitor, record=admission, revision=1)
    services.record_sign(
        user=investigator_a,
        record=admission,
        password=factories.PASSWORD,
        request=RequestFactory().post("/", REMOTE_ADDR="10.0.0.9"),
        revision=1,
    )
    query = services.query_raise(user=site_monitor, record=admission, item="icu", text="ICU?")
    services.query_answer(user=nurse_a, query=query, text="one night")
    services.clinical_record_update(
        user=nurse_a, record=admission, revision=1, data={"icu": True}, reason="query answered"
    )
    history = record_history(user=site_monitor, record=admission)
    kinds = [e.kind for e in history]
    assert kinds[0] == "change" and kinds.count("query") == 2
    assert (
        kinds.index("verification")
        < kinds.index("signature")
        < kinds.index("signature_invalidated")
    )
    last_change = [e for e in history if e.kind == "change"][-1]
    assert last_change.changes["data.icu"] == (False, True) and last_change.text == "query answered"
    assert record_history(user=nurse_a, record=admission) == []  # nurses do not read trails


def test_review_worklists(admission, site_monitor, nurse_a, investigator_a, investigator_b):
    from django.test import RequestFactory

    from crf.selectors import query_worklist, records_to_sign, sdv_progress
    from tests import factories

    assert list(records_to_sign(user=investigator_a)) == [admission]
    assert list(records_to_sign(user=investigator_b)) == []
    services.record_sign(
        user=investigator_a,
        record=admission,
        password=factories.PASSWORD,
        request=RequestFactory().post("/", REMOTE_ADDR="10.0.0.10"),
        revision=1,
    )
    assert list(records_to_sign(user=investigator_a)) == []
    services.clinical_record_update(
        user=nurse_a, record=admission, revision=1, data={"icu": True}, reason="source"
    )
    assert list(records_to_sign(user=investigator_a)) == [admission]  # back after the edit

    query = services.query_raise(user=site_monitor, record=admission, item="icu", text="?")
    assert [q.pk for q in query_worklist(user=nurse_a)] == [query.pk]
    assert query_worklist(user=nurse_a)[0].age.days == 0
    assert list(query_worklist(user=investigator_b)) == []
    assert list(query_worklist(user=nurse_a, status="answered")) == []
    assert list(query_worklist(user=nurse_a, form_code="surgery")) == []

    assert sdv_progress(user=site_monitor) == [
        {"site": "site-a", "form_code": "admission", "complete": 1, "verified": 0}
    ]
    services.record_verify(user=site_monitor, record=admission, revision=2)
    assert sdv_progress(user=site_monitor)[0]["verified"] == 1
