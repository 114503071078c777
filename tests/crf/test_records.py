"""Clinical records through the services: drafts, completion, reason for change per item,
optimistic concurrency, not done, voiding, expected forms kept in step (crf.services)."""

from __future__ import annotations

from datetime import timedelta

import pghistory
import pytest
from django.db import connection
from django.utils import timezone

from core.refusals import NotAllowed
from core.selectors import audit_trail
from crf import services
from crf.models import ClinicalRecord, FormExpectation
from randomization.models import Allocation
from tests import factories
from tests.conftest import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def allocation(active_sequence, randomised, site_a, nurse_a):
    active_sequence()
    return randomised(site_a, nurse_a, arm="control")


def _yesterday() -> str:
    return (timezone.localdate() - timedelta(days=1)).isoformat()


ADMISSION = {"icu": False, "discharge_destination": "home"}


def test_draft_then_complete_computes_length_of_stay(allocation, nurse_a):
    """A draft takes anything well-typed; completing needs the required items; the length
    of stay is computed on save, never typed."""
    record = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="admission", data={"icu": False}
    )
    assert record.status == "draft" and record.occurrence == "1" and record.revision == 1
    day = timezone.localdate() - timedelta(days=3)
    record = services.clinical_record_update(
        user=nurse_a,
        record=record,
        revision=1,
        data={
            "admitted_on": day.isoformat(),
            "discharged_on": (day + timedelta(days=2)).isoformat(),
            "discharge_destination": "home",
        },
        complete=True,
    )
    record.refresh_from_db()
    assert record.status == "complete" and record.revision == 2
    assert record.data["length_of_stay"] == 2
    assert record.definition.code == "admission"


def _counts():
    return ClinicalRecord.objects.count(), events(ClinicalRecord).count()


def _baseline_complete() -> dict:
    """A completed baseline clinical form (SINS 3+3+1+0+2+1 = 10: potentially unstable)."""
    return {
        "assessed_on": _yesterday(),
        "primary_tumour": "breast",
        "index_levels": ["T10"],
        "sins_location": "junctional",
        "sins_pain": "mechanical",
        "sins_lesion": "mixed",
        "sins_alignment": "normal",
        "sins_collapse": "under_50",
        "sins_posterolateral": "unilateral",
        "bilsky": "1a",
        "asia": "E",
        "who_ps": 1,
        "worst_pain": 6,
        "uses_analgesics": False,
        "systemic_therapy": False,
    }


@pytest.fixture
def baseline(allocation, nurse_a):
    from crf import instruments

    data = _baseline_complete()
    # the choice codes of this test follow the definition (fail loudly if they drift)
    assert not instruments.validate("baseline_clinical", data, complete=True), instruments.validate(
        "baseline_clinical", data, complete=True
    )
    return services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="baseline_clinical", data=data, complete=True
    )


def test_baseline_sins_is_computed_and_a_sent_total_is_refused(baseline, allocation, nurse_a):
    """SINS total and class are computed from the six components on every save; a client
    cannot type them."""
    from crf.clinical_scales import sins_class, sins_total

    data = baseline.data
    assert data["sins_total"] == sins_total(
        **{
            k.removeprefix("sins_"): data[k]
            for k in data
            if k.startswith("sins_") and k not in ("sins_total", "sins_class")
        }
    )
    assert data["sins_class"] == sins_class(total=data["sins_total"])
    assert (data["sins_total"], data["sins_class"]) == (10, "potentially_unstable")
    before = _counts()
    with pytest.raises(services.RecordInvalid) as exc:
        services.clinical_record_update(
            user=nurse_a, record=baseline, revision=1, data={"sins_total": 3}, reason="typed"
        )
    assert "sins_total" in exc.value.field_errors
    assert _counts() == before


