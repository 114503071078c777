"""Randomisation under load, in-process and over HTTP.

In-process: 50 parallel requests through the service, one forked process each (the way
a server runs requests: gunicorn's and Celery's workers are processes), each with its own
database connection warmed by one randomisation of its own (a server's persistent
connection has served requests before), released together by a barrier, on a live test
sequence stratified by site (two sites, so two strata are randomised at once). The same
with one thread per request in one interpreter is reported for information: Python runs
one thread at a time, so there the last of n requests waits for about n x the CPU time of
one, whatever the service does.

Over HTTP: the same against gunicorn with the project's config (``blend/gunicorn.conf.py``,
4 workers, DEBUG off), through the endpoint nurses use
(``POST /api/v1/trials/BLEND/randomisations/``) with tokens from the API login, after a
warm-up burst that lets every worker's persistent connection serve a randomisation.

Each part reports the sequential median (the same number of requests one after another,
in the same run), the parallel median / p95, the ratio p95 ÷ sequential median with
PASS/FAIL against ENGINEERING §5 (≤ 30×, p95 < 200 ms), and checks the result: no
duplicate slot, no skipped position in any stratum, gapless trial numbers (the batch and
the whole trial). Then 20 parallel requests for one participant: exactly one allocation.
In-process it also counts the SQL queries of one randomisation. Over HTTP it also reports
what the batch cost the whole machine (busy CPU per request, from /proc/stat) and the p95
perfect queueing of that CPU time on every core would give: where that floor is above
200 ms, the p95 target is out of the machine's reach and the verdict rests on the ratio.
"""

from __future__ import annotations

import gc
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

PARALLEL = 50
SAME_PARTICIPANT = 20
HTTP_WORKERS = 4
MAX_RATIO = 30
BUDGET_P95_MS = 200
ROOT = Path(__file__).resolve().parent.parent
PASSWORD = secrets.token_urlsafe(16)


def _setup(n: int):
    from django.contrib.auth.models import Permission

    from cohort.models import ConsentFormVersion
    from core.audit import system_actor
    from core.models import Site, SiteMembership, User
    from randomization.models import Criterion, Trial
    from randomization.selectors import current_environment
    from randomization.services import sequence_activate, sequence_generate

    with system_actor("bench"):
        sites = [
            Site.objects.get_or_create(code=code, defaults={"name": code})[0]
            for code in ("bench-rand-a", "bench-rand-b")
        ]
        nurses = []
        for site in sites:
            nurse, created = User.objects.get_or_create(username=f"bench-nurse-{site.code}")
            if created:
                SiteMembership.objects.create(user=nurse, site=site, role="nurse")
            nurse.set_password(PASSWORD)
            nurse.save(update_fields=["password"])
            nurses.append(nurse)
        stat, created = User.objects.get_or_create(username="bench-statistician")
        if created:
            SiteMembership.objects.create(user=stat, site=None, role="statistician")
            stat.user_permissions.add(Permission.objects.get(codename="manage_sequences"))
        stat = User.objects.get(pk=stat.pk)
        trial = Trial.objects.get(code="BLEND")
        sequence = sequence_generate(
            by=stat,
            trial=trial,
            method="permuted_blocks",
            environment=current_environment(),
            factors=["site"],
            block_sizes=[4, 6],
            # in-process: warm-up + parallel + sequential + threads (with warm-ups) + 20 +
            # 2; over HTTP: warm-up + parallel + sequential + 1; split over two strata
            slots_per_stratum=5 * n + 40,
        )
        sequence_activate(by=stat, sequence=sequence)
        form, _ = ConsentFormVersion.objects.get_or_create(
            code="bench-icf",
            version="1",
            language="nl",
            defaults={"effective_from": date(2020, 1, 1)},
        )
        answers = {
            c.code: ("yes" if c.kind == "inclusion" else "no")
            for c in Criterion.objects.filter(trial=trial, protocol_version=trial.protocol_version)
        }

    def make(count):
        return _participants(count, trial, sites, nurses, form, answers)

    return trial, sequence, nurses, make


