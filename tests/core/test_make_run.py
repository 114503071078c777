"""`make run` (python -m blend.devstack serve) end to end, as a person uses it.

Without DATABASE_URL/REDIS_URL it starts embedded PostgreSQL and Redis, serves the
login page, the demo nurse can log in, and Ctrl-C leaves no PostgreSQL, Redis,
Celery or web process behind. With the variables set it starts no embedded server.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

from core.demo_accounts import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback only
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def _login_as_demo_nurse(base: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login/", timeout=10).read().decode()  # noqa: S310
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"username": "nurse", "password": DEMO_PASSWORD, "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(
        f"{base}/login/", data=data, headers={"Referer": f"{base}/login/"}
    )  # noqa: S310
    home = opener.open(request, timeout=10)  # noqa: S310
    return home.geturl(), home.read().decode()


def _tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(text in part for part in (proc.info["cmdline"] or [])):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _serve(env: dict[str, str]) -> subprocess.Popen:
    """``make run``'s command, its output going to a file: a pipe nobody reads while the
    test waits fills up (64 KiB) and then blocks the server that writes to it."""
    log = Path(env["BLEND_LOCAL_DIR"]).parent / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "blend.devstack", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


def _output(proc: subprocess.Popen) -> str:
    return proc.log_path.read_text(errors="replace")  # type: ignore[attr-defined]


def _stop_with_ctrl_c(proc: subprocess.Popen) -> str:
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    proc.wait(timeout=60)
    return _output(proc)


def _base_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update({"PORT": str(port), "BLEND_LOCAL_DIR": str(tmp_path / "local"), "DEBUG": "1"})
    return env


def test_make_run_on_a_bare_machine(tmp_path):
    port = _free_port()
    local = tmp_path / "local"
    proc = _serve(_base_env(tmp_path, port))
    base = f"http://127.0.0.1:{port}"
    children: list[psutil.Process] = []
    try:
        _wait_http(f"{base}/login/", proc)
        url, body = _login_as_demo_nurse(base)
        assert url.rstrip("/") == base, url  # redirected to the home page, logged in
        assert "nurse" in body
        children = _tree(proc.pid)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "celery" in names and "worker" in names and "beat" in names and "runserver" in names
        assert _processes_mentioning(str(local / "pg")), "embedded PostgreSQL is not running"
        assert _processes_mentioning(str(local / "redis")) or "redis-server" in names
    finally:
        output = _stop_with_ctrl_c(proc) if proc.poll() is None else _output(proc)
    assert "embedded PostgreSQL running" in output
    assert "embedded Redis" in output
    assert "nurse" in output and DEMO_PASSWORD in output  # the banner shows the demo logins
    time.sleep(1)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left behind: {[c.cmdline() for c in alive]}"
    assert not _processes_mentioning(str(local)), "an embedded server survived Ctrl-C"


@pytest.mark.django_db(transaction=True)
def test_make_run_uses_given_servers(tmp_path):
    """With DATABASE_URL/REDIS_URL set, nothing embedded starts."""
    from django.db import connection

    db = connection.settings_dict
    dbname = f"{db['NAME']}_runcheck"
    with connection.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        cur.execute(f'CREATE DATABASE "{dbname}"')
    port = _free_port()
    env = _base_env(tmp_path, port)
    from tests.conftest import _database_url

    env["DATABASE_URL"] = _database_url({**db, "NAME": dbname})
    env["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    proc = _serve(env)
    try:
        try:
            _wait_http(f"http://127.0.0.1:{port}/login/", proc)
        except AssertionError as exc:  # show what serve said, not only that it was silent
            said = _stop_with_ctrl_c(proc) if proc.poll() is None else _output(proc)
            raise AssertionError(f"{exc}\n--- serve output ---\n{said[-4000:]}") from None
        servers = [
            p
            for p in _processes_mentioning(str(tmp_path / "local"))
            if p.name() in ("postgres", "redis-server")
        ]
        assert not servers
        assert not [c for c in _tree(proc.pid) if c.name() in ("postgres", "redis-server")]
    finally:
        output = _stop_with_ctrl_c(proc) if proc.poll() is None else _output(proc)
        with connection.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    assert "Traceback" not in output, output[-4000:]  # e.g. beat without its schedule folder
    assert "using DATABASE_URL from the environment" in output
    assert "using REDIS_URL from the environment" in output
    assert "embedded" not in output.replace("embedded servers stopped", "")