BAD = [
    # (form, data, complete, the item that must carry the message)
    ("admission", {"icu": "maybe"}, False, "icu"),  # yes/no: wrong type
    ("admission", {"admitted_on": "31-02-2026"}, False, "admitted_on"),  # not ISO
    ("admission", {"admitted_on": "2026-02-31"}, False, "admitted_on"),  # impossible
    ("admission", {"admitted_on": "2999-01-01"}, False, "admitted_on"),  # future
    ("admission", {"discharge_destination": "mars"}, False, "discharge_destination"),
    ("admission", {"icu": False}, True, "admitted_on"),  # required on completion
    ("admission", {"length_of_stay": 4}, False, "length_of_stay"),  # computed
    ("admission", {"nonsense": 1}, False, "nonsense"),  # unknown item
    ("baseline_clinical", {"worst_pain": 11}, False, "worst_pain"),  # out of range
    ("baseline_clinical", {"worst_pain": "six"}, False, "worst_pain"),  # wrong type
    ("baseline_clinical", {"index_levels": ["T99"]}, False, "index_levels"),  # multi
    ("baseline_clinical", {"primary_tumour_other": "x"}, False, "primary_tumour_other"),  # n/a
    ("adverse_event", {"term": "not-a-ctcae-code"}, False, "term"),  # code list
    ("adverse_event", {"description": "x" * 10_000}, False, "description"),  # too long
    ("adverse_event", {"description": "<b>bold</b>"}, False, "description"),  # HTML
    ("adverse_event", {"description": "a\x00b"}, False, "description"),  # control char
    ("surgery", {"started_at": "2026-13-01T10:00"}, False, "started_at"),  # datetime
]


@pytest.mark.parametrize(("form_code", "data", "complete", "item"), BAD)
def test_bad_input_gets_a_field_message_and_writes_nothing(
    allocation, nurse_a, form_code, data, complete, item
):
    before = _counts()
    expectations = FormExpectation.objects.count()
    with pytest.raises(services.RecordInvalid) as exc:
        services.clinical_record_create(
            user=nurse_a, allocation=allocation, form_code=form_code, data=data, complete=complete
        )
    assert item in exc.value.field_errors, exc.value.field_errors
    assert exc.value.status_code == 400
    assert _counts() == before
    assert FormExpectation.objects.count() == expectations


def test_discharge_before_admission_is_refused(allocation, nurse_a):
    before = _counts()
    with pytest.raises(services.RecordInvalid) as exc:
        services.clinical_record_create(
            user=nurse_a,
            allocation=allocation,
            form_code="admission",
            data={"admitted_on": _yesterday(), "discharged_on": "2020-01-01"},
        )
    assert "discharged_on" in exc.value.field_errors
    assert _counts() == before


def test_unknown_form_and_wrong_occurrence_are_refused(allocation, nurse_a):
    before = _counts()
    with pytest.raises(services.RecordInvalid) as exc:
        services.clinical_record_create(
            user=nurse_a, allocation=allocation, form_code="c15pal", data={}
        )
    assert "form_code" in exc.value.field_errors
    with pytest.raises(services.RecordInvalid) as exc:
        services.clinical_record_create(
            user=nurse_a,
            allocation=allocation,
            form_code="followup_clinical",
            data={},
            occurrence="week5",
        )
    assert "occurrence" in exc.value.field_errors
    with pytest.raises(services.RecordInvalid):
        services.clinical_record_create(
            user=nurse_a,
            allocation=allocation,
            form_code="baseline_clinical",
            data={},
            occurrence="2",
        )
    assert _counts() == before


def test_once_only_form_refuses_a_second_record_and_logs_number_on(allocation, nurse_a):
    services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="end_of_study", data={}
    )
    with pytest.raises(services.RecordError) as exc:
        services.clinical_record_create(
            user=nurse_a, allocation=allocation, form_code="end_of_study", data={}
        )
    assert exc.value.reasons == ["record_exists"]
    numbers = [
        services.clinical_record_create(
            user=nurse_a, allocation=allocation, form_code="adverse_event", data={}
        ).occurrence
        for _ in range(3)
    ]
    assert numbers == ["1", "2", "3"]


