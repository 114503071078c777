"""Staff pages and API lists at scale (ENGINEERING.md §5): does a page's cost grow with
the cohort?

One cohort per size (2,000 and 20,000 participants, plus ``--participants N`` when it is
another size), each in its own copy of the bench database, seeded in bulk SQL with the
triggers off (audit triggers and foreign-key checks; the pages read the same rows):
participants with identity and the four consents over two sites and two years; 3 %
deceased, 2 % withdrawn; 15 % screened for BLEND and 10 % randomised (offers for the
intervention arm; corrections for 1 % of allocations, never fewer than a page); the nine
BLEND questionnaires of every participant (completed, missed, open, sent, reminded, failed
or scheduled, by their window and the clock; failed never fewer than a page); an audit
event per participant. Then, through the tracked path (audit triggers on, one
context), 50 clinical records per randomised participant and their expected forms
(bench/bench_crf.py: 10,000 records at 2,000 participants, 100,000 at 20,000; seconds per
10,000 rows in the report's ``crf_seed``). Every list a page shows is longer than its page at every size, so
the sizes render the same number of rows.

Every page is requested through Django's test client (server time: middleware, views,
templates, SQL) by the role that uses it, in interleaved rounds: each page at every size
in turn (one untimed request after switching database), so a load change on the machine
hits every size alike. Before the first request the process's heap is frozen out of the
cyclic garbage collector, as blend/wsgi.py does in a server worker once the app is loaded.

Per page and size: median, p95, SQL queries (BEGIN/COMMIT/SAVEPOINT not counted), rows
listed (a list that is not full at 2,000 also grows by filling its page). Per
page: the ratio of its median at each larger size to its median at 2,000 (same run), and
PASS/FAIL against the budget: ratio ≤ 1.2, same query count at every size, median < 50 ms,
p95 < 150 ms, at most 15 queries. The copies are dropped at the end.
"""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from datetime import date

from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

REFERENCE = 2_000
STANDARD_SIZES = (2_000, 20_000)
ROUNDS = 10
PER_ROUND = 3  # timed requests per page, size and round (after one untimed request)
BUDGET = {"median_ms": 50, "p95_ms": 150, "queries": 15, "ratio": 1.2}
SPAN_DAYS = 730  # registrations spread over two years, at every size
SITES = ("bench-a", "bench-b")
# every list a page renders is longer than its page (50) at every size: the sizes then
# render the same number of rows and the ratio compares like with like
CORRECTIONS_MIN = 60  # per site
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


# --- databases -----------------------------------------------------------------------------------
def _admin_connection():
    from bench import admin_connection

    return admin_connection(connection.settings_dict)


def _clone(template: str, name: str) -> None:
    connections.close_all()  # CREATE DATABASE ... TEMPLATE needs the template unused
    conn = _admin_connection()
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    conn.close()


def _drop(name: str) -> None:
    connections.close_all()
    conn = _admin_connection()
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def _use(name: str) -> None:
    """Point Django's connection at database ``name`` (the next query reconnects)."""
    connections.close_all()
    connection.settings_dict["NAME"] = name


