"""Shared fixtures: users per role at two sites, API clients, a real Celery worker,
a private Redis that tests may stop, and headless Chromium through Playwright.

Everything is real: PostgreSQL from DATABASE_URL, Redis from REDIS_URL.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_lib
from django.conf import settings
from django.db import connection
from knox.models import AuthToken
from rest_framework.test import APIClient

from blend.devstack import RedisProcess
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session", autouse=True)
def _let_test_teardown_truncate_audit_tables():
    """Transactional tests end with Django's `flush` (TRUNCATE). The audit tables refuse
    TRUNCATE; for the test teardown only, the guard is bypassed with pgtrigger.ignore.
    Production never calls flush, and test_audit.py proves the guard itself works."""
    import pgtrigger
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        uris = [
            f"{m._meta.label}:{t.name}"
            for m, t in pgtrigger.registry.registered()
            if t.name == "audit_no_truncate"
        ]
        with pgtrigger.ignore(*uris):
            return original(self, sql_list)

    DatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    DatabaseOperations.execute_sql_flush = original


# --- no secret in any log line ---------------------------------------------------------------
class LogLeak(AssertionError):
    """A questionnaire token, an API token or a hospital number reached a log line."""


_QUESTIONNAIRE_LINK_RE = re.compile(r"/q/(?!done(?![A-Za-z0-9_\-]))[A-Za-z0-9_\-]{20,}")
_API_TOKEN_RE = re.compile(r"Token\s+[0-9a-fA-F]{20,}")


class LogGuard:
    """Collects every log record of the test (every logger, whether it propagates or not)
    and every file handed to :meth:`watch_file` (e.g. a gunicorn access log), and knows
    the secrets the test created: questionnaire tokens (``crf.services.new_token``),
    API tokens (knox) and hospital numbers (every ``Identity`` instance built or saved).
    :meth:`check` raises :class:`LogLeak` naming the logger and the kind of secret
    (never the secret itself, so the report does not leak it either)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.files: list[Path] = []
        self.secrets: dict[str, str] = {}

    def remember(self, kind: str, value: str | None) -> None:
        value = (value or "").strip()
        if len(value) >= 3:
            self.secrets[value] = kind

    def capture(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logging's problem, not ours
            text = str(record.msg)
        if record.exc_text:
            text += "\n" + record.exc_text
        elif record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append((record.name, text))

    def watch_file(self, path: Path) -> None:
        self.files.append(Path(path))

    def _texts(self) -> Iterator[tuple[str, str]]:
        yield from self.lines
        for path in self.files:
            if path.exists():
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    yield (path.name, line)

    def leaks(self) -> list[str]:
        found = []
        patterns = [
            (re.compile(r"(?<![\w-])" + re.escape(v) + r"(?![\w-])"), kind)
            for v, kind in self.secrets.items()
        ]
        for source, text in self._texts():
            if _QUESTIONNAIRE_LINK_RE.search(text):
                found.append(f"{source}: a questionnaire link with its token")
            if _API_TOKEN_RE.search(text):
                found.append(f"{source}: an Authorization token")
            for pattern, kind in patterns:
                if pattern.search(text):
                    found.append(f"{source}: a {kind}")
        return found

    def check(self) -> None:
        found = self.leaks()
        if found:
            raise LogLeak("secret in a log line: " + "; ".join(sorted(set(found))))

    def forget(self) -> None:
        """Drop what was captured so far (after a test proved a leak is caught)."""
        self.lines.clear()
        self.files.clear()


@pytest.fixture(autouse=True)
def log_guard(monkeypatch) -> Iterator[LogGuard]:
    """Every test runs under the guard: a secret in any log output fails the test."""
    import knox.models
    from django.db.models.signals import post_init, pre_save

    import crf.services
    from cohort.models import Identity

    guard = LogGuard()
    original_call_handlers = logging.Logger.callHandlers

    def call_handlers(self, record):
        guard.capture(record)
        return original_call_handlers(self, record)

    monkeypatch.setattr(logging.Logger, "callHandlers", call_handlers)

    original_new_token = crf.services.new_token

    def new_token() -> str:
        token = original_new_token()
        guard.remember("questionnaire token", token)
        return token

    monkeypatch.setattr(crf.services, "new_token", new_token)
    original_digest = knox.models.get_digest_token

    def get_digest_token(prefix=None):
        digest, token = original_digest(prefix)
        guard.remember("API token", token)
        return digest, token

    monkeypatch.setattr(knox.models, "get_digest_token", get_digest_token)

    def identity_seen(sender, instance, **kwargs):
        guard.remember("hospital number", instance.__dict__.get("hospital_number"))

    post_init.connect(identity_seen, sender=Identity, weak=False)
    pre_save.connect(identity_seen, sender=Identity, weak=False)
    try:
        yield guard
    finally:
        post_init.disconnect(identity_seen, sender=Identity)
        pre_save.disconnect(identity_seen, sender=Identity)
    guard.check()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with empty per-process caches (including the throttles' fallback
    counts), so nothing carries over from one test to the next. Throttle counts in Redis
    are per Redis database: tests that count them use ``clean_redis``."""
    from django.core.cache import caches

    from core import throttling
    from crf import codelists

    for alias in ("default", "throttle_fallback"):
        caches[alias].clear()
    codelists.clear_cache()  # the code lists' per-process cache: same queries in any order
    throttling._state["down_until"] = 0.0
    # throttle windows in Redis outlive a test (60 s): start every test with none
    try:
        client = redis_lib.Redis.from_url(
            settings.CACHES["throttle"]["LOCATION"], socket_timeout=0.5
        )
        stale = list(client.scan_iter(match="*blend-throttle*", count=1000))
        if stale:
            client.delete(*stale)
    except redis_lib.RedisError:
        pass  # tests that stop Redis on purpose
    yield


# --- users, sites, roles (thin wrappers over tests/factories.py) ----------------------------
@pytest.fixture
def site_a(db):
    return factories.SiteFactory(code="site-a", name="Site A")


@pytest.fixture
def site_b(db):
    return factories.SiteFactory(code="site-b", name="Site B")


@pytest.fixture
def make_user(db) -> Callable:
    """make_user(role, site=None, username=None, password="pw-...") -> User with that membership."""
    counter = itertools.count(1)

    def _make(
        role: str | None,
        site=None,
        *,
        username: str | None = None,
        password: str = factories.PASSWORD,
    ):
        n = next(counter)
        return factories.UserFactory(
            username=username or f"{role or 'user'}{n}", role=role, site=site, password=password
        )

    return _make


@pytest.fixture
def nurse_a(make_user, site_a):
    return make_user("nurse", site_a, username="nurse_a")


@pytest.fixture
def nurse_b(make_user, site_b):
    return make_user("nurse", site_b, username="nurse_b")


@pytest.fixture
def investigator_a(make_user, site_a):
    return make_user("investigator", site_a, username="investigator_a")


@pytest.fixture
def investigator_b(make_user, site_b):
    return make_user("investigator", site_b, username="investigator_b")


@pytest.fixture
def monitor(make_user):
    """A sponsor-wide data manager / monitor (all sites)."""
    return make_user("data_manager", None, username="monitor")


@pytest.fixture
def statistician(make_user):
    return make_user("statistician", None, username="statistician")


@pytest.fixture
def administrator(make_user):
    return make_user("administrator", None, username="administrator")


# --- trial data, through the services (thin wrappers over tests/factories.py) -------------
@pytest.fixture
def blend(db):
    """BLEND with its arms, criteria and schedule, as the data migrations create them
    (re-created here because transactional tests flush the database)."""
    return factories.blend_trial()


@pytest.fixture
def criteria_codes(blend) -> dict[str, str]:
    """criterion code -> kind, for the current protocol version."""
    return dict(
        blend.criteria.filter(protocol_version=blend.protocol_version).values_list("code", "kind")
    )


@pytest.fixture
def eligible_answers(blend) -> dict[str, str]:
    return factories.eligible_answers(blend)


@pytest.fixture
def form_version(db):
    """The cohort consent form (present-icf 3, nl, effective from 2022)."""
    return factories.ConsentFormVersionFactory()


@pytest.fixture
def register(db) -> Callable:
    """register(by, site, **overrides) -> Participant, registered through cohort.services
    (no consent recorded)."""

    def _register(by, site, **overrides):
        return factories.ParticipantFactory(by=by, site=site, consents=False, **overrides)

    return _register


@pytest.fixture
def consented(form_version) -> Callable:
    """consented(participant, by, on=...) records all four elements as yes."""

    def _consent(participant, by, on=None):
        return factories.consents_give(
            participant=participant, by=by, on=on, form_version=form_version
        )

    return _consent


@pytest.fixture
def make_participant(db) -> Callable:
    """make_participant(site, consents=True|dict, **fields) -> Participant registered by the
    site's registrar, with consent records (10 days ago).

    ``consents=True`` gives all four elements yes; a dict maps element -> bool;
    ``False`` records none. ``fields`` go to ``participant_register``.
    """

    def _make(site, consents=True, **fields):
        return factories.ParticipantFactory(site=site, consents=consents, **fields)

    return _make


@pytest.fixture
def randomisation_test_environment(settings) -> None:
    """Allocate from *test* sequences (production systems use production ones)."""
    settings.RANDOMISATION_ENVIRONMENT = "test"


@pytest.fixture
def sequence_statistician(db):
    """A statistician holding the sequence permission."""
    return factories.sequence_keeper()


@pytest.fixture
def active_sequence(
    blend, sequence_statistician, site_a, site_b, randomisation_test_environment
) -> Callable:
    """active_sequence(**overrides) -> an activated test-environment sequence (blocks 4/6 by site)."""

    def _make(**overrides):
        return factories.SequenceFactory(trial=blend, by=sequence_statistician, **overrides)

    return _make


@pytest.fixture
def screen(blend) -> Callable:
    """screen(by, participant, trial=None, **answer_overrides) -> Screening through the service
    (eligible unless overridden; see factories.ScreeningFactory for derived criteria)."""

    def _screen(by, participant, trial=None, **overrides):
        return factories.ScreeningFactory(
            by=by, participant=participant, trial=trial or blend, answers=overrides
        )

    return _screen


@pytest.fixture
def eligible_participant(blend) -> Callable:
    """eligible_participant(site, by, **fields) -> a consenting participant with an eligible screening."""

    def _make(site, by, **fields):
        return factories.eligible_participant(site=site, by=by, trial=blend, **fields)

    return _make


@pytest.fixture
def randomised(blend) -> Callable:
    """randomised(site, by, arm="intervention"|"control"|None, **fields) -> Allocation of a
    fresh eligible participant (needs an active sequence; see factories.AllocationFactory)."""

    def _randomised(site, by, arm=None, **fields):
        return factories.AllocationFactory(trial=blend, site=site, by=by, arm=arm, **fields)

    return _randomised


def events(model, **filters):
    """The audit events of ``model`` (pghistory event model), filtered."""
    from core.selectors import event_model_for

    return event_model_for(model).objects.filter(**filters)


@pytest.fixture
def api_client_for(db) -> Callable[..., APIClient]:
    """An API client authenticated with a real knox token of ``user``."""

    def _client(user) -> APIClient:
        client = APIClient()
        _instance, token = AuthToken.objects.create(user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client

    return _client


# --- Redis and Celery --------------------------------------------------------------------
@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisProcess]:
    """A Redis server of this test's own, which the test may stop and restart."""
    server = RedisProcess(data_dir=tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clean_redis() -> Iterator[redis_lib.Redis]:
    """The configured Redis, flushed before and after (tests own their Redis database)."""
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


def _worker_env(redis_url: str) -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "blend.test_settings",
            "DATABASE_URL": _database_url(db),
            "REDIS_URL": redis_url,
            "DEBUG": "1",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _database_url(db: dict) -> str:
    from urllib.parse import quote

    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or ""
    host = quote(host, safe="") if host.startswith("/") else host
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


class WorkerProcess:
    """A real `celery worker` subprocess on the test database and a given Redis."""

    def __init__(
        self, redis_url: str, queues: str | None = None, pool: str = "prefork", concurrency: int = 1
    ):
        self.redis_url = redis_url
        self.queues = queues
        self.pool = pool
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    def start(self, timeout: float = 90.0) -> WorkerProcess:
        from core.tasks import HEARTBEAT_KEY

        client = redis_lib.Redis.from_url(self.redis_url)
        client.delete(HEARTBEAT_KEY)
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"celery-worker-{int(time.time() * 1000)}.log"
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "blend",
            "worker",
            "--loglevel",
            "INFO",
            "--pool",
            self.pool,
            "--concurrency",
            str(self.concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            f"test-{os.getpid()}-{time.monotonic_ns()}@localhost",
        ]
        if self.queues:
            argv += ["--queues", self.queues]
        self.proc = subprocess.Popen(  # noqa: S603
            argv,
            env=_worker_env(self.redis_url),
            cwd=ROOT,
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early; see {self.log_path}")
            if client.get(HEARTBEAT_KEY):
                return self
            time.sleep(0.1)
        # never leave a half-started worker behind: it would take later tests' tasks
        self.stop(sig=9)
        raise RuntimeError(f"celery worker not ready within {timeout}s; see {self.log_path}")

    def children(self) -> list[int]:
        """PIDs of the pool processes (prefork children) of this worker."""
        if not self.proc:
            return []
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)  # noqa: S603,S607
        return [int(p) for p in out.stdout.split()]

    def stop(self, sig: int = 15) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self.proc = None


@pytest.fixture
def celery_worker_process(transactional_db, clean_redis) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real Celery workers: ``start()`` or ``start(redis_url=..., pool="solo")``.

    Needs ``transactional_db`` so the worker sees committed rows.
    """
    workers: list[WorkerProcess] = []

    def _start(redis_url: str | None = None, **kwargs) -> WorkerProcess:
        worker = WorkerProcess(redis_url or settings.REDIS_URL, **kwargs).start()
        workers.append(worker)
        return worker

    yield _start
    for worker in workers:
        worker.stop()


# --- browser ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(locale="nl-NL", timezone_id="Europe/Amsterdam")
    context.set_default_timeout(15000)
    pg = context.new_page()
    pg.base_url = live_server.url  # type: ignore[attr-defined]
    yield pg
    context.close()


@pytest.fixture
def phone_page(browser, live_server):
    """A phone-sized page (390x844, touch) for patient-facing screens."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="nl-NL",
        timezone_id="Europe/Amsterdam",
    )
    context.set_default_timeout(15000)
    pg = context.new_page()
    pg.base_url = live_server.url  # type: ignore[attr-defined]
    yield pg
    context.close()


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """screenshot(page, "name") saves test-artifacts/<name>.png and returns the path."""

    def _shot(pg, name: str, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        pg.screenshot(path=str(path), full_page=full_page)
        return path

    return _shot


def login(pg, base_url: str, username: str, password: str = "correct-horse-battery-9") -> None:
    """Log in through the real login form."""
    pg.goto(f"{base_url}/login/")
    pg.fill("input[name=username]", username)
    pg.fill("input[name=password]", password)
    pg.click("form.login-form button[type=submit]")
    pg.wait_for_load_state("networkidle")


@pytest.fixture
def browser_login() -> Callable:
    return login