def _participants(count, trial, sites, nurses, form, answers):
    from django.db import connection
    from django.utils import timezone

    from cohort.models import ConsentRecord, Participant
    from core.audit import system_actor
    from randomization.services import screening_record

    work = []
    with system_actor("bench"):
        for i in range(count):
            site, nurse = sites[i % 2], nurses[i % 2]
            with connection.cursor() as cur:
                cur.execute("SELECT nextval('cohort_study_number_seq')")
                (number,) = cur.fetchone()
            p = Participant.objects.create(
                study_number=f"PRE-{int(number):05d}",
                site=site,
                sex="female",
                year_of_birth=1960,
                primary_tumour="breast",
                referring_department="radiation_oncology",
                registered_by=nurse,
            )
            ConsentRecord.objects.bulk_create(
                [
                    ConsentRecord(
                        participant=p,
                        element=e,
                        answer=True,
                        given_on=timezone.localdate() - timedelta(days=5),
                        form_version=form,
                        mode="paper",
                        taken_by=nurse,
                    )
                    for e in ("cohort", "proms", "randomisation_offer", "control_uninformed")
                ]
            )
            screening_record(
                by=nurse,
                trial=trial,
                participant=p,
                screened_on=timezone.localdate(),
                answers=answers,
            )
            work.append((p, nurse))
    return work


def _parallel(fn, items, *, connect: bool = True, warm_items=None) -> list:
    """``fn(item)`` in one thread per item, released together by a barrier: (milliseconds,
    result, the thread's CPU milliseconds) per item. With ``warm_items`` each thread first
    runs ``fn(warm_item)`` on its connection, before the barrier."""
    from django.db import connection, connections

    barrier = threading.Barrier(len(items))

    def run(pair):
        item, warm = pair
        try:
            if connect:
                # Like a server's persistent connections: connect first, then start the clock.
                connection.ensure_connection()
            if warm is not None:
                fn(warm)
            barrier.wait(timeout=60)
            started, cpu = time.perf_counter(), time.thread_time()
            result = fn(item)
            return (
                (time.perf_counter() - started) * 1000,
                result,
                (time.thread_time() - cpu) * 1000,
            )
        finally:
            connections.close_all()

    pairs = list(zip(items, warm_items or [None] * len(items), strict=True))
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(run, pairs))


def _sequential(fn, items) -> list[float]:
    out = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - started) * 1000)
    return out


def _check(sequence, participants) -> dict:
    """The slots and trial numbers of one batch (``participants``): duplicate slots, gapless
    numbers; and every stratum of the sequence taken 1..n without a skipped position."""
    from randomization.models import Allocation, Stratum

    allocations = Allocation.objects.filter(participant__in=participants)
    slots = list(allocations.values_list("slot_id", flat=True))
    skipped = 0
    for stratum in Stratum.objects.filter(sequence=sequence):
        positions = sorted(
            Allocation.objects.filter(sequence=sequence, stratum=stratum.key).values_list(
                "slot__position", flat=True
            )
        )
        skipped += sum(1 for i, p in enumerate(positions, start=1) if p != i)
    numbers = sorted(_number(n) for n in allocations.values_list("trial_number", flat=True))
    return {
        "allocations": len(slots),
        "duplicate_slots": len(slots) - len(set(slots)),
        "skipped_positions": skipped,
        "trial_numbers_gapless": bool(numbers)
        and numbers == list(range(numbers[0], numbers[0] + len(numbers))),
    }


def _number(trial_number: str) -> int:
    return int(trial_number.rsplit("-", 1)[1])


def _trial_gapless(trial) -> bool:
    """Every trial number of the trial, 1..N, none twice, none missing."""
    from randomization.models import Allocation

    numbers = sorted(
        _number(n)
        for n in Allocation.objects.filter(trial=trial).values_list("trial_number", flat=True)
    )
    return numbers == list(range(1, len(numbers) + 1))