# --- the fixed part: sites, staff, consent form, a sequence ---------------------------------------
def _base() -> dict:
    from django.contrib.auth.models import Permission

    from cohort.models import ConsentFormVersion
    from core.audit import system_actor
    from core.models import Site, SiteMembership, User
    from crf.models import Timepoint
    from randomization.models import Arm, Trial
    from randomization.services import current_environment, sequence_generate

    with system_actor("bench"):
        sites = [Site.objects.get_or_create(code=c, defaults={"name": c})[0] for c in SITES]

        def user(name: str, role: str, site) -> User:
            u, created = User.objects.get_or_create(username=f"bench-pages-{name}")
            if created:
                SiteMembership.objects.create(user=u, site=site, role=role)
            return u

        users = {
            "nurse": user("nurse", "nurse", sites[0]),
            "nurse_b": user("nurse-b", "nurse", sites[1]),
            "investigator": user("investigator", "investigator", sites[0]),
            "data_manager": user("data-manager", "data_manager", sites[0]),
            "statistician": user("statistician", "statistician", None),
        }
        users["statistician"].user_permissions.add(
            Permission.objects.get(codename="manage_sequences")
        )
        users["statistician"] = User.objects.get(pk=users["statistician"].pk)
        form, _ = ConsentFormVersion.objects.get_or_create(
            code="present-icf",
            version="bench",
            language="nl",
            defaults={"effective_from": date(2020, 1, 1)},
        )
        trial = Trial.objects.get(code="BLEND")
        sequence = sequence_generate(
            by=users["statistician"],
            trial=trial,
            method="permuted_blocks",
            environment=current_environment(),
            factors=["site"],
            block_sizes=[4],
            slots_per_stratum=8,
        )
    arms = {a.is_intervention: a.pk for a in Arm.objects.filter(trial=trial)}
    return {
        "sites": [s.pk for s in sites],
        "site_codes": [s.code for s in sites],
        "users": users,
        "form": form.pk,
        "trial": trial.pk,
        "protocol": trial.protocol_version,
        "intervention": arms[True],
        "control": arms[False],
        "sequence": sequence.pk,
        "timepoints": list(
            Timepoint.objects.filter(trial=trial, is_active=True).values_list(
                "pk", "day_offset", "window_before", "window_after"
            )
        ),
    }


