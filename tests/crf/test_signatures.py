"""Electronic signatures of clinical records (issue 12 groundwork, 21 CFR 11.50/11.200):
the password re-entered, the meaning and printed name stored with a SHA-256 of the signed
content; any change of the data invalidates the signature visibly."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import RequestFactory

from core.refusals import NotAllowed
from crf import services
from crf.models import ClinicalRecord, ESignature
from tests import factories
from tests.conftest import events

pytestmark = pytest.mark.django_db


def _request():
    request = RequestFactory().post("/crf/sign/", REMOTE_ADDR="10.0.0.7")
    return request


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a, arm="control")


@pytest.fixture
def completed(allocation, nurse_a):
    return services.clinical_record_create(
        user=nurse_a,
        allocation=allocation,
        form_code="end_of_study",
        data={"ended_on": "2026-11-01", "reason": "completed"},
        complete=True,
    )


def _sign(user, record, password=factories.PASSWORD):
    return services.record_sign(
        user=user, record=record, password=password, request=_request(), revision=record.revision
    )


def test_a_wrong_password_signs_nothing_and_counts_towards_the_lockout(completed, investigator_a):
    with pytest.raises(services.WrongPassword) as exc:
        _sign(investigator_a, completed, password="not-the-password")
    assert exc.value.status_code == 403 and "password" in exc.value.field_errors
    assert ESignature.objects.count() == 0
    attempt = AccessAttempt.objects.get(username=investigator_a.username)
    assert attempt.failures_since_start == 1
    for _ in range(settings.AXES_FAILURE_LIMIT):
        with pytest.raises(services.WrongPassword):
            _sign(investigator_a, completed, password="still-wrong")
    with pytest.raises(services.WrongPassword):  # locked: even the right one is refused
        _sign(investigator_a, completed)
    assert ESignature.objects.count() == 0


def test_the_right_password_stores_meaning_name_and_hash(completed, investigator_a):
    signature = _sign(investigator_a, completed)
    record = ClinicalRecord.objects.select_related("definition").get(pk=completed.pk)
    assert signature.sha256 == services.signed_content_sha256([record])
    assert len(signature.sha256) == 64 and signature.revision == record.revision
    assert signature.meaning.startswith("I confirm") or signature.meaning.startswith("Ik bevestig")
    assert signature.printed_name and signature.role == "investigator" and signature.is_valid
    assert events(ESignature, pgh_obj_id=signature.pk).count() == 1
    with pytest.raises(services.SignatureRefused) as exc:
        _sign(investigator_a, completed)
    assert exc.value.reasons == ["already_signed"]


def test_only_an_investigator_of_the_participants_site_signs(
    completed, nurse_a, investigator_b, make_user
):
    for user in (nurse_a, investigator_b, make_user("investigator", None)):
        with pytest.raises(NotAllowed):
            _sign(user, completed)
    assert ESignature.objects.count() == 0


def test_a_draft_is_not_signed(allocation, nurse_a, investigator_a):
    draft = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="admission", data={}
    )
    with pytest.raises(services.SignatureRefused) as exc:
        _sign(investigator_a, draft)
    assert exc.value.reasons == ["not_complete"]


def test_an_edit_invalidates_the_signature_a_no_op_save_keeps_it(
    completed, investigator_a, nurse_a
):
    signature = _sign(investigator_a, completed)
    services.clinical_record_update(
        user=nurse_a, record=completed, revision=1, data={"ended_on": "2026-11-01"}
    )
    signature.refresh_from_db()
    assert signature.is_valid
    services.clinical_record_update(
        user=nurse_a,
        record=completed,
        revision=1,
        data={"ended_on": "2026-10-30"},
        reason="source: ended 30 Oct",
    )
    signature.refresh_from_db()
    assert not signature.is_valid and signature.invalidated_by == nurse_a
    assert str(nurse_a) in signature.invalidated_reason
    # the record goes back to the to-sign state: it can be signed again, as a new row
    record = ClinicalRecord.objects.get(pk=completed.pk)
    again = _sign(investigator_a, record)
    assert again.pk != signature.pk and again.sha256 != signature.sha256


def test_the_casebook_signature_covers_every_form_and_any_edit_invalidates_it(
    allocation, completed, investigator_a, nurse_a
):
    draft = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="admission", data={}
    )
    with pytest.raises(services.SignatureRefused):
        services.casebook_sign(
            user=investigator_a,
            allocation=allocation,
            password=factories.PASSWORD,
            request=_request(),
        )
    services.clinical_record_not_done(
        user=nurse_a,
        allocation=allocation,
        form_code="admission",
        occurrence="1",
        reason="no admission",
        revision=draft.revision,
    )
    casebook = services.casebook_sign(
        user=investigator_a,
        allocation=allocation,
        password=factories.PASSWORD,
        request=_request(),
    )
    assert casebook.record is None and casebook.is_valid
    services.clinical_record_update(
        user=nurse_a,
        record=completed,
        revision=1,
        data={"comment": "typo fixed"},
        reason="comment added",
    )
    casebook.refresh_from_db()
    assert not casebook.is_valid