def test_completed_record_changes_only_with_a_reason_audited_per_item(baseline, nurse_a):
    before = _counts()
    with pytest.raises(services.RecordReasonRequired) as exc:
        services.clinical_record_update(
            user=nurse_a, record=baseline, revision=1, data={"worst_pain": 7}
        )
    assert "reason" in exc.value.field_errors
    assert _counts() == before
    with pghistory.context(user=nurse_a.pk, username=nurse_a.username):  # as a request sets it
        record = services.clinical_record_update(
            user=nurse_a,
            record=baseline,
            revision=1,
            data={"worst_pain": 7, "sins_pain": "none"},
            reason="transcription error: source says 7",
        )
    assert record.revision == 2 and record.status == "complete"
    trail = audit_trail(model=ClinicalRecord, pk=record.pk)
    last = trail[-1]
    assert last.reason == "transcription error: source says 7"
    assert last.user_id == nurse_a.pk
    assert last.changes["data.worst_pain"] == (6, 7)
    assert last.changes["data.sins_pain"] == ("mechanical", "none")
    # the computed total follows its component (mechanical 3 → none 0)
    assert last.changes["data.sins_total"][0] - last.changes["data.sins_total"][1] == 3
    assert "data.asia" not in last.changes  # only what changed
    assert last.changes["revision"] == (1, 2)


def test_a_save_that_changes_nothing_writes_nothing(baseline, nurse_a):
    before = _counts()
    record = services.clinical_record_update(
        user=nurse_a, record=baseline, revision=1, data={"worst_pain": 6}
    )
    assert record.revision == 1
    assert _counts() == before


def test_a_save_based_on_an_old_revision_is_refused_with_who_and_when(
    allocation, nurse_a, make_user, site_a
):
    other = make_user("nurse", site_a, username="second_nurse")
    record = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="admission", data={"icu": False}
    )
    stale = ClinicalRecord.objects.get(pk=record.pk)
    services.clinical_record_update(user=nurse_a, record=record, revision=1, data={"icu": True})
    before = _counts()
    with pytest.raises(services.RecordChanged) as exc:
        services.clinical_record_update(user=other, record=stale, revision=1, data={"icu": False})
    assert exc.value.status_code == 409
    assert exc.value.changed_by == str(nurse_a) and exc.value.revision == 2
    assert str(nurse_a) in str(exc.value)
    assert _counts() == before
    stored = ClinicalRecord.objects.get(pk=record.pk)
    assert stored.data["icu"] is True and stored.updated_by == nurse_a


def test_changing_a_condition_drops_answers_that_no_longer_apply(allocation, nurse_a):
    record = services.clinical_record_create(
        user=nurse_a,
        allocation=allocation,
        form_code="baseline_clinical",
        data={"primary_tumour": "other", "primary_tumour_other": "thymoma"},
    )
    record = services.clinical_record_update(
        user=nurse_a, record=record, revision=1, data={"primary_tumour": "breast"}
    )
    assert "primary_tumour_other" not in record.data
    last = audit_trail(model=ClinicalRecord, pk=record.pk)[-1]
    assert last.changes["data.primary_tumour_other"] == ("thymoma", None)


def test_not_done_needs_a_reason_and_then_counts_as_final(allocation, nurse_a):
    with pytest.raises(services.RecordInvalid):
        services.clinical_record_not_done(
            user=nurse_a,
            allocation=allocation,
            form_code="followup_clinical",
            occurrence="week4",
            reason=" ",
        )
    record = services.clinical_record_not_done(
        user=nurse_a,
        allocation=allocation,
        form_code="followup_clinical",
        occurrence="week4",
        reason="visit missed: patient admitted elsewhere",
    )
    assert record.status == "not_done" and record.status_reason.startswith("visit missed")
    assert audit_trail(model=ClinicalRecord, pk=record.pk)[-1].reason.startswith("not done:")
    # entering it later (the visit did happen) is a change of a final record: needs a reason
    with pytest.raises(services.RecordReasonRequired):
        services.clinical_record_update(user=nurse_a, record=record, revision=1, data={"asia": "E"})
    with pytest.raises(services.RecordInvalid):
        services.clinical_record_not_done(
            user=nurse_a,
            allocation=allocation,
            form_code="adverse_event",
            occurrence=None,
            reason="nothing",
        )


def test_a_log_entry_made_in_error_is_voided_never_deleted(allocation, nurse_a):
    entry = services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="adverse_event", data={"grade": 2}
    )
    with pytest.raises(services.RecordInvalid):
        services.clinical_record_void(user=nurse_a, record=entry, revision=1, reason="")
    voided = services.clinical_record_void(
        user=nurse_a, record=entry, revision=1, reason="entered for the wrong patient"
    )
    assert voided.status == "voided" and ClinicalRecord.objects.filter(pk=entry.pk).exists()
    with pytest.raises(services.RecordVoided):
        services.clinical_record_update(user=nurse_a, record=voided, revision=2, data={"grade": 3})
    with connection.cursor() as cursor, pytest.raises(Exception, match="(?i)delet"):
        cursor.execute("DELETE FROM crf_clinicalrecord WHERE id = %s", [entry.pk])