# --- the cohort, in bulk SQL ----------------------------------------------------------------------
SEED_SQL = [
    # participants: registered over SPAN_DAYS (the newest now), sites alternating
    """
    INSERT INTO cohort_participant (study_number, site_id, sex, year_of_birth, primary_tumour,
        referring_department, registered_at, registered_by_id)
    SELECT 'PRE-' || lpad(num, greatest(5, length(num)), '0'),
           (%(sites)s::bigint[])[1 + g %% 2],
           (ARRAY['female','male'])[1 + g %% 2], 1940 + g %% 50,
           (ARRAY['breast','prostate','lung','kidney','other'])[1 + g %% 5],
           'radiation_oncology',
           now() - make_interval(secs => (%(n)s - g)::float8 * %(span)s * 86400 / %(n)s),
           (%(nurses)s::bigint[])[1 + g %% 2]
    FROM (SELECT g, nextval('cohort_study_number_seq')::text AS num
          FROM generate_series(1, %(n)s) AS g) AS s
    """,
    """
    INSERT INTO cohort_identity (participant_id, site_id, given_name, family_name, date_of_birth,
        hospital_number, email, phone, preferred_language)
    SELECT id, site_id, 'Test', 'Persoon', DATE '1950-01-01', 'H' || substr(study_number, 5),
           '', '', 'nl'
    FROM cohort_participant
    """,
    """
    INSERT INTO cohort_consentrecord (participant_id, element, answer, given_on, form_version_id,
        mode, taken_by_id, recorded_at, correction_reason)
    SELECT p.id, e.element, true, (p.registered_at AT TIME ZONE 'UTC')::date, %(form)s, 'paper',
           p.registered_by_id, p.registered_at, ''
    FROM cohort_participant p
    CROSS JOIN (VALUES ('cohort'), ('proms'), ('randomisation_offer'), ('control_uninformed'))
        AS e(element)
    """,
    """
    INSERT INTO cohort_death (participant_id, died_on, source, recorded_at, recorded_by_id)
    SELECT id, current_date - 1, 'family', now() - interval '1 day', registered_by_id
    FROM cohort_participant WHERE id %% 33 = 7
    """,
    """
    INSERT INTO cohort_withdrawal (participant_id, scope, effective_on, reason, recorded_at,
        recorded_by_id)
    SELECT id, 'questionnaires', current_date - 2, '', now() - interval '2 days', registered_by_id
    FROM cohort_participant WHERE id %% 50 = 11
    """,
    # screenings: 10 % eligible (randomised below), 5 % not eligible; a week after registration.
    # Chosen by pairs of ids (id / 2), and the sites alternate by id: both sites get their
    # share whatever id the sequence starts at (by id alone, every screening landed at one site)
    """
    INSERT INTO randomization_screening (trial_id, participant_id, site_id, protocol_version,
        screened_on, screened_by_id, recorded_at, verdict, reasons)
    SELECT %(trial)s, id, site_id, %(protocol)s,
           (LEAST(registered_at + interval '7 days', now()) AT TIME ZONE 'UTC')::date,
           registered_by_id, LEAST(registered_at + interval '7 days', now()),
           CASE WHEN (id / 2) %% 20 IN (0, 10) THEN 'eligible' ELSE 'ineligible' END,
           CASE WHEN (id / 2) %% 20 IN (0, 10) THEN '[]'::jsonb ELSE '["age"]'::jsonb END
    FROM cohort_participant WHERE (id / 2) %% 20 IN (0, 10, 5)
    """,
    """
    INSERT INTO randomization_allocation (trial_id, participant_id, site_id, arm_id, trial_number,
        sequence_id, stratum, screening_id, randomised_at, randomised_by_id, request_id, status,
        treatment_start_planned)
    SELECT s.trial_id, s.participant_id, s.site_id,
           CASE WHEN (s.participant_id / 2) %% 20 = 0 THEN %(intervention)s ELSE %(control)s END,
           'BLEND-' || lpad((row_number() OVER (ORDER BY s.recorded_at, s.id))::text, 6, '0'),
           %(sequence)s, 'site=' || site.code, s.id, s.recorded_at + interval '1 minute',
           s.screened_by_id, '', 'active', s.screened_on + 14
    FROM randomization_screening s JOIN core_site site ON site.id = s.site_id
    WHERE s.verdict = 'eligible'
    """,
    """
    INSERT INTO randomization_interventionoffer (allocation_id, offered_on, offered_by_id,
        decision, decided_on, refusal_reason, consent_form_version_id, consent_date,
        recorded_by_id, recorded_at)
    SELECT a.id, (a.randomised_at AT TIME ZONE 'UTC')::date, a.randomised_by_id,
           CASE WHEN a.id %% 2 = 0 THEN 'accepted' ELSE 'pending' END,
           CASE WHEN a.id %% 2 = 0 THEN (a.randomised_at AT TIME ZONE 'UTC')::date END, '',
           CASE WHEN a.id %% 2 = 0 THEN %(form)s END,
           CASE WHEN a.id %% 2 = 0 THEN (a.randomised_at AT TIME ZONE 'UTC')::date END,
           a.randomised_by_id, a.randomised_at
    FROM randomization_allocation a WHERE a.arm_id = %(intervention)s
    """,
    # corrections: 1 % of each site's allocations but never fewer than CORRECTIONS_MIN per
    # site (more than a page of the corrections list at every size, so every size renders
    # a full page), spread over the allocations in time; a quarter of them still open
    """
    INSERT INTO randomization_allocationcorrection (allocation_id, reason, proposed_by_id,
        proposed_role, proposed_at, status, decided_by_id, decided_role, decided_at, decision_note)
    SELECT a.id, 'randomised twice by mistake', %(investigator)s, 'investigator',
           a.randomised_at + interval '1 day',
           CASE WHEN (a.rn / a.step) %% 4 = 0 THEN 'proposed' ELSE 'rejected' END,
           CASE WHEN (a.rn / a.step) %% 4 = 0 THEN NULL ELSE %(statistician)s END,
           CASE WHEN (a.rn / a.step) %% 4 = 0 THEN '' ELSE 'statistician' END,
           CASE WHEN (a.rn / a.step) %% 4 = 0 THEN NULL
                ELSE a.randomised_at + interval '2 days' END, ''
    FROM (SELECT id, randomised_at,
                 row_number() OVER (PARTITION BY site_id ORDER BY id) AS rn,
                 GREATEST(1, LEAST(100, count(*) OVER (PARTITION BY site_id)
                                        / %(corrections_min)s)) AS step
          FROM randomization_allocation) a
    WHERE a.rn %% a.step = 0
    """,
    # questionnaires: the nine BLEND timepoints of every participant, day 0 two weeks after
    # registration; the status follows from the window and the clock. 2 % of the closed
    # windows stay 'failed' (invitations that could not be sent are listed until someone
    # acts): the failed worklist has more than a page and more than the count cap at
    # every size, like the other buckets
    """
    INSERT INTO crf_questionnaire (participant_id, trial_id, timepoint_id, status, day0,
        day0_is_actual, opens_at, due_at, closes_at, next_action_at, sending_kind, attempts,
        last_error, sent_at, reminders_sent, reminders_failed, completed_on, completed_at,
        completion_recorded_at, outside_window, mode, scores, cancel_reason, created_at)
    SELECT w.participant_id, %(trial)s, w.tp, w.status, w.day0, true, w.opens, w.due, w.closes,
           CASE WHEN w.status IN ('scheduled', 'open') THEN GREATEST(w.opens, now())
                WHEN w.status IN ('sent', 'reminded') THEN w.closes END,
           '', CASE WHEN w.status = 'failed' THEN 5 ELSE 0 END,
           CASE WHEN w.status = 'failed' THEN 'SMTPException' ELSE '' END,
           CASE WHEN w.status IN ('sent', 'reminded', 'completed', 'missed') THEN w.opens END,
           CASE WHEN w.status = 'reminded' THEN 1 ELSE 0 END, 0,
           CASE WHEN w.status = 'completed' THEN (w.opens AT TIME ZONE 'UTC')::date END,
           CASE WHEN w.status = 'completed' THEN w.opens + interval '1 hour' END,
           CASE WHEN w.status = 'completed' THEN w.opens + interval '1 hour' END,
           false, CASE WHEN w.status = 'completed' THEN 'epro' ELSE '' END, '{}'::jsonb, '',
           w.created
    FROM (
        SELECT t.participant_id, t.tp, t.day0, t.opens, t.due, t.closes, t.created,
               CASE WHEN t.closes <= now() THEN
                        CASE WHEN t.k %% 50 = 0 THEN 'failed'
                             WHEN t.k %% 5 = 0 THEN 'missed' ELSE 'completed' END
                    WHEN t.opens <= now() THEN
                        (ARRAY['sent', 'sent', 'reminded', 'open', 'completed', 'completed',
                               'completed', 'sent', 'reminded', 'failed'])[1 + t.k %% 10]
                    ELSE 'scheduled' END AS status
        FROM (
            SELECT p.id AS participant_id, tp.id AS tp, tp.k, p.registered_at AS created,
                   (p.registered_at AT TIME ZONE 'UTC')::date + 14 AS day0,
                   ((p.registered_at AT TIME ZONE 'UTC')::date + 14 + tp.day_offset
                       - tp.window_before)::timestamp AT TIME ZONE 'UTC' AS opens,
                   ((p.registered_at AT TIME ZONE 'UTC')::date + 14 + tp.day_offset)::timestamp
                       AT TIME ZONE 'UTC' AS due,
                   ((p.registered_at AT TIME ZONE 'UTC')::date + 14 + tp.day_offset
                       + tp.window_after + 1)::timestamp AT TIME ZONE 'UTC' AS closes
            FROM cohort_participant p
            CROSS JOIN LATERAL (
                SELECT x.id, x.day_offset, x.window_before, x.window_after,
                       (p.id * 7 + x.id) AS k
                FROM unnest(%(tp_ids)s::bigint[], %(tp_offsets)s::int[], %(tp_before)s::int[],
                            %(tp_after)s::int[]) AS x(id, day_offset, window_before, window_after)
            ) tp
        ) t
    ) w
    """,
    # the audit trail: the insert event of every participant (the audit index lists them)
    """
    INSERT INTO cohort_participantevent (pgh_created_at, pgh_label, id, study_number, sex,
        year_of_birth, primary_tumour, bone_metastases_diagnosed_on, referring_department,
        registered_at, pgh_context_id, pgh_obj_id, registered_by_id, site_id)
    SELECT registered_at, 'insert', id, study_number, sex, year_of_birth, primary_tumour,
           bone_metastases_diagnosed_on, referring_department, registered_at, NULL, id,
           registered_by_id, site_id
    FROM cohort_participant ORDER BY id
    """,
]


