"""Production smoke test: the build the Dockerfile makes, served the way docker-compose
serves it. Static files are collected with production settings (DEBUG off, manifest
storage) into a temporary folder; gunicorn starts with the project's own config on a
free loopback port; the login page, a patient page and /health/ must answer 200.

It fails when collectstatic fails (e.g. a vendored asset that names a missing file),
when any of the pages fails, when a response carries ``Server: gunicorn``, or when the
access log shows a questionnaire token, an API token or a query-string value (the
suite-wide log guard reads the access log too).
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from blend.devstack import free_port
from tests.conftest import ROOT, _database_url

# django_db: the test database must exist for the server (it needs no rows of the test).
pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@dataclass
class Server:
    port: int
    access_log: Path
    error_log: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        # behind the TLS-terminating proxy that production always has
        conn.request("GET", path, headers={"X-Forwarded-Proto": "https", **(headers or {})})
        response = conn.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        conn.close()
        return response


def _production_env(tmp: Path) -> dict[str, str]:
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST", "DEBUG"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "blend.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": _database_url(connection.settings_dict),  # the test database
            "REDIS_URL": settings.REDIS_URL,
            "STATIC_ROOT": str(tmp / "static"),
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


@pytest.fixture(scope="module")
def production_server(django_db_setup, tmp_path_factory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("production")
    env = _production_env(tmp)
    collect = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collect.returncode == 0, "collectstatic failed:\n" + collect.stderr[-3000:]
    assert (tmp / "static" / "staticfiles.json").exists(), "no manifest was written"

    port = free_port()
    server = Server(port, tmp / "access.log", tmp / "error.log")
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(ROOT / "blend" / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--access-logfile",
        str(server.access_log),
        "--error-logfile",
        str(server.error_log),
        "blend.wsgi:application",
    ]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail("gunicorn exited:\n" + server.error_log.read_text()[-3000:])
            try:
                server.get("/login/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("gunicorn did not answer:\n" + server.error_log.read_text()[-3000:])
                time.sleep(0.2)
        yield server
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(5)


def test_pages_answer_200_with_debug_off(production_server, clean_redis, log_guard):
    """The login page (with its hashed static files), a patient page and /health/."""
    from core.tasks import write_heartbeat

    log_guard.watch_file(production_server.access_log)
    login = production_server.get("/login/")
    assert login.status == 200, login.body[:2000]
    html = login.body.decode()
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert assets and all(re.search(r"\.[0-9a-f]{12}\.(css|js)$", a) for a in assets), assets
    for asset in assets:
        assert production_server.get(asset).status == 200, asset
    assert "Server" not in login.headers, login.headers["Server"]
    cookie = login.headers.get("Set-Cookie", "")
    assert "csrftoken=" in cookie and "HttpOnly" in cookie and "Secure" in cookie

    done = production_server.get("/crf/q/done/")
    assert done.status == 200, done.body[:2000]

    write_heartbeat()  # what the worker writes every 30 s
    health = production_server.get("/health/")
    assert health.status == 200, health.body
    assert b'"status": "ok"' in health.body


def test_access_log_shows_no_token_or_query_value(production_server, log_guard):
    token = secrets.token_urlsafe(32)
    api_token = secrets.token_hex(32)
    log_guard.remember("questionnaire token", token)
    log_guard.remember("API token", api_token)
    log_guard.remember("hospital number", "HN0424242")
    log_guard.watch_file(production_server.access_log)
    assert production_server.get(f"/crf/q/{token}/").status == 404
    assert production_server.get(f"/crf/q/{token}/1/?lang=en").status == 404
    me = production_server.get("/api/v1/auth/me/", {"Authorization": f"Token {api_token}"})
    assert me.status == 401
    search = production_server.get(
        "/api/v1/participants/?search=HN0424242", {"Referer": f"https://x.test/crf/q/{token}/"}
    )
    assert search.status in (400, 401)
    time.sleep(0.3)  # gunicorn writes the access line after the response
    text = production_server.access_log.read_text()
    assert "/crf/q/[redacted]/" in text and "/api/v1/auth/me/" in text
    for secret in (token, api_token, "HN0424242"):
        assert secret not in text
