"""Staff pages and API list pages at scale (ENGINEERING.md §5).

Seeds a synthetic cohort in bulk SQL (participants with identity and the four
consents, spread over two sites), then requests each page through Django's test
client as a nurse (server time: middleware, views, templates, SQL) at a small and
at the full size. Reports median / p95 per page, the SQL query count, and whether
the query count is the same at both sizes.

Budget: median < 50 ms, p95 < 150 ms, at most 15 queries (BEGIN/COMMIT/SAVEPOINT not
counted; the total with them is reported too), same count at both sizes.
"""

from __future__ import annotations

import time

from django.db import connection
from django.test.utils import CaptureQueriesContext

REPEAT = 30
BUDGET = {"median_ms": 50, "p95_ms": 150, "queries": 15}


def _seed(total: int, user_id: int, site_ids: list[int], form_id: int) -> None:
    """Grow the cohort to ``total`` participants with bulk SQL (audit triggers still fire)."""
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM cohort_participant")
        have = cur.fetchone()[0]
        need = total - have
        if need <= 0:
            return
        cur.execute(
            """
            WITH new AS (
                INSERT INTO cohort_participant (study_number, site_id, sex, year_of_birth, primary_tumour,
                    referring_department, registered_at, registered_by_id)
                SELECT 'PRE-' || lpad(nextval('cohort_study_number_seq')::text, 5, '0'),
                       (%(sites)s::bigint[])[1 + (g %% array_length(%(sites)s::bigint[], 1))],
                       (ARRAY['female','male'])[1 + g %% 2], 1940 + g %% 50,
                       (ARRAY['breast','prostate','lung','kidney','other'])[1 + g %% 5],
                       'radiation_oncology', now() - (g || ' minutes')::interval, %(user)s
                FROM generate_series(1, %(need)s) AS g
                RETURNING id, site_id, study_number
            ), ident AS (
                INSERT INTO cohort_identity (participant_id, site_id, given_name, family_name, date_of_birth,
                    hospital_number, email, phone, preferred_language)
                SELECT id, site_id, 'Test', 'Persoon', DATE '1950-01-01', 'H' || substr(study_number, 5),
                       '', '', 'nl'
                FROM new
                RETURNING participant_id
            )
            INSERT INTO cohort_consentrecord (participant_id, element, answer, given_on, form_version_id, mode,
                taken_by_id, recorded_at, correction_reason)
            SELECT ident.participant_id, e.element, true, DATE '2024-01-01', %(form)s, 'paper', %(user)s, now(), ''
            FROM ident CROSS JOIN (VALUES ('cohort'), ('proms'), ('randomisation_offer'), ('control_uninformed'))
                AS e(element)
            """,
            {"sites": site_ids, "user": user_id, "need": need, "form": form_id},
        )


def _pages(study_number: str) -> dict[str, str]:
    from django.urls import NoReverseMatch, reverse

    wanted = {
        "participant list (HTML)": ("cohort:participant_list", []),
        "participant page (HTML)": ("cohort:participant_detail", [study_number]),
        "participants API list": ("api:participant-list", []),
        "trial overview (HTML)": ("randomization:trial_overview", ["BLEND"]),
        "questionnaire API (participant)": ("api:participant-questionnaires", [study_number]),
        "questionnaire worklist (HTML)": ("crf:worklist", []),
    }
    urls = {}
    for label, (name, args) in wanted.items():
        try:
            urls[label] = reverse(name, args=args)
        except NoReverseMatch:
            continue
    return urls


def _measure(client, url: str, summarise) -> dict:
    from django.core.signals import request_started
    from django.db import reset_queries

    client.get(url)  # warm caches and the connection
    # Django clears the query log at each request start; keep it for the count.
    request_started.disconnect(reset_queries)
    reset_queries()  # the log is a bounded deque; a full one would hide new queries
    try:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
    finally:
        request_started.connect(reset_queries)
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
    if response.status_code != 200:
        return {"status": response.status_code, "error": "page did not answer 200"}
    statements = [q["sql"].strip().upper() for q in ctx.captured_queries]
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
    queries = [sql for sql in statements if not sql.startswith(control)]
    return {
        "status": response.status_code,
        "queries": len(queries),
        "statements_incl_transaction_control": len(statements),
        **summarise(samples),
    }


def run(ctx) -> dict:
    from django.test import Client

    from cohort.models import ConsentFormVersion, Participant
    from core.audit import system_actor
    from core.models import Site, SiteMembership, User

    with system_actor("bench"):
        sites = [
            Site.objects.get_or_create(code=c, defaults={"name": c})[0]
            for c in ("bench-a", "bench-b")
        ]
        nurse, created = User.objects.get_or_create(username="bench-pages-nurse")
        if created:
            SiteMembership.objects.create(user=nurse, site=sites[0], role="nurse")
        form, _ = ConsentFormVersion.objects.get_or_create(
            code="present-icf",
            version="bench",
            language="nl",
            defaults={"effective_from": "2020-01-01"},
        )
    client = Client(HTTP_HOST="localhost")
    client.force_login(nurse)

    sizes = sorted({max(100, ctx.participants // 10), ctx.participants})
    by_size: dict[int, dict] = {}
    for size in sizes:
        with system_actor("bench"):
            _seed(size, nurse.pk, [s.pk for s in sites], form.pk)
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
        study_number = (
            Participant.objects.filter(site=sites[0])
            .order_by("-pk")
            .values_list("study_number", flat=True)
            .first()
        )
        by_size[size] = {
            label: _measure(client, url, ctx.summarise)
            for label, url in _pages(study_number).items()
        }

    small, large = sizes[0], sizes[-1]
    verdicts = {}
    for label, result in by_size[large].items():
        if "error" in result:
            verdicts[label] = {"within_budget": False, "error": result["error"]}
            continue
        same = by_size[small].get(label, {}).get("queries") == result["queries"]
        verdicts[label] = {
            "within_budget": result["median_ms"] < BUDGET["median_ms"]
            and result["p95_ms"] < BUDGET["p95_ms"]
            and result["queries"] <= BUDGET["queries"],
            "same_query_count_at_both_sizes": same,
        }
    return {"sizes": sizes, "budget": BUDGET, "results": by_size, "verdicts": verdicts}