def _seed(n: int, base: dict) -> tuple[float, dict]:
    """Seed ``n`` participants and what hangs off them into the (empty) cohort, then the
    clinical records of the randomised ones through the tracked path (bench_crf); the
    seconds of the bulk SQL part and the CRF seed's report."""
    from bench import bench_crf

    started = time.monotonic()
    _seed_rows(n, base)
    seconds = time.monotonic() - started
    crf_seed = bench_crf.seed(base)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")  # visibility map and statistics, as autovacuum would
    return seconds, crf_seed


def _seed_rows(n: int, base: dict) -> None:
    """The rows of :func:`_seed`, in one transaction (or inside the caller's)."""
    from django.db import transaction

    users = base["users"]
    tps = base["timepoints"]
    params = {
        "n": n,
        "span": SPAN_DAYS,
        "sites": base["sites"],
        "nurses": [users["nurse"].pk, users["nurse_b"].pk],
        "form": base["form"],
        "trial": base["trial"],
        "protocol": base["protocol"],
        "intervention": base["intervention"],
        "control": base["control"],
        "sequence": base["sequence"],
        "investigator": users["investigator"].pk,
        "statistician": users["statistician"].pk,
        "corrections_min": CORRECTIONS_MIN,
        "tp_ids": [t[0] for t in tps],
        "tp_offsets": [t[1] for t in tps],
        "tp_before": [t[2] for t in tps],
        "tp_after": [t[3] for t in tps],
    }
    # Triggers off for the seed only (session_replication_role = replica): the audit
    # triggers made one large insert grow super-linearly (see bench_sweep).
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        for sql in SEED_SQL:
            cur.execute(sql, params)


