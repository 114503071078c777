"""Data review queries (issue 12 groundwork): automatic queries opened and closed by the
edit checks on every save, and the manual workflow open → answered → closed (→ re-opened),
each step audited and threaded; queries never change data."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.utils import timezone

from core.refusals import NotAllowed
from crf import instruments, services
from crf.models import ClinicalRecord, DataQuery, FormDefinition, QueryMessage
from tests.conftest import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a, arm="intervention")


@pytest.fixture
def monitor(make_user, site_a):
    return make_user("data_manager", site_a, username="monitor_a")


def _with_checks(code: str, checks: list, version: str = "test-checks") -> FormDefinition:
    """A registered test version of a shipped form that declares ``checks`` (records
    entered with it are validated and checked with that version)."""
    shipped = FormDefinition.objects.get(code=code, version=instruments.load(code).version)
    content = copy.deepcopy(shipped.content) | {"version": version, "checks": checks}
    return FormDefinition.objects.create(
        code=code,
        version=version,
        kind="clinical",
        occurs=shipped.occurs,
        title=shipped.title,
        content=content,
        sha256="0" * 64,
    )


def _sbrt(allocation, nurse, started_at):
    return services.clinical_record_create(
        user=nurse,
        allocation=allocation,
        form_code="sbrt_delivery",
        data={"started_at": started_at},
    )


def test_an_edit_check_finding_opens_one_query_and_the_fix_closes_it(allocation, nurse_a):
    today = timezone.localdate()
    sbrt_at = f"{(today - timedelta(days=3)).isoformat()}T08:00"
    _sbrt(allocation, nurse_a, sbrt_at)
    surgery = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="surgery", data={}
    )
    version = _with_checks("surgery", ["surgery_within_hours_of_sbrt"])
    ClinicalRecord.objects.filter(pk=surgery.pk).update(definition=version)
    late = f"{(today - timedelta(days=1)).isoformat()}T09:00"  # two days after the SBRT
    surgery = services.clinical_record_update(
        user=nurse_a, record=surgery, revision=1, data={"started_at": late}
    )
    (query,) = DataQuery.objects.filter(record=surgery)
    assert (query.origin, query.check_name, query.item, query.status) == (
        "check",
        "surgery_within_hours_of_sbrt",
        "started_at",
        "open",
    )
    assert "24" in query.text
    # saving again with the same finding opens nothing new
    services.clinical_record_update(
        user=nurse_a, record=surgery, revision=2, data={"blood_loss_ml": 200}
    )
    assert DataQuery.objects.filter(record=surgery).count() == 1
    # the fix closes it, with a thread entry and on the audit trail
    on_time = f"{(today - timedelta(days=3)).isoformat()}T14:00"
    services.clinical_record_update(
        user=nurse_a, record=surgery, revision=3, data={"started_at": on_time}
    )
    query.refresh_from_db()
    assert query.status == "closed" and query.closed_at is not None
    assert list(query.messages.values_list("action", flat=True)) == ["raise", "resolved"]
    assert events(DataQuery, pgh_obj_id=query.pk).count() == 2
    # the finding coming back opens a new query (the closed one stays as it was)
    services.clinical_record_update(
        user=nurse_a, record=surgery, revision=4, data={"started_at": late}
    )
    assert list(DataQuery.objects.filter(record=surgery).values_list("status", flat=True)) == [
        "closed",
        "open",
    ]


def test_voiding_an_entry_resolves_its_automatic_queries(allocation, nurse_a):
    entry = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="adverse_event", data={}
    )
    ClinicalRecord.objects.filter(pk=entry.pk).update(
        definition=_with_checks("adverse_event", ["fatal_grade_needs_a_death"])
    )
    entry = services.clinical_record_update(
        user=nurse_a, record=entry, revision=1, data={"grade": 5}
    )
    assert DataQuery.objects.get(record=entry).status == "open"
    services.clinical_record_void(user=nurse_a, record=entry, revision=2, reason="wrong patient")
    query = DataQuery.objects.get(record=entry)
    assert query.status == "closed"
    assert query.messages.last().text == "entry voided"


@pytest.fixture
def record(allocation, nurse_a):
    return services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="admission", data={"icu": True}
    )


def test_manual_query_open_answered_closed_reopened(record, monitor, nurse_a):
    data_before = dict(ClinicalRecord.objects.get(pk=record.pk).data)
    query = services.query_raise(
        user=monitor,
        record=record,
        item="icu",
        text="ICU stay not in the source?",
        suggested_value=False,
    )
    assert (query.status, query.origin, query.raised_by) == ("open", "manual", monitor)
    query = services.query_answer(user=nurse_a, query=query, text="Checked: ICU for one night.")
    assert query.status == "answered"
    query = services.query_close(user=monitor, query=query)
    assert query.status == "closed" and query.closed_at
    query = services.query_reopen(user=monitor, query=query, text="Which night?")
    assert query.status == "open" and query.closed_at is None
    assert list(QueryMessage.objects.filter(query=query).values_list("action", "by")) == [
        ("raise", monitor.pk),
        ("answer", nurse_a.pk),
        ("close", monitor.pk),
        ("reopen", monitor.pk),
    ]
    assert events(DataQuery, pgh_obj_id=query.pk).count() == 4
    # queries never change data
    assert ClinicalRecord.objects.get(pk=record.pk).data == data_before


def test_each_role_does_only_its_own_query_steps(
    record, monitor, nurse_a, nurse_b, make_user, site_b
):
    with pytest.raises(NotAllowed):
        services.query_raise(user=nurse_a, record=record, item="icu", text="?")
    with pytest.raises(NotAllowed):
        services.query_raise(
            user=make_user("data_manager", site_b), record=record, item="icu", text="?"
        )
    query = services.query_raise(user=monitor, record=record, item="icu", text="?")
    with pytest.raises(NotAllowed):
        services.query_answer(user=monitor, query=query, text="I answer myself")
    with pytest.raises(NotAllowed):
        services.query_answer(user=nurse_b, query=query, text="other site")
    with pytest.raises(NotAllowed):
        services.query_close(user=nurse_a, query=query)
    assert DataQuery.objects.get(pk=query.pk).status == "open"
    assert QueryMessage.objects.filter(query=query).count() == 1


def test_query_refusals_change_nothing(record, monitor, nurse_a):
    before = (DataQuery.objects.count(), QueryMessage.objects.count())
    with pytest.raises(services.QueryInvalid):
        services.query_raise(user=monitor, record=record, item="icu", text="  ")
    with pytest.raises(services.QueryInvalid):
        services.query_raise(user=monitor, record=record, item="nonsense", text="?")
    with pytest.raises(services.QueryInvalid):
        services.query_raise(user=monitor, record=record, item="icu", text="x" * 2001)
    assert (DataQuery.objects.count(), QueryMessage.objects.count()) == before
    query = services.query_raise(user=monitor, record=record, item="", text="Whole form?")
    with pytest.raises(services.QueryError):
        services.query_reopen(user=monitor, query=query, text="not closed")
    services.query_close(user=monitor, query=query, text="fine")
    with pytest.raises(services.QueryError):
        services.query_close(user=monitor, query=query)
    with pytest.raises(services.QueryError):
        services.query_answer(user=nurse_a, query=query, text="late")


def test_recheck_after_a_rule_change_opens_and_closes_to_match_and_is_idempotent(
    allocation, nurse_a
):
    """Three AEs of grade 5 and one of grade 2 without a recorded death, entered before
    the check existed; then the rule arrives (a new definition version) and the re-run
    opens exactly three queries; a second run changes nothing; a fix closes one."""
    from io import StringIO

    from django.core.management import call_command

    from crf import tasks

    entries = [
        services.clinical_record_create(
            user=nurse_a, allocation=allocation, form_code="adverse_event", data={}
        )
        for _g in range(4)
    ]
    before_the_rule = _with_checks("adverse_event", [], version="test-before-the-rule")
    ClinicalRecord.objects.filter(pk__in=[e.pk for e in entries]).update(definition=before_the_rule)
    entries = [
        services.clinical_record_update(user=nurse_a, record=e, revision=1, data={"grade": g})
        for e, g in zip(entries, (5, 5, 2, 5), strict=True)
    ]
    assert DataQuery.objects.count() == 0
    ClinicalRecord.objects.filter(pk__in=[e.pk for e in entries]).update(
        definition=_with_checks("adverse_event", ["fatal_grade_needs_a_death"])
    )
    out = StringIO()
    call_command("crf_recheck", "--form", "adverse_event", stdout=out)
    assert "4 records checked: 3 queries opened, 0 closed." in out.getvalue()
    assert set(DataQuery.objects.values_list("record_id", flat=True)) == {
        e.pk for e in entries if e.data["grade"] == 5
    }
    again = tasks.records_recheck.apply(kwargs={"form_code": "adverse_event"}).get()
    assert again == {"records": 4, "opened": 0, "closed": 0}
    services.clinical_record_update(user=nurse_a, record=entries[0], revision=2, data={"grade": 4})
    assert DataQuery.objects.filter(status="open").count() == 2


def test_the_check_context_reads_the_participants_facts(allocation, nurse_a):
    from cohort.models import ConsentRecord
    from crf.selectors import record_context

    context = record_context(allocation=allocation)
    assert context["arm"] == "intervention" and context["refused"] is False
    assert "died_on" in context and context["died_on"] is None
    assert context["born_year"] == allocation.participant.year_of_birth
    assert context["consented_on"] == (
        ConsentRecord.objects.filter(
            participant=allocation.participant, element="randomisation_offer", answer=True
        )
        .values_list("given_on", flat=True)
        .get()
    )
    assert context["baseline_asia"] is None and context["sbrt_started"] == []
    day = (timezone.localdate() - timedelta(days=2)).isoformat()
    services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="baseline_clinical", data={"asia": "D"}
    )
    _sbrt(allocation, nurse_a, f"{day}T08:00")
    surgery = services.clinical_record_create(
        user=nurse_a,
        allocation=allocation,
        form_code="surgery",
        data={"started_at": f"{day}T13:00"},
    )
    services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="end_of_study", data={"ended_on": day}
    )
    context = record_context(allocation=allocation)
    assert context["baseline_asia"] == "D"
    assert context["sbrt_started"] == [f"{day}T08:00"]
    assert context["surgery_on"].isoformat() == day
    assert context["ended_on"].isoformat() == day
    services.clinical_record_void(user=nurse_a, record=surgery, revision=1, reason="wrong day")
    assert record_context(allocation=allocation)["surgery_on"] is None