def _steady() -> None:
    """The database as it settles between bursts: statistics and visibility maps up to date
    (as autovacuum would leave them), so that no autovacuum of the rows just seeded runs
    during a timed batch."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")


def _machine_busy_ms() -> float:
    """CPU time the whole machine has spent busy (all cores, every process: the server's
    workers, PostgreSQL, this process), in milliseconds, from ``/proc/stat``."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) * 1000 / os.sysconf("SC_CLK_TCK")


def _machine_load(busy_ms: float, wall_ms: float, requests: int) -> dict:
    """What the batch cost the machine: busy CPU per request, and the p95 that perfect
    queueing of ``requests`` such requests on every core would give (the floor no lock or
    scheduling change can go below)."""
    cores = os.cpu_count() or 1
    per_request = busy_ms / requests
    return {
        "cores": cores,
        "cores_busy": round(busy_ms / wall_ms, 2),
        "cpu_ms_per_request": round(per_request, 2),
        "queueing_floor_p95_ms": round(0.95 * requests * per_request / cores, 1),
    }


def _p95_reachable(part: dict) -> bool:
    load = part.get("machine_during_batch")
    return load is None or load["queueing_floor_p95_ms"] < BUDGET_P95_MS


def _verdict(ctx, parallel_ms: list[float], sequential_ms: list[float]) -> dict:
    parallel = ctx.summarise(parallel_ms)
    sequential = ctx.summarise(sequential_ms)
    ratio = round(parallel["p95_ms"] / sequential["median_ms"], 1)
    return {
        "sequential_latency": sequential,
        "latency": parallel,
        "ratio_p95_to_sequential_median": ratio,
        "ratio_budget": MAX_RATIO,
        "ratio_verdict": "PASS" if ratio <= MAX_RATIO else "FAIL",
        "budget_p95_ms": BUDGET_P95_MS,
        "p95_verdict": "PASS" if parallel["p95_ms"] < BUDGET_P95_MS else "FAIL",
    }


# --- in-process ----------------------------------------------------------------------------
def _as_callers_pass(trial, items):
    """The trial and participants as the API passes them to the service (``trial_get``,
    ``participant_get``), read before the clock starts."""
    from cohort.selectors import participant_get
    from randomization.selectors import trial_get

    nurse = items[0][1]
    return trial_get(user=nurse, code=trial.code), [
        (participant_get(user=n, study_number=p.study_number), n) for p, n in items
    ]


def _child(fn, item, warm_item, barrier, out) -> None:
    """One forked process: its own database connection, warmed by a randomisation of its
    own (a server's persistent connection has served requests before), then the timed
    call, released together with the others."""
    import os

    from django.db import connection, connections

    try:
        connection.ensure_connection()
        if warm_item is not None:
            fn(warm_item)
        barrier.wait(timeout=120)
        started = time.perf_counter()
        result = fn(item)
        out.send(((time.perf_counter() - started) * 1000, result.created, None))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.send((0.0, False, f"{exc.__class__.__name__}: {exc}"))
    finally:
        connections.close_all()
        out.close()
        os._exit(0)


