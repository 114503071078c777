"""/health/ and a real Celery worker on Redis (not eager mode)."""

import os
import time

import pytest
import redis
from django.test import override_settings

from core.tasks import HEARTBEAT_KEY, heartbeat, write_heartbeat


@pytest.mark.django_db
def test_health_ok_with_recent_heartbeat(client, clean_redis):
    write_heartbeat()
    response = client.get("/health/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
def test_health_503_without_worker(client, clean_redis):
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["worker"]["ok"] is False
    assert response.json()["checks"]["redis"]["ok"] is True


@pytest.mark.django_db
def test_health_503_when_redis_unreachable(client, private_redis):
    """Point the app at a Redis that then stops: /health/ says 503 and names Redis."""
    with override_settings(REDIS_URL=private_redis.url):
        write_heartbeat()
        assert client.get("/health/").status_code == 200
        private_redis.stop()
        response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.worker
def test_task_runs_on_a_real_worker(celery_worker_process, clean_redis):
    """heartbeat.delay() goes through Redis and is executed by a separate worker process."""
    worker = celery_worker_process()
    clean_redis.delete(HEARTBEAT_KEY)
    heartbeat.delay()
    deadline = time.monotonic() + 20
    value = None
    while time.monotonic() < deadline and value is None:
        value = clean_redis.get(HEARTBEAT_KEY)
        time.sleep(0.1)
    assert value is not None, "the worker did not run the task"
    _ts, _host, pid = value.decode().split("|")
    assert int(pid) != os.getpid()
    assert int(pid) in {worker.proc.pid, *worker.children()}


def test_celery_is_configured_for_reliability():
    from blend.celery import app

    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.task_soft_time_limit and conf.task_time_limit > conf.task_soft_time_limit
    assert conf.task_always_eager is False
    assert "worker-heartbeat" in conf.beat_schedule


def test_redis_client_timeout_is_short():
    """Health must answer quickly when Redis is down, not hang."""
    started = time.monotonic()
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert time.monotonic() - started < 5