def test_only_event_and_log_entries_are_voided(baseline, nurse_a):
    with pytest.raises(services.RecordError) as exc:
        services.clinical_record_void(user=nurse_a, record=baseline, revision=1, reason="x")
    assert exc.value.reasons == ["not_voidable"]


@pytest.mark.parametrize("role", ["data_manager", "statistician", "administrator"])
def test_only_data_entry_roles_of_the_site_write(allocation, make_user, site_a, role, nurse_b):
    before = _counts()
    for user in (make_user(role, site_a if role != "statistician" else None), nurse_b):
        with pytest.raises(NotAllowed) as exc:
            services.clinical_record_create(
                user=user, allocation=allocation, form_code="admission", data={}
            )
        assert getattr(exc.value, "status_code", None) == 403
    assert _counts() == before


def test_expected_forms_follow_day0_records_and_death(allocation, nurse_a):
    """The worklist's cache of expected forms moves with day 0, a record and a death."""
    from cohort.services import death_record
    from crf.selectors import forms_worklist
    from randomization.services import treatment_start_set

    today = timezone.localdate()
    long_ago = today - timedelta(days=120)
    factories.backdate_registration(allocation.participant, today - timedelta(days=130))
    Allocation.objects.filter(pk=allocation.pk).update(
        randomised_at=timezone.now() - timedelta(days=125)
    )
    treatment_start_set(by=nurse_a, allocation=allocation, actual=long_ago)
    rows = {
        (r.form_code, r.occurrence): r
        for r in FormExpectation.objects.filter(participant=allocation.participant)
    }
    assert rows[("followup_clinical", "week4")].window_end < today
    overdue = {(r.form_code, r.occurrence) for r in forms_worklist(user=nurse_a)}
    assert ("followup_clinical", "week4") in overdue and ("baseline_clinical", "1") in overdue
    assert ("sbrt_delivery", "1") not in rows or rows[("sbrt_delivery", "1")].status == (
        "not_applicable"
    )  # control arm
    services.clinical_record_not_done(
        user=nurse_a,
        allocation=allocation,
        form_code="followup_clinical",
        occurrence="week4",
        reason="visit missed",
    )
    overdue = {(r.form_code, r.occurrence) for r in forms_worklist(user=nurse_a)}
    assert ("followup_clinical", "week4") not in overdue
    death_record(
        by=nurse_a,
        participant=allocation.participant,
        died_on=today - timedelta(days=1),
        source="hospital_record",
    )
    month6 = FormExpectation.objects.get(
        participant=allocation.participant, form_code="followup_clinical", occurrence="month6"
    )
    assert month6.status == "not_applicable"


def test_a_refuser_gets_the_control_arms_treatment_forms(
    active_sequence, randomised, site_a, nurse_a
):
    from randomization.services import offer_decision_record

    active_sequence()
    allocation = randomised(site_a, nurse_a, arm="intervention")
    today = timezone.localdate()
    offer_decision_record(
        by=nurse_a,
        allocation=allocation,
        offered_on=today,
        decision="refused",
        decided_on=today,
        refusal_reason="prefers standard care",
    )
    rt = FormExpectation.objects.get(
        participant=allocation.participant, form_code="rt_after_surgery", occurrence="1"
    )
    assert rt.status == "not_started"


def test_rebuild_command_recreates_the_expected_forms(allocation, nurse_a):
    from io import StringIO

    from django.core.management import call_command

    services.clinical_record_create(
        user=nurse_a, allocation=allocation, form_code="admission", data={}
    )
    mine = FormExpectation.objects.filter(participant=allocation.participant)
    expected_rows = set(mine.values_list("form_code", "occurrence", "status", "window_end"))
    FormExpectation.objects.all().delete()  # a cache: the command rebuilds it
    out = StringIO()
    call_command("crf_expectations_rebuild", stdout=out)
    # the factory randomises until the wanted arm comes up: count what it made (those other
    # participants had no cache rows yet: nothing of theirs was saved, no day 0 was set)
    assert f"{Allocation.objects.count()} participants" in out.getvalue()
    assert set(mine.values_list("form_code", "occurrence", "status", "window_end")) == expected_rows
    assert ("admission", "1", "draft") in {r[:3] for r in expected_rows}


