"""Bulk writes through the tracked (audited) path: time per 10,000 rows as the table grows.

ENGINEERING §5: constant as the table grows; budget here: the last 10,000 rows within
1.5x of the first 10,000 of the same run. Inserts 100,000 instrument responses (JSONB
answers, a deferred foreign key to their questionnaire, one audit event per row) into the
tracked table ``crf_instrumentresponse``, all in ONE transaction, in batches of 10,000:

- ``bulk_in_context``: ``bulk_create`` inside one ``system_actor`` context (how a seed,
  an import or a Celery task writes);
- ``bulk_without_context``: the same with no pghistory context open (a shell, a raw
  script): events carry no context but must cost the same;
- ``per_row_in_context``: 30,000 single-row ``save()`` calls in one context.

Each part reports seconds per 10,000 rows, the last/first ratio, checks that every row
has its insert event and (in a context) that every event carries that context, and
counts the context table's row writes in the transaction (pg_stat_xact_user_tables):
one insert per context, no update per row.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

ROWS = 100_000
PER_ROW_ROWS = 30_000
BATCH = 10_000
INSTRUMENTS_PER_QUESTIONNAIRE = 6
MAX_RATIO = 1.5


def _setup(participants: int) -> list[int]:
    """Participants and one questionnaire per timepoint each, through the tracked path."""
    from django.db import transaction
    from django.utils import timezone

    from cohort.models import Participant
    from core.audit import system_actor
    from core.models import Site, User
    from crf.models import Questionnaire, Timepoint
    from randomization.models import Trial

    trial = Trial.objects.get(code="BLEND")
    timepoints = list(Timepoint.objects.filter(trial=trial).order_by("day_offset"))
    # enough questionnaires for the biggest part (each gets up to 6 responses)
    needed = -(-ROWS // INSTRUMENTS_PER_QUESTIONNAIRE)
    n_participants = max(participants, -(-needed // len(timepoints)))
    now = timezone.now()
    with system_actor("bench-tracked-setup"), transaction.atomic():
        site, _ = Site.objects.get_or_create(code="bench-trk", defaults={"name": "bench tracked"})
        user, _ = User.objects.get_or_create(username="bench-tracked")
        first = 9_000_000
        people = Participant.objects.bulk_create(
            [
                Participant(
                    study_number=f"PRE-{first + i}",
                    site=site,
                    sex="female",
                    year_of_birth=1955,
                    primary_tumour="breast",
                    referring_department="radiation_oncology",
                    registered_by=user,
                )
                for i in range(n_participants)
            ],
            batch_size=2000,
        )
        questionnaires = Questionnaire.objects.bulk_create(
            [
                Questionnaire(
                    participant=person,
                    trial=trial,
                    timepoint=tp,
                    day0=now.date(),
                    opens_at=now,
                    due_at=now,
                    closes_at=now + timedelta(days=7),
                    next_action_at=now,
                    created_at=now,
                )
                for person in people
                for tp in timepoints
            ],
            batch_size=2000,
        )
    return [q.pk for q in questionnaires]


def _responses(questionnaire_ids: list[int], tag: str, lo: int, hi: int) -> list[Any]:
    from crf.models import InstrumentResponse

    return [
        InstrumentResponse(
            questionnaire_id=questionnaire_ids[i // INSTRUMENTS_PER_QUESTIONNAIRE],
            instrument=f"{tag}{i % INSTRUMENTS_PER_QUESTIONNAIRE}",
            instrument_version="bench-1",
            answers={"q1": i % 4 + 1, "q2": i % 7 + 1, "note": "bench"},
            scores={"total": i % 100},
        )
        for i in range(lo, hi)
    ]


def _context_writes() -> dict:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'pghistory_context'"
        )
        row = cur.fetchone() or (0, 0)
    return {"inserts": row[0], "updates": row[1]}


def _part(
    questionnaire_ids: list[int], *, tag: str, rows: int, per_row: bool, context: bool
) -> dict:
    import pghistory
    from django.db import transaction

    from core.selectors import event_model_for
    from crf.models import InstrumentResponse

    events: Any = event_model_for(InstrumentResponse)
    last_pk = InstrumentResponse.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    seconds: list[float] = []
    context_id: uuid.UUID | None = None
    started = time.perf_counter()
    with transaction.atomic():
        opened = pghistory.context(actor="bench-tracked", part=tag) if context else None
        if opened is not None:
            context_id = opened.__enter__().id
        try:
            for lo in range(0, rows, BATCH):
                batch = _responses(questionnaire_ids, tag, lo, min(rows, lo + BATCH))
                t0 = time.perf_counter()
                if per_row:
                    for response in batch:
                        response.save()
                else:
                    InstrumentResponse.objects.bulk_create(batch, batch_size=1000)
                seconds.append(round(time.perf_counter() - t0, 3))
            context_writes = _context_writes()
        finally:
            if opened is not None:
                opened.__exit__(None, None, None)
        commit_started = time.perf_counter()
    commit_seconds = time.perf_counter() - commit_started
    new_rows = InstrumentResponse.objects.filter(pk__gt=last_pk)
    new_events = events.objects.filter(pgh_obj_id__gt=last_pk, pgh_label="insert")
    return {
        "rows": rows,
        "seconds_per_10000": seconds,
        "first_s": seconds[0],
        "last_s": seconds[-1],
        "ratio_last_first": round(seconds[-1] / seconds[0], 2),
        "within_budget": seconds[-1] <= MAX_RATIO * seconds[0],
        "commit_s": round(commit_seconds, 2),
        "total_s": round(time.perf_counter() - started, 1),
        "rows_written": new_rows.count(),
        "insert_events": new_events.count(),
        "events_with_this_context": new_events.filter(pgh_context_id=context_id).count()
        if context_id
        else None,
        "events_without_context": new_events.filter(pgh_context__isnull=True).count(),
        "context_table_writes_in_txn": context_writes,
    }


def run(ctx: Any) -> dict:
    t0 = time.perf_counter()
    questionnaire_ids = _setup(ctx.participants)
    setup_seconds = round(time.perf_counter() - t0, 1)
    parts = {
        "bulk_in_context": _part(
            questionnaire_ids, tag="a", rows=ROWS, per_row=False, context=True
        ),
        "bulk_without_context": _part(
            questionnaire_ids, tag="b", rows=ROWS, per_row=False, context=False
        ),
        "per_row_in_context": _part(
            questionnaire_ids, tag="c", rows=PER_ROW_ROWS, per_row=True, context=True
        ),
    }
    return {
        "setup": {"questionnaires": len(questionnaire_ids), "seconds": setup_seconds},
        **parts,
        "budget_ratio": MAX_RATIO,
        "within_budget": all(p["within_budget"] for p in parts.values()),
    }