def _facts() -> dict:
    """What the pages of one size need in their URLs, and the seeded row counts."""
    from bench import bench_crf
    from cohort.models import Participant
    from core.models import Site
    from crf.models import ClinicalRecord

    site_a = Site.objects.get(code=SITES[0])
    study_number = (
        Participant.objects.filter(site=site_a, death__isnull=True)
        .order_by("-pk")
        .values_list("study_number", flat=True)
        .first()
    )
    counts = {}
    with connection.cursor() as cur:
        for table in (
            "cohort_participant",
            "cohort_consentrecord",
            "randomization_screening",
            "randomization_allocation",
            "crf_questionnaire",
            "cohort_participantevent",
            "crf_clinicalrecord",
            "crf_formexpectation",
        ):
            cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
            counts[table] = cur.fetchone()[0]
    crf_study_number = bench_crf.crf_study_number(site_a.pk)
    return {
        "study_number": study_number,
        "crf_study_number": crf_study_number,
        "crf_records_of_page_participant": ClinicalRecord.objects.filter(
            participant__study_number=crf_study_number
        ).count(),
        "rows": counts,
    }


# --- the pages ----------------------------------------------------------------------------------
def _pages(study_number: str) -> dict[str, tuple]:
    """label -> (user key, method, url, data). Every staff page and API list that lists or
    aggregates cohort data, for the role that uses it."""
    from django.urls import reverse

    sn = study_number
    return {
        "participant list (HTML)": ("nurse", "get", reverse("cohort:participant_list"), None),
        "participant list, active (HTML)": (
            "nurse",
            "get",
            reverse("cohort:participant_list") + "?status=active",
            None,
        ),
        "participant list, deceased (HTML)": (
            "nurse",
            "get",
            reverse("cohort:participant_list") + "?status=deceased",
            None,
        ),
        "participant list, search number (HTML)": (
            "nurse",
            "get",
            reverse("cohort:participant_list") + "?q=" + sn,
            None,
        ),
        "participant list, search digits (HTML)": (
            "nurse",
            "get",
            reverse("cohort:participant_list") + "?q=" + sn[-5:],  # five digits, as typed
            None,
        ),
        "participant page (HTML)": (
            "nurse",
            "get",
            reverse("cohort:participant_detail", args=[sn]),
            None,
        ),
        "participants API list": ("nurse", "get", reverse("api:participant-list"), None),
        "participants API list (statistician)": (
            "statistician",
            "get",
            reverse("api:participant-list"),
            None,
        ),
        "participants API search": (
            "nurse",
            "post",
            reverse("api:participant-search"),
            {"search": "H" + sn[4:]},
        ),
        "trial list API": ("nurse", "get", reverse("api:trial-list"), None),
        "trial overview (HTML)": (
            "nurse",
            "get",
            reverse("randomization:trial_overview", args=["BLEND"]),
            None,
        ),
        "trial overview (statistician)": (
            "statistician",
            "get",
            reverse("randomization:trial_overview", args=["BLEND"]),
            None,
        ),
        "screenings API list": (
            "nurse",
            "get",
            reverse("api:trial-screenings", args=["BLEND"]),
            None,
        ),
        "randomisations API list": (
            "nurse",
            "get",
            reverse("api:trial-randomisations", args=["BLEND"]),
            None,
        ),
        "randomisations API list (statistician)": (
            "statistician",
            "get",
            reverse("api:trial-randomisations", args=["BLEND"]),
            None,
        ),
        "corrections (HTML)": (
            "investigator",
            "get",
            reverse("randomization:correction_list", args=["BLEND"]),
            None,
        ),
        "questionnaire API (participant)": (
            "nurse",
            "get",
            reverse("api:participant-questionnaires", args=[sn]),
            None,
        ),
        "questionnaire worklist, open (HTML)": ("nurse", "get", reverse("crf:worklist"), None),
        "questionnaire worklist, overdue (HTML)": (
            "nurse",
            "get",
            reverse("crf:worklist") + "?bucket=overdue",
            None,
        ),
        "questionnaire worklist, failed (HTML)": (
            "data_manager",
            "get",
            reverse("crf:worklist") + "?bucket=failed",
            None,
        ),
        "audit index, participants (HTML)": (
            "data_manager",
            "get",
            reverse("audit_index") + "?model=cohort.participant",
            None,
        ),
    }