def _processes(fn, items, warm_items=None) -> list[tuple[float, bool]]:
    """``fn(item)`` in one forked process per item, released together by a barrier: the
    way a server runs requests (gunicorn's workers and Celery's are processes), on every
    core. Returns (milliseconds, created) per item."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # no connection may be shared with the children
    gc.collect()
    gc.freeze()  # as blend/wsgi.py does in a server worker once the app is loaded
    mp = multiprocessing.get_context("fork")
    barrier = mp.Barrier(len(items))
    readers, children = [], []
    for i, item in enumerate(items):
        reader, writer = mp.Pipe(duplex=False)
        warm = warm_items[i] if warm_items else None
        child = mp.Process(target=_child, args=(fn, item, warm, barrier, writer))
        child.start()
        writer.close()
        readers.append(reader)
        children.append(child)
    results = [reader.recv() for reader in readers]
    for child in children:
        child.join(timeout=60)
    errors = [error for _ms, _created, error in results if error]
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(items)} randomisations failed: {errors[0]}")
    return [(ms, created) for ms, created, _error in results]


def _in_process(ctx, trial, sequence, make) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core.audit import system_actor
    from randomization.models import Allocation
    from randomization.services import allocation_randomise

    trial, work = _as_callers_pass(trial, make(PARALLEL))
    _trial, warm = _as_callers_pass(trial, make(PARALLEL))
    _trial, sequential_work = _as_callers_pass(trial, make(PARALLEL + 1))
    _trial, thread_work = _as_callers_pass(trial, make(PARALLEL))
    _trial, thread_warm = _as_callers_pass(trial, make(PARALLEL))
    _trial, [single, counted] = _as_callers_pass(trial, make(2))
    _trial, same_warm = _as_callers_pass(trial, make(SAME_PARTICIPANT))

    def randomise(item):
        participant, nurse = item
        with system_actor("bench"):
            return allocation_randomise(by=nurse, trial=trial, participant=participant)

    _steady()
    results = _processes(randomise, work, warm)
    checks = _check(sequence, [p for p, _n in work])
    randomise(sequential_work[0])  # this process's connection: warmed like the children's
    sequential_ms = _sequential(randomise, sequential_work[1:])
    same = _processes(randomise, [single] * SAME_PARTICIPANT, same_warm)
    # The same in one interpreter, one thread per request (Python runs one thread at a time,
    # so the last of n requests waits for about n x the CPU time of one).
    threads = _parallel(randomise, thread_work, warm_items=thread_warm)
    with CaptureQueriesContext(connection) as queries:
        randomise(counted)
    thread_cpu = ctx.summarise([cpu for _ms, _r, cpu in threads])["median_ms"]
    return {
        "parallel_requests": PARALLEL,
        "processes": PARALLEL,
        **_verdict(ctx, [ms for ms, _created in results], sequential_ms),
        **checks,
        "queries_per_randomisation": len(queries),
        "same_participant": {
            "parallel_requests": SAME_PARTICIPANT,
            "allocations": Allocation.objects.filter(participant=single[0]).count(),
            "created": sum(1 for _ms, created in same if created),
            "latency": ctx.summarise([ms for ms, _created in same]),
        },
        "threads_in_one_interpreter": {
            "note": "informational: one thread per request in one interpreter; Python runs "
            "one thread at a time, so p95 is bounded below by about 0.95 x n x the CPU time "
            "of one randomisation",
            "latency": ctx.summarise([ms for ms, _r, _cpu in threads]),
            "cpu_ms_per_randomisation": thread_cpu,
            "interpreter_bound_p95_ms": round(0.95 * PARALLEL * thread_cpu, 1),
        },
    }


# --- over HTTP (gunicorn) --------------------------------------------------------------------
class _Gunicorn:
    """gunicorn with the project's config on a free loopback port, DEBUG off."""

    def __init__(self, workers: int):
        from blend.devstack import free_port

        self.port = free_port()
        fd, log = tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")
        os.close(fd)
        self.log = Path(log)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEBUG"))}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "blend.settings",
                "DEBUG": "0",
                "SECRET_KEY": secrets.token_urlsafe(50),
                "ALLOWED_HOSTS": "127.0.0.1",
                # the bench's sequence is a test list (the bench process runs with DEBUG on)
                "RANDOMISATION_ENVIRONMENT": "test",
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
            }
        )
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "blend" / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--access-logfile",
            "/dev/null",
            "--error-logfile",
            str(self.log),
            "blend.wsgi:application",
        ]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                log = self.log.read_text()[-2000:]
                self.log.unlink(missing_ok=True)
                raise RuntimeError("gunicorn exited: " + log)
            try:
                if self.request("GET", "/health/")[0] in (200, 503):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                log = self.log.read_text()[-2000:]
                self.stop()
                raise RuntimeError("gunicorn did not answer: " + log)
            time.sleep(0.2)
        # One request per worker, so that no timed request pays a worker's first-request cost.
        for _ in range(workers * 2):
            self.request("GET", "/health/")

    def request(self, method: str, path: str, body: dict | None = None, token: str = ""):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"X-Forwarded-Proto": "https", "Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        try:
            conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass
        self.log.unlink(missing_ok=True)


