"""Test overrides: the same settings as production, with fast password hashing
and mail kept in memory. Everything else (PostgreSQL, Redis) is real."""

import os

os.environ.setdefault("DEBUG", "1")


def _redis_db_per_xdist_worker() -> None:
    """Under pytest-xdist each worker gets a Redis database of its own (the test database
    gets its own name from pytest-django): worker gwN uses the configured database + N + 1,
    so flushing, queues and throttle counts never cross workers. Processes the tests start
    (Celery workers, gunicorn) inherit the already-chosen URL and the marker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or os.environ.get("BLEND_TEST_REDIS_DB_CHOSEN"):
        return
    from urllib.parse import urlsplit, urlunsplit

    url = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    base = int(url.path.strip("/") or 0)
    db = (base + int(worker[2:]) + 1) % 16
    os.environ["REDIS_URL"] = urlunsplit(url._replace(path=f"/{db}"))
    os.environ["BLEND_TEST_REDIS_DB_CHOSEN"] = "1"


_redis_db_per_xdist_worker()

from .settings import *  # noqa: E402,F403
from .settings import PASSWORD_HASHERS  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
REST_FRAMEWORK = {**REST_FRAMEWORK}  # noqa: F405
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "anon": "10000/min",
    "user": "100000/min",
    "login": "10000/min",
}