def _request(client, method: str, url: str, data):
    if method == "post":
        return client.post(url, data, content_type="application/json")
    return client.get(url)


@contextmanager
def _keep_query_log():
    """Django clears the query log at each request start; keep it for the count."""
    from django.core.signals import request_started
    from django.db import reset_queries

    request_started.disconnect(reset_queries)
    reset_queries()  # the log is a bounded deque; a full one would hide new queries
    try:
        with CaptureQueriesContext(connection) as ctx:
            yield ctx
    finally:
        request_started.connect(reset_queries)


def _rows(response) -> int | None:
    """How many rows the page listed (a list not yet full at 2,000 renders fewer rows
    there: the ratio then also measures the page filling up)."""
    if response.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        return len(body.get("results", [])) if isinstance(body, dict) else None
    if response.context is None or response.context.get("participant") is not None:
        return None  # a record's page (its panels), not a list
    found = None
    for key in ("page", "screenings", "allocations", "events"):  # lists, not panels
        try:
            value = response.context[key]
        except KeyError:
            continue
        found = (found or 0) + len(getattr(value, "object_list", value))
        if key == "page":
            break
    return found


def _count_queries(client, method: str, url: str, data) -> dict:
    from django.template import Template
    from django.test.utils import instrumented_test_render

    _request(client, method, url, data)  # warm caches and the connection
    plain = Template._render
    Template._render = instrumented_test_render  # response.context, for this request only
    try:
        with _keep_query_log() as ctx:
            response = _request(client, method, url, data)
    finally:
        Template._render = plain
    statements = [q["sql"].strip().upper() for q in ctx.captured_queries]
    return {
        "status": response.status_code,
        "queries": sum(1 for sql in statements if not sql.startswith(CONTROL)),
        "statements_incl_transaction_control": len(statements),
        "rows_listed": _rows(response),
    }


