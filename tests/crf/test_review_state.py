"""The review state of a record where people and programs read records (issue 12 item 6):
the records API carries it read-only (unresolved queries, the signature or the one a
change invalidated, the lock that applies, the items verified against the source); the
participant page's form grid shows it as marks, with query counts per form; locks refuse
writes through the API at every level with nothing written; and reading the review state
costs no query per record."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crf import services
from crf.models import ClinicalRecord, DataLock, DataQuery, ESignature, SourceVerification
from tests import factories
from tests.conftest import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a, arm="control")


@pytest.fixture
def sn(allocation):
    return allocation.participant.study_number


@pytest.fixture
def site_dm(make_user, site_a):
    return make_user("data_manager", site_a, username="dm_site_a")


def _admission(allocation, nurse, *, days_ago=5, occurrence=None):
    day = timezone.localdate() - timedelta(days=days_ago)
    return services.clinical_record_create(
        user=nurse,
        allocation=allocation,
        form_code="admission",
        occurrence=occurrence,
        data={
            "admitted_on": day.isoformat(),
            "discharged_on": (day + timedelta(days=3)).isoformat(),
            "icu": False,
            "discharge_destination": "home",
        },
        complete=True,
    )


def _sign(investigator, record):
    return services.record_sign(
        user=investigator,
        record=record,
        password=factories.PASSWORD,
        request=RequestFactory().post("/", REMOTE_ADDR="10.0.0.8"),
        revision=record.revision,
    )


def _record_url(sn, record):
    return reverse("api:form-record", args=[sn, record.form_code, record.pk])


def test_the_records_api_shows_the_review_state_read_only(
    api_client_for, nurse_a, site_dm, investigator_a, statistician, sn, allocation
):
    record = _admission(allocation, nurse_a)
    nurse_api = api_client_for(nurse_a)
    fresh = nurse_api.get(_record_url(sn, record)).json()["review"]
    assert fresh == {
        "open_queries": 0,
        "signature": None,
        "signature_invalidated": None,
        "lock": None,
        "verified_items": [],
        "sdv_key_items": ["admitted_on", "discharged_on"],
        "sdv": "none",
    }

    services.query_raise(user=site_dm, record=record, item="icu", text="Was there an ICU stay?")
    services.record_verify(user=site_dm, record=record, revision=1)
    _sign(investigator_a, record)
    services.data_lock(
        user=site_dm,
        level="record",
        trial=allocation.trial,
        participant=allocation.participant,
        record=record,
    )
    review = nurse_api.get(_record_url(sn, record)).json()["review"]
    assert review["open_queries"] == 1
    assert review["signature"]["signed_by"] == "investigator_a"
    assert review["signature"]["revision"] == 1 and review["signature"]["meaning"]
    assert review["lock"]["level"] == "record" and review["lock"]["locked_by"] == "dm_site_a"
    assert review["verified_items"] == ["admitted_on", "discharged_on"]
    assert review["sdv"] == "done"
    # the list says the same, and a statistician reads it too
    listed = (
        api_client_for(statistician)
        .get(reverse("api:form-records", args=[sn, "admission"]))
        .json()["results"]
    )
    assert [r["review"] for r in listed] == [review]

    # after unlocking, a change of a verified item clears its mark only and invalidates the
    # signature, which the API then reports as invalidated
    services.data_unlock(user=site_dm, lock=DataLock.objects.get(), reason="late correction")
    changed = (timezone.localdate() - timedelta(days=1)).isoformat()
    response = nurse_api.patch(
        _record_url(sn, record),
        {"data": {"discharged_on": changed}, "reason": "discharge date from the letter"},
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    assert response.status_code == 200, response.content
    review = response.json()["review"]
    assert review["signature"] is None and review["lock"] is None
    assert review["signature_invalidated"]["invalidated_by"] == "nurse_a"
    assert review["verified_items"] == ["admitted_on"] and review["sdv"] == "partial"


def test_the_review_state_is_not_writable_through_the_records_api(
    api_client_for, nurse_a, sn, allocation
):
    record = _admission(allocation, nurse_a)
    response = api_client_for(nurse_a).patch(
        _record_url(sn, record),
        {
            "data": {"icu": True},
            "reason": "ICU after all",
            "review": {"signature": {"signed_by": "nurse_a"}, "sdv": "done"},
        },
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    # the review state is output only: sending it changes the data, never the review
    assert response.status_code == 200, response.content
    assert response.json()["review"]["signature"] is None
    assert response.json()["review"]["sdv"] == "none"
    assert ESignature.objects.count() == 0 and SourceVerification.objects.count() == 0
    assert ClinicalRecord.objects.get(pk=record.pk).data["icu"] is True


def _lock(level, *, allocation, record, site_dm, monitor):
    return services.data_lock(
        user=monitor if level == "trial" else site_dm,
        level=level,
        trial=allocation.trial,
        participant=allocation.participant,
        record=record if level == "record" else None,
        reason="database lock",
    )


@pytest.mark.parametrize("level", ["record", "participant", "trial"])
def test_a_lock_refuses_every_write_through_the_api(
    level, api_client_for, nurse_a, site_dm, monitor, sn, allocation
):
    record = _admission(allocation, nurse_a)
    _lock(level, allocation=allocation, record=record, site_dm=site_dm, monitor=monitor)
    api = api_client_for(nurse_a)
    before = (ClinicalRecord.objects.count(), events(ClinicalRecord).count())
    patch = api.patch(
        _record_url(sn, record),
        {"data": {"icu": True}, "reason": "ICU after all"},
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    assert patch.status_code == 409, patch.content
    assert f"locked_{level}" in str(patch.json())
    void = api.post(
        reverse("api:form-record-void", args=[sn, "admission", record.pk]),
        {"reason": "entered in error"},
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    assert void.status_code == 409, void.content
    create = api.post(
        reverse("api:form-records", args=[sn, "adverse_event"]),
        {"data": {"grade": 1}},
        format="json",
    )
    # a record lock leaves the participant's other forms open; the others refuse new records
    assert create.status_code == (201 if level == "record" else 409), create.content
    expected_rows = before[0] + (1 if level == "record" else 0)
    assert ClinicalRecord.objects.count() == expected_rows
    assert events(ClinicalRecord).count() == before[1] + (1 if level == "record" else 0)
    assert ClinicalRecord.objects.get(pk=record.pk).data["icu"] is False
    assert ClinicalRecord.objects.get(pk=record.pk).revision == 1


def _page(client, user, sn):
    client.force_login(user)
    return client.get(reverse("cohort:participant_detail", args=[sn])).content.decode()


def test_the_form_grid_shows_review_marks_and_query_counts_per_form(
    client, nurse_a, site_dm, investigator_a, sn, allocation
):
    first = _admission(allocation, nurse_a, days_ago=20)
    second = _admission(allocation, nurse_a, days_ago=8)
    ae = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="adverse_event", data={"grade": 2}
    )
    services.query_raise(user=site_dm, record=first, item="icu", text="ICU?")
    services.query_raise(user=site_dm, record=second, item="", text="Which hospital?")
    answered = services.query_raise(user=site_dm, record=ae, item="grade", text="Grade 3?")
    services.query_answer(user=nurse_a, query=answered, text="grade 2 confirmed")
    closed = services.query_raise(user=site_dm, record=ae, item="", text="Term?")
    services.query_close(user=site_dm, query=closed)
    _sign(investigator_a, first)
    services.record_verify(user=site_dm, record=first, revision=1)
    services.record_verify(user=site_dm, record=second, revision=1, items=["admitted_on"])
    services.data_lock(
        user=site_dm,
        level="record",
        trial=allocation.trial,
        participant=allocation.participant,
        record=second,
    )
    html = _page(client, nurse_a, sn)
    admission_row = html.split('data-form="admission"')[1].split("</tr>")[0]
    # two unresolved queries on the form, one on each admission
    assert re.findall(r'crf-form-queries"[^>]*>(\d+)<', admission_row) == ["2"]
    first_cell = admission_row.split(f'data-occurrence="{first.occurrence}"')[1].split("</a>")[0]
    second_cell = admission_row.split(f'data-occurrence="{second.occurrence}"')[1].split("</a>")[0]
    assert "crf-review-queries" in first_cell and "crf-review-signed" in first_cell
    assert "crf-review-sdv " in first_cell and "crf-review-locked" not in first_cell
    assert "crf-review-locked" in second_cell and "crf-review-sdv-partial" in second_cell
    assert "crf-review-signed" not in second_cell
    ae_log = html.split('data-log="adverse_event"')[1].split("</table>")[0]
    assert "crf-review-queries" in ae_log  # the answered one is still unresolved
    assert ae_log.count("crf-review-queries") == 1
    assert 'data-testid="casebook-locked"' not in html


@pytest.mark.parametrize("level", ["participant", "trial"])
def test_a_casebook_or_trial_lock_makes_the_grid_read_only(
    level, client, nurse_a, site_dm, monitor, sn, allocation
):
    record = _admission(allocation, nurse_a)
    assert 'data-testid="add-adverse_event"' in _page(client, nurse_a, sn)
    _lock(level, allocation=allocation, record=record, site_dm=site_dm, monitor=monitor)
    html = _page(client, nurse_a, sn)
    assert 'data-testid="casebook-locked"' in html
    assert (
        'data-testid="add-adverse_event"' not in html and 'data-testid="add-admission"' not in html
    )
    assert "crf-review-locked" in html


def _queries(client, url) -> int:
    client.get(url)  # warm
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_review_state_costs_no_query_per_record(
    client, api_client_for, nurse_a, site_dm, investigator_a, sn, allocation
):
    def reviewed_entries(n):
        for _ in range(n):
            record = services.clinical_record_create(
                user=nurse_a,
                allocation=allocation,
                form_code="adverse_event",
                data={"term": "10003988", "grade": 2},
            )
            services.query_raise(user=site_dm, record=record, item="grade", text="Grade?")

    page = reverse("cohort:participant_detail", args=[sn])
    records = reverse("api:form-records", args=[sn, "adverse_event"])
    client.force_login(nurse_a)
    api = api_client_for(nurse_a)
    reviewed_entries(2)
    few = (_queries(client, page), _queries(api, records))
    reviewed_entries(18)
    assert DataQuery.objects.filter(record__form_code="adverse_event").count() == 20
    assert api.get(records).json()["results"][-1]["review"]["open_queries"] == 1
    assert (_queries(client, page), _queries(api, records)) == few
