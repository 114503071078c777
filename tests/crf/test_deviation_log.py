"""A control-arm disclosure recorded in randomization appears in the participant's
protocol deviation log (issue 11: the deviation form), in the same transaction."""

from __future__ import annotations

import pytest
from django.utils import timezone

from crf import selectors, services
from crf.models import ClinicalRecord, RecordStatus
from randomization import services as rnd
from randomization.models import ControlDisclosure
from tests.conftest import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def control(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a, arm="control")


def test_a_disclosure_becomes_a_draft_deviation_entry_for_the_nurse_to_finish(control, nurse_a):
    today = timezone.localdate()
    disclosure = rnd.disclosure_record(
        by=nurse_a, allocation=control, disclosed_on=today, description="letter named the trial"
    )
    entry = ClinicalRecord.objects.get(participant=control.participant, form_code="deviation")
    assert entry.status == RecordStatus.DRAFT and entry.occurrence == "1"
    assert entry.data == {
        "occurred_on": today.isoformat(),
        "deviation_type": "control_arm_disclosure",
        "description": disclosure.description,
    }
    assert entry.created_by == nurse_a
    assert events(ClinicalRecord, pgh_obj_id=entry.pk).count() == 1
    # the nurse finishes it on the log: who disclosed is still to be answered
    drafts = selectors.forms_worklist(user=nurse_a, bucket="draft_forms")
    assert [r.pk for r in drafts] == [entry.pk]
    done = services.clinical_record_update(
        user=nurse_a,
        record=entry,
        revision=entry.revision,
        data={"disclosure_by": "patient_request"},
        complete=True,
    )
    assert done.status == RecordStatus.COMPLETE


def test_a_refused_disclosure_adds_no_deviation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    intervention = randomised(site_a, nurse_a, arm="intervention")
    with pytest.raises(rnd.DisclosureError):
        rnd.disclosure_record(
            by=nurse_a,
            allocation=intervention,
            disclosed_on=timezone.localdate(),
            description="x",
        )
    assert ClinicalRecord.objects.filter(form_code="deviation").count() == 0


def test_a_deviation_the_log_refuses_rolls_the_disclosure_back(control, nurse_a):
    """One transaction: a disclosure whose log entry cannot be written is not recorded."""
    with pytest.raises(services.RecordInvalid):
        rnd.disclosure_record(
            by=nurse_a,
            allocation=control,
            disclosed_on=timezone.localdate(),
            description="<b>named the arm</b>",  # HTML: refused by the deviation form
        )
    assert ControlDisclosure.objects.count() == 0
    assert ClinicalRecord.objects.filter(form_code="deviation").count() == 0