def _time(client, method: str, url: str, data, n: int) -> tuple[list[float], set[int]]:
    _request(client, method, url, data)  # untimed: the connection may have just been opened
    samples, statuses = [], set()
    for _ in range(n):
        started = time.perf_counter()
        response = _request(client, method, url, data)
        samples.append((time.perf_counter() - started) * 1000)
        statuses.add(response.status_code)
    return samples, statuses


def _verdict(label: str, by_size: dict[int, dict], sizes: list[int]) -> dict:
    reference = by_size[REFERENCE][label]
    out: dict = {"ratios": {}, "queries": {s: by_size[s][label].get("queries") for s in sizes}}
    problems = []
    for size in sizes:
        row = by_size[size][label]
        if row.get("status") != 200:
            problems.append(f"{size}: answered {row.get('status')}")
            continue
        if row["median_ms"] >= BUDGET["median_ms"]:
            problems.append(f"{size}: median {row['median_ms']} ms")
        if row["p95_ms"] >= BUDGET["p95_ms"]:
            problems.append(f"{size}: p95 {row['p95_ms']} ms")
        if row["queries"] > BUDGET["queries"]:
            problems.append(f"{size}: {row['queries']} queries")
        if size != REFERENCE and reference.get("median_ms"):
            ratio = round(row["median_ms"] / reference["median_ms"], 2)
            out["ratios"][f"{size}/{REFERENCE}"] = ratio
            if ratio > BUDGET["ratio"]:
                problems.append(f"{size}/{REFERENCE}: ×{ratio}")
    if len(set(out["queries"].values())) != 1:
        problems.append("query count differs between sizes")
    out["pass"] = not problems
    out["problems"] = problems
    return out


def _table(labels, by_size, verdicts, sizes) -> str:
    """The report as text lines (also in the JSON), one line per page."""
    head = ["page".ljust(42)]
    for s in sizes:
        head.append(f"{s:>7}: med/p95 ms, queries, rows")
    head += [f"{s}/{REFERENCE}" for s in sizes if s != REFERENCE] + ["verdict"]
    lines = ["  ".join(head)]
    for label in labels:
        cells = [label.ljust(42)]
        for s in sizes:
            r = by_size[s][label]
            rows = r.get("rows_listed")
            cells.append(
                f"{r.get('median_ms', '-'):>7}/{r.get('p95_ms', '-'):<7} "
                f"{r.get('queries')!s:>2} {'-' if rows is None else rows:>4}   "
            )
        cells += [
            f"×{verdicts[label]['ratios'].get(f'{s}/{REFERENCE}', '-')}"
            for s in sizes
            if s != REFERENCE
        ]
        verdict = verdicts[label]
        cells.append("PASS" if verdict["pass"] else "FAIL " + "; ".join(verdict["problems"]))
        lines.append("  ".join(cells))
    return "\n".join(lines)