def test_demo_enters_a_few_clinical_forms_once(blend, make_user, settings):
    """``make run``'s demo: each randomised participant gets a completed baseline (SINS
    computed) and an admission draft, the first also an adverse event; seeding twice adds
    nothing."""
    import io

    from crf import demo as crf_demo
    from randomization import demo as randomization_demo

    settings.DEBUG = True
    settings.RANDOMISATION_ENVIRONMENT = ""
    umcu = factories.SiteFactory(code="umcu", name="UMC Utrecht")
    make_user("statistician", None, username="statistician")
    make_user("nurse", umcu, username="nurse")
    for _ in range(4):
        factories.participant_without_identity(site=umcu)
    out = io.StringIO()
    randomization_demo.seed(out)
    crf_demo.seed(out)
    randomised = Allocation.objects.count()
    assert randomised >= 1
    assert (
        ClinicalRecord.objects.filter(form_code="baseline_clinical", status="complete").count()
        == randomised
    )
    assert all(
        r.data["sins_total"] == 9 and r.data["sins_class"] == "potentially_unstable"
        for r in ClinicalRecord.objects.filter(form_code="baseline_clinical")
    )
    assert ClinicalRecord.objects.filter(form_code="adverse_event").count() == 1
    total = ClinicalRecord.objects.count()
    crf_demo.seed(out)
    assert ClinicalRecord.objects.count() == total == 2 * randomised + 1


def test_refusal_messages_follow_the_language_of_the_request():
    """Class-level messages are translated when shown, not when the module is imported."""
    from django.utils import translation

    with translation.override("en"):
        assert str(services.RecordVoided()) == (
            "This entry was voided (made in error) and can no longer change."
        )
        assert str(services.NotAnswerable()) == "This questionnaire can no longer be entered."
    with translation.override("nl"):
        assert str(services.RecordVoided()).startswith("Deze invoer is vervallen")


def test_the_audit_screen_shows_each_changed_item_to_the_sites_monitor(
    baseline, nurse_a, make_user, site_a, site_b, client
):
    """A data manager (monitor) of the site reads the record's trail item by item; one of
    another site does not."""
    from django.urls import reverse

    services.clinical_record_update(
        user=nurse_a, record=baseline, revision=1, data={"worst_pain": 8}, reason="source: 8"
    )
    url = reverse("audit_record", args=["crf.clinicalrecord", baseline.pk])
    client.force_login(make_user("data_manager", site_a))
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "data.worst_pain" in html and "source: 8" in html
    client.force_login(make_user("data_manager", site_b))
    other = client.get(url)
    assert other.status_code in (403, 404)


def test_the_form_grid_is_one_query_whatever_the_number_of_records(
    allocation, nurse_a, django_assert_num_queries
):
    """The grid reads the expected-forms cache joined with the records: one query with 2
    records and with 20; overdue is decided against today; records are in their cells."""
    from crf.selectors import form_grid

    for _ in range(2):
        services.clinical_record_create(
            user=nurse_a, allocation=allocation, form_code="adverse_event", data={}
        )
    participant = allocation.participant
    with django_assert_num_queries(1):
        few = form_grid(participant=participant)
    for _ in range(18):
        services.clinical_record_create(
            user=nurse_a, allocation=allocation, form_code="adverse_event", data={}
        )
    with django_assert_num_queries(1):
        many = form_grid(participant=participant)
    aes = [c for c in many if c.form_code == "adverse_event"]
    assert [c.occurrence for c in aes] == [str(n) for n in range(1, 21)]
    assert all(c.record is not None and c.record.occurrence == c.occurrence for c in aes)
    assert len(many) == len(few) + 18
    assert [c.form_code for c in many][0] == "baseline_clinical"
    # with day 0 long ago the week-4 follow-up is overdue (asked of the database's window)
    FormExpectation.objects.filter(participant=participant, occurrence="week4").update(
        window_end=timezone.localdate() - timedelta(days=1)
    )
    week4 = next(c for c in form_grid(participant=participant) if c.occurrence == "week4")
    assert week4.status == "overdue"
