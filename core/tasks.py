"""Platform tasks. Tasks take ids, call a service, and are safe to run twice."""

from __future__ import annotations

import contextlib
import os
import socket
import time

import redis
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

HEARTBEAT_KEY = "blend:worker-heartbeat"


def write_heartbeat() -> str:
    value = f"{time.time()}|{socket.gethostname()}|{os.getpid()}"
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    client.set(HEARTBEAT_KEY, value, ex=int(settings.WORKER_HEARTBEAT_MAX_AGE.total_seconds()) * 4)
    return value


@shared_task(name="core.tasks.heartbeat", ignore_result=True)
def heartbeat() -> str:
    """Proves a worker is consuming the queue; /health/ reads the timestamp."""
    return write_heartbeat()


@worker_ready.connect
def _heartbeat_on_start(
    **kwargs: object,
) -> None:  # pragma: no cover - exercised by the worker tests
    with contextlib.suppress(redis.RedisError):
        write_heartbeat()