def run(ctx, *, only_crf: bool = False) -> dict:
    """Every page at every size; ``only_crf``: the CRF pages only (``--only crf``)."""
    import sys

    from django.conf import settings
    from django.test import Client, override_settings

    from bench import bench_crf

    # ``--sizes`` (development runs at small sizes) replaces the standard sizes; the
    # reference size is always among them
    chosen = getattr(ctx, "sizes", None) or (*STANDARD_SIZES, max(ctx.participants, 100))
    sizes = sorted({REFERENCE, *chosen})
    home = connection.settings_dict["NAME"]
    base = _base()
    clients = {}
    for key, user in base["users"].items():
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)  # the session row is copied into every size's database
        clients[key] = client
    names = {size: f"{home}_p{size}" for size in sizes}
    seeded: dict[int, dict] = {}
    crf_seeds: dict[int, dict] = {}
    # the bench requests an API page far more often than the production rate allows
    rates = {**settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}), "user": "1000000/min"}
    throttle = override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    )
    try:
        for size in sizes:
            _clone(home, names[size])
            _use(names[size])
            seconds, crf_seeds[size] = _seed(size, base)
            seeded[size] = {
                "seed_seconds": round(seconds, 1),
                "crf_seed_seconds": crf_seeds[size]["seconds"],
                **_facts(),
            }
            print(f"[bench] pages: seeded {size} in {seconds:.1f} s", file=sys.stderr, flush=True)
        pages = {
            size: {
                **({} if only_crf else _pages(seeded[size]["study_number"])),
                **bench_crf.pages(seeded[size]["crf_study_number"]),
            }
            for size in sizes
        }
        # What a server worker does once the app is loaded (blend/wsgi.py): the heap that
        # lives as long as the process is frozen out of the cyclic GC's full collections
        # (unfrozen, one came about every 100 requests and took 100-170 ms: it was the
        # p95 of whichever page it landed on, not that page's cost)
        gc.collect()
        gc.freeze()
        labels = list(pages[sizes[0]])
        by_size: dict[int, dict] = {size: {} for size in sizes}
        samples: dict[int, dict[str, list[float]]] = {s: {lb: [] for lb in labels} for s in sizes}
        statuses: dict[int, dict[str, set]] = {s: {lb: set() for lb in labels} for s in sizes}
        with throttle:
            for size in sizes:
                _use(names[size])
                for label, (who, method, url, data) in pages[size].items():
                    by_size[size][label] = _count_queries(clients[who], method, url, data)
            # each page at every size in turn, so one page's sizes are timed within a
            # second of each other: a load change on the machine hits them alike
            for _round in range(ROUNDS):
                for label in labels:
                    for size in sizes:
                        _use(names[size])
                        who, method, url, data = pages[size][label]
                        times, codes = _time(clients[who], method, url, data, PER_ROUND)
                        samples[size][label] += times
                        statuses[size][label] |= codes
        for size in sizes:
            for label in labels:
                row = by_size[size][label]
                if statuses[size][label] != {200}:
                    row["status"] = sorted(statuses[size][label] | {row["status"]})[-1]
                row.update(ctx.summarise(samples[size][label]))
    finally:
        gc.unfreeze()
        _use(home)
        for name in names.values():
            _drop(name)
    verdicts = {label: _verdict(label, by_size, sizes) for label in labels}
    table = _table(labels, by_size, verdicts, sizes)
    print(table, file=sys.stderr, flush=True)
    return {
        "sizes": sizes,
        "reference": REFERENCE,
        "budget": BUDGET,
        "seeded": seeded,
        "results": by_size,
        "verdicts": verdicts,
        "all_pass": all(v["pass"] for v in verdicts.values()),
        "table": table.splitlines(),
        # the CRF seed of the largest size (ENGINEERING §5: tracked writes per 10,000
        # rows), with every size's under "by_size"
        "crf_seed": {**crf_seeds[sizes[-1]], "size": sizes[-1], "by_size": crf_seeds},
    }