def _over_http(ctx, trial, sequence, nurses, make) -> dict:
    from randomization.models import Allocation

    work, sequential_work, (single,) = make(PARALLEL), make(PARALLEL), make(1)
    warm = make(HTTP_WORKERS * 2)
    _steady()
    server = _Gunicorn(HTTP_WORKERS)
    try:
        tokens = {}
        for nurse in nurses:
            status, body = server.request(
                "POST", "/api/v1/auth/login/", {"username": nurse.username, "password": PASSWORD}
            )
            if status != 200:
                raise RuntimeError(f"API login answered {status}: {body[:300]!r}")
            tokens[nurse.pk] = json.loads(body)["token"]
        path = f"/api/v1/trials/{trial.code}/randomisations/"

        def post(item):
            participant, nurse = item
            return server.request(
                "POST", path, {"participant": participant.study_number}, tokens[nurse.pk]
            )[0]

        # Every worker's persistent connection serves a randomisation before the clock starts.
        _parallel(post, warm, connect=False)
        busy, started = _machine_busy_ms(), time.perf_counter()
        results = [(ms, status) for ms, status, _cpu in _parallel(post, work, connect=False)]
        load = _machine_load(
            _machine_busy_ms() - busy, (time.perf_counter() - started) * 1000, len(work)
        )
        checks = _check(sequence, [p for p, _n in work])
        sequential_ms = _sequential(post, sequential_work)
        same = [
            (ms, status)
            for ms, status, _cpu in _parallel(post, [single] * SAME_PARTICIPANT, connect=False)
        ]
    finally:
        server.stop()
    statuses = sorted({s for _ms, s in results})
    return {
        "parallel_requests": PARALLEL,
        "gunicorn_workers": HTTP_WORKERS,
        **_verdict(ctx, [ms for ms, _s in results], sequential_ms),
        "machine_during_batch": load,
        "p95_target_reachable_here": load["queueing_floor_p95_ms"] < BUDGET_P95_MS,
        **checks,
        "statuses": statuses,
        "same_participant": {
            "parallel_requests": SAME_PARTICIPANT,
            "allocations": Allocation.objects.filter(participant=single[0]).count(),
            "created": sum(1 for _ms, s in same if s == 201),
            "statuses": sorted({s for _ms, s in same}),
            "latency": ctx.summarise([ms for ms, _s in same]),
        },
    }


def run(ctx) -> dict:
    trial, sequence, nurses, make = _setup(PARALLEL)
    in_process = _in_process(ctx, trial, sequence, make)
    over_http = _over_http(ctx, trial, sequence, nurses, make)
    parts = (in_process, over_http)
    return {
        "in_process": in_process,
        "http": over_http,
        "trial_numbers_gapless": _trial_gapless(trial),
        # ENGINEERING §5: the ratio always; p95 < 200 ms "where the machine allows": not
        # where the batch's own CPU time, perfectly queued on every core, already exceeds it
        "within_budget": all(
            p["ratio_verdict"] == "PASS"
            and (p["p95_verdict"] == "PASS" or not _p95_reachable(p))
            and p["duplicate_slots"] == p["skipped_positions"] == 0
            and p["trial_numbers_gapless"]
            and p["same_participant"]["allocations"] == 1
            for p in parts
        ),
        "note": "figures depend on the machine's load: compare parts of the same run",
    }
