"""Clinical records (CRFs) at scale: 50 records per randomised participant through the
tracked path, and the pages that show them (issue 11 item 7).

:func:`seed` runs inside every cohort of :mod:`bench.bench_pages` (after its bulk SQL,
before its VACUUM): for each randomised participant (10 % of the cohort: 200 at 2,000
participants, 2,000 at 20,000) it writes 50 :class:`crf.models.ClinicalRecord` rows:

- intervention arm: baseline, SBRT delivery, the three follow-up visits, 32 adverse
  events, 11 systemic-therapy and 2 deviation log entries;
- control arm: baseline, surgery, admission, radiotherapy after surgery, the three
  follow-up visits, 30 adverse events, 11 systemic-therapy and 2 deviation entries;
- a deceased participant's last adverse event is replaced by the end-of-study form
  (died); 4 % of log entries are drafts, 1 in 10 participants has one voided adverse
  event and 1 in 20 a month-6 visit not done.

Every record's ``data`` is checked against its form definition
(:func:`crf.instruments.validate`, with ``complete`` for completed records: the seed stops
on an error) with its computed items from :func:`crf.instruments.compute`,
and names the FormDefinition row of the shipped version. Dates follow the participant's
day 0 and are never in the future. The rows are written with ``bulk_create`` (the
pghistory insert trigger fires per row) inside one ``system_actor`` context, 10,000 rows
a chunk, each chunk timed: ENGINEERING §5 wants the time per 10,000 rows constant as the
table grows (budget: last chunk within 1.5x of the first). At the end the insert events
of the table must equal its rows, each carrying the seed's context.

Then the expected forms (:class:`crf.models.FormExpectation`) of every allocation are
filled through the real path, :func:`crf.services.form_expectations_refresh`, one call per
allocation (timed and reported).

``python -m bench --only crf`` runs the cohorts of bench_pages with the CRF pages only
(the participant page with its form grid, the forms list and the records list of the
API); the full ``make bench`` runs them as part of bench_pages and skips this module
(``RUN_ALONE_ONLY``), so the cohorts are seeded once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

RUN_ALONE_ONLY = True  # bench_pages seeds and times all of this in the full run
PER_PARTICIPANT = 50
CHUNK = 10_000
MAX_RATIO = 1.5
ACTOR = "bench-crf-seed"
RECORDS_FORM = "adverse_event"  # the records API page lists this form (~30 entries)

LEVELS = (("T8",), ("L2", "L3"), ("T11",), ("C5",), ("T5", "T6"))
LOCATION = {
    "T8": "semi_rigid",
    "L2": "mobile",
    "T11": "junctional",
    "C5": "mobile",
    "T5": "semi_rigid",
}
TUMOURS = {"breast", "prostate", "lung", "kidney", "other"}
THERAPIES = ("chemotherapy", "targeted", "immunotherapy", "hormonal")


# --- the data of one participant's records --------------------------------------------------
class _Days:
    """ISO dates relative to day 0, never later than yesterday (every date item refuses the
    future)."""

    def __init__(self, day0: date, today: date):
        self.day0 = day0
        self.last = today - timedelta(days=1)

    def day(self, offset: int) -> date:
        return min(self.day0 + timedelta(days=offset), self.last)

    def iso(self, offset: int) -> str:
        return self.day(offset).isoformat()

    def at(self, offset: int, hhmm: str) -> str:
        return f"{self.iso(offset)}T{hhmm}"


def _baseline(k: int, tumour: str, d: _Days) -> dict:
    levels = LEVELS[k % len(LEVELS)]
    data: dict[str, Any] = {
        "assessed_on": d.iso(-7),
        "primary_tumour": tumour if tumour in TUMOURS else "other",
        "index_levels": list(levels),
        "sins_location": LOCATION[levels[0]],
        "sins_pain": ("mechanical", "occasional", "none")[k % 3],
        "sins_lesion": ("lytic", "mixed", "blastic")[k % 3],
        "sins_alignment": ("normal", "normal", "deformity")[k % 3],
        "sins_collapse": ("none", "under_50", "none_over_50_involved", "over_50")[k % 4],
        "sins_posterolateral": ("none", "unilateral", "bilateral")[k % 3],
        "bilsky": ("0", "1a", "1b", "1c", "2")[k % 5],
        "asia": ("E", "E", "D")[k % 3],
        "who_ps": k % 3,
        "worst_pain": 3 + k % 7,
        "uses_analgesics": True,
        "analgesics": [
            {"drug": "morphine", "route": "oral", "daily_dose": 20 + 10 * (k % 4), "unit": "mg/day"}
        ],
        "systemic_therapy": k % 2 == 0,
    }
    if data["primary_tumour"] == "other":
        data["primary_tumour_other"] = "Sarcoma"
    if data["systemic_therapy"]:
        data["systemic_therapy_types"] = [THERAPIES[k % 4]]
        data["systemic_last_dose_on"] = d.iso(-21)
    return data


def _sbrt(k: int, d: _Days) -> dict:
    return {
        "started_at": d.at(0, "09:30"),
        "targets": [
            {
                "levels": list(LEVELS[k % len(LEVELS)]),
                "dose_gy": (24, 27, 30)[k % 3],
                "fractions": 2,
            }
        ],
        "site_sparing": False,
        "completed_as_planned": k % 25 != 0,
        "deviation": False,
    }


def _surgery(k: int, d: _Days) -> dict:
    levels = LEVELS[k % len(LEVELS)]
    return {
        "started_at": d.at(3, "08:15"),
        "ended_at": d.at(3, "11:40"),
        "technique": ("open", "percutaneous")[k % 2],
        "levels_instrumented": list(levels),
        "decompression": True,
        "decompression_type": "separation",
        "decompression_levels": [levels[0]],
        "cement_augmentation": False,
        "blood_loss_ml": 200 + 50 * (k % 8),
        "complication": False,
    }


def _admission(k: int, d: _Days) -> dict:
    return {
        "admitted_on": d.iso(2),
        "discharged_on": d.iso(4 + k % 6),
        "icu": k % 10 == 0,
        "discharge_destination": ("home", "home", "rehabilitation")[k % 3],
    }


def _rt_after_surgery(k: int, d: _Days) -> dict:
    return {
        "started_on": d.iso(24),
        "technique": "crt",
        "levels": list(LEVELS[k % len(LEVELS)]),
        "dose_gy": 20,
        "fractions": 5,
        "completed_as_planned": True,
    }


def _followup(k: int, offset: int, surgery: bool, d: _Days) -> dict:
    return {
        "visit_on": d.iso(offset),
        "asia": "E",
        "who_ps": k % 3,
        "wound_status": "healed" if surgery else "not_applicable",
        "uses_analgesics": False,
        "systemic_restarted": False,
    }


def _adverse_event(k: int, i: int, intervention: bool, terms: list[str], d: _Days) -> dict:
    serious = (k + i) % 10 == 0
    data: dict[str, Any] = {
        "term": terms[(k * 7 + i) % len(terms)],
        "grade": 1 + (k + i) % 3,
        "onset_on": d.iso(2 + 5 * i),
        "resolved": True,
        "resolved_on": d.iso(12 + 5 * i),
        "serious": serious,
        "relation_sbrt": ("unlikely", "possible")[i % 2] if intervention else "not_applicable",
        "relation_surgery": "not_applicable" if intervention else ("unlikely", "possible")[i % 2],
        "wound_complication": False,
        "action": ["medication"] if i % 3 == 0 else ["none"],
        "outcome": "recovered",
    }
    if serious:
        data["serious_criteria"] = ["hospitalisation"]
    return data


def _systemic_therapy(k: int, i: int, d: _Days) -> dict:
    return {
        "therapy_type": THERAPIES[(k + i) % 4],
        "stopped_on": d.iso(-10 + 16 * i),
        "stop_reason": "planned",
        "restarted": True,
        "restarted_on": d.iso(4 + 16 * i),
    }


def _deviation(i: int, d: _Days) -> dict:
    return {
        "occurred_on": d.iso(30 + 60 * i),
        "deviation_type": ("timing", "visit_missed")[i % 2],
        "description": "Follow-up visit outside its window.",
        "reported_to_sponsor": True,
    }


def _end_of_study(died_on: date, d: _Days) -> dict:
    ended = min(died_on, d.last).isoformat()
    return {"ended_on": ended, "reason": "died", "death_on": ended, "death_cause": "progression"}


def participant_records(
    *,
    k: int,
    intervention: bool,
    tumour: str,
    day0: date,
    died_on: date | None,
    today: date,
    terms: list[str],
) -> list[tuple[str, str, dict, str]]:
    """The 50 records of the ``k``-th randomised participant: (form, occurrence, data,
    status), data not yet computed."""
    d = _Days(day0, today)
    rows: list[tuple[str, str, dict, str]] = [
        ("baseline_clinical", "1", _baseline(k, tumour, d), "complete")
    ]
    if intervention:
        rows.append(("sbrt_delivery", "1", _sbrt(k, d), "complete"))
        adverse_events = 32
    else:
        rows += [
            ("surgery", "1", _surgery(k, d), "complete"),
            ("admission", "1", _admission(k, d), "complete"),
            ("rt_after_surgery", "1", _rt_after_surgery(k, d), "complete"),
        ]
        adverse_events = 30
    for code, offset in (("week4", 28), ("week12", 84), ("month6", 182)):
        if code == "month6" and k % 20 == 7:
            rows.append(("followup_clinical", code, {}, "not_done"))
        else:
            rows.append(
                ("followup_clinical", code, _followup(k, offset, not intervention, d), "complete")
            )
    if died_on is not None:
        adverse_events -= 1
        rows.append(("end_of_study", "1", _end_of_study(died_on, d), "complete"))
    logs: list[tuple[str, str, dict]] = [
        ("adverse_event", str(i + 1), _adverse_event(k, i, intervention, terms, d))
        for i in range(adverse_events)
    ]
    logs += [("systemic_therapy", str(i + 1), _systemic_therapy(k, i, d)) for i in range(11)]
    logs += [("deviation", str(i + 1), _deviation(i, d)) for i in range(2)]
    for n, (code, occurrence, data) in enumerate(logs):
        status = "complete"
        if (k + n) % 25 == 0:
            status = "draft"
        elif code == "adverse_event" and occurrence == "3" and k % 10 == 3:
            status = "voided"
        rows.append((code, occurrence, data, status))
    return rows


REASONS = {
    "not_done": "Visit missed: participant too ill to travel.",
    "voided": "Entered for the wrong participant.",
}


# --- the seed ------------------------------------------------------------------------------
def _allocations() -> list[dict]:
    from randomization.models import Allocation

    rows: Any = (
        Allocation.objects.filter(status="active")
        .order_by("pk")
        .values(
            "pk",
            "trial_id",
            "participant_id",
            "participant__site_id",
            "participant__primary_tumour",
            "participant__death__died_on",
            "treatment_start_planned",
            "treatment_start_actual",
            "arm__is_intervention",
        )
    )
    return list(rows)


def _records(
    allocations: list[dict], staff: dict[int, int], today: date, stats: dict
) -> Iterator[Any]:
    """ClinicalRecord objects for every allocation (computed and validated), one at a
    time (a chunk is built just before it is written: 100,000 at once would hold the
    whole table in memory); ``stats`` gets the seconds spent building them."""
    from django.utils import timezone

    from crf import codelists, instruments
    from crf.definition_store import current_definition
    from crf.models import ClinicalRecord

    terms = sorted(codelists.codes("ctcae_v5"))
    definitions: dict[str, Any] = {}
    forms: dict[str, Any] = {}
    tz = timezone.get_current_timezone()
    for k, a in enumerate(allocations):
        started = time.perf_counter()
        day0 = a["treatment_start_actual"] or a["treatment_start_planned"]
        user = staff[a["participant__site_id"]]
        moment = datetime.combine(min(day0, today - timedelta(days=1)), datetime.min.time(), tz)
        rows = participant_records(
            k=k,
            intervention=a["arm__is_intervention"],
            tumour=a["participant__primary_tumour"],
            day0=day0,
            died_on=a["participant__death__died_on"],
            today=today,
            terms=terms,
        )
        built = []
        for n, (code, occurrence, raw, status) in enumerate(rows):
            if code not in forms:
                forms[code] = instruments.load(code)
                definitions[code] = current_definition(code)
            data = instruments.compute(forms[code], raw) if raw else {}
            # every record is validated as the save service would (complete ones with
            # every applicable required item)
            errors = instruments.validate(
                forms[code], data, complete=status == "complete", today=today
            )
            if errors:
                raise ValueError(f"bench CRF data invalid for {code}: {errors}")
            stats["validated_records"] += 1
            at = moment + timedelta(minutes=n)
            built.append(
                ClinicalRecord(
                    trial_id=a["trial_id"],
                    participant_id=a["participant_id"],
                    form_code=code,
                    occurrence=occurrence,
                    definition=definitions[code],
                    data=data,
                    status=status,
                    status_reason=REASONS.get(status, ""),
                    revision=1,
                    created_at=at,
                    created_by_id=user,
                    updated_at=at,
                    updated_by_id=user,
                    completed_at=at if status == "complete" else None,
                )
            )
        stats["build_seconds"] += time.perf_counter() - started
        yield from built


def _insert(records: Iterator[Any]) -> dict:
    """The rows in chunks of CHUNK through the audit trigger, in one transaction and one
    audit context; seconds per chunk (the write only, not building the objects)."""
    from itertools import islice

    import pghistory
    from django.db import transaction

    from crf.models import ClinicalRecord

    seconds: list[float] = []
    rows: list[int] = []
    started = time.perf_counter()
    with transaction.atomic(), pghistory.context(actor=ACTOR) as context:
        context_id = context.id
        while chunk := list(islice(records, CHUNK)):
            t0 = time.perf_counter()
            ClinicalRecord.objects.bulk_create(chunk, batch_size=1000)
            # a last, partial chunk is scaled to 10,000 rows
            seconds.append(round((time.perf_counter() - t0) * CHUNK / len(chunk), 3))
            rows.append(len(chunk))
        commit_started = time.perf_counter()
    return {
        "seconds_per_10000": seconds,
        "rows_per_chunk": rows,
        "commit_s": round(time.perf_counter() - commit_started, 2),
        "insert_total_s": round(time.perf_counter() - started, 1),
        "context_id": context_id,
    }


def _expectations(allocations: list[dict]) -> dict:
    """FormExpectation of every allocation through the real path (one refresh per
    allocation, as a record save does)."""
    from django.db import transaction

    from crf.models import FormExpectation
    from crf.services import form_expectations_refresh
    from randomization.models import Allocation

    started = time.perf_counter()
    with transaction.atomic():
        for allocation in Allocation.objects.select_related("participant", "arm", "offer").filter(
            pk__in=[a["pk"] for a in allocations]
        ):
            form_expectations_refresh(allocation=allocation)
    seconds = time.perf_counter() - started
    return {
        "allocations": len(allocations),
        "rows": FormExpectation.objects.count(),
        "seconds": round(seconds, 1),
        "ms_per_allocation": round(1000 * seconds / max(1, len(allocations)), 1),
        "path": "crf.services.form_expectations_refresh per allocation",
    }


def seed(base: dict) -> dict:
    """The CRF records and expected forms of the cohort just seeded; the report's
    ``crf_seed`` section."""
    from django.utils import timezone

    from core.selectors import event_model_for
    from crf.models import ClinicalRecord

    started = time.perf_counter()
    today = timezone.localdate()
    allocations = _allocations()
    nurses = [base["users"]["nurse"].pk, base["users"]["nurse_b"].pk]
    staff = dict(zip(base["sites"], nurses, strict=True))
    built = {"build_seconds": 0.0, "validated_records": 0}
    inserted = _insert(_records(allocations, staff, today, built))
    built["build_seconds"] = round(built["build_seconds"], 1)
    seconds = inserted["seconds_per_10000"]
    ratio = round(seconds[-1] / seconds[0], 2) if seconds and seconds[0] else None
    events: Any = event_model_for(ClinicalRecord)
    rows = ClinicalRecord.objects.count()
    insert_events = events.objects.filter(pgh_label="insert").count()
    in_context = events.objects.filter(
        pgh_label="insert", pgh_context_id=inserted.pop("context_id")
    ).count()
    expectations = _expectations(allocations)
    result = {
        "rows": rows,
        "participants_with_records": len(allocations),
        "per_participant": PER_PARTICIPANT,
        **inserted,
        "ratio_last_first": ratio,
        "budget_ratio": MAX_RATIO,
        "insert_events": insert_events,
        "insert_events_with_seed_context": in_context,
        "events_match_rows": insert_events == rows == in_context,
        "within_budget": ratio is not None and ratio <= MAX_RATIO,
        **built,
        "form_expectations": expectations,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if not insert_events == rows == in_context:
        raise RuntimeError(
            f"audit: {insert_events} insert events ({in_context} in the seed context) "
            f"for {rows} clinical records"
        )
    print(f"[bench] crf: seeded {json_line(result)}", file=sys.stderr, flush=True)
    return result


def json_line(result: dict) -> str:
    import json

    return json.dumps(result, default=str)


# --- the pages -----------------------------------------------------------------------------
def crf_study_number(site_id: int) -> str | None:
    """A randomised (intervention-arm, alive, active) participant of ``site_id`` with the
    seeded records: the newest whose day 0 is at least 200 days ago (every follow-up
    visit past), picked by the same rule at every size."""
    from django.utils import timezone

    from randomization.models import Allocation

    return (
        Allocation.objects.filter(
            participant__site_id=site_id,
            participant__death__isnull=True,
            status="active",
            arm__is_intervention=True,
            treatment_start_planned__lte=timezone.localdate() - timedelta(days=200),
        )
        .order_by("-treatment_start_planned", "-pk")
        .values_list("participant__study_number", flat=True)
        .first()
    )


def pages(study_number: str | None) -> dict[str, tuple]:
    """label -> (user key, method, url, data) of the CRF pages."""
    from django.urls import reverse

    if study_number is None:
        return {}
    sn = study_number
    return {
        "participant page with form grid (HTML)": (
            "nurse",
            "get",
            reverse("cohort:participant_detail", args=[sn]),
            None,
        ),
        "participant forms API": (
            "nurse",
            "get",
            reverse("api:participant-forms", args=[sn]),
            None,
        ),
        "participant records API (adverse events)": (
            "nurse",
            "get",
            reverse("api:form-records", args=[sn, RECORDS_FORM]),
            None,
        ),
    }


def run(ctx: Any) -> dict:
    from bench import bench_pages

    return bench_pages.run(ctx, only_crf=True)
