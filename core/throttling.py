"""API throttles counted in one store shared by every gunicorn worker.

- The client is the address :func:`core.middleware.client_ip` gives, the same one the
  lockout (django-axes) and the audit trail use: ``X-Forwarded-For`` counts only behind
  ``TRUSTED_PROXY_COUNT`` proxies, so a made-up header does not start a fresh count.
- Counts live in the ``throttle`` cache (Redis): a window of the rate's duration opens
  at a client's first request and counts every request in it (``add`` + atomic ``incr``,
  so parallel workers never lose a hit).
- When Redis does not answer, the throttles fail open to per-process counting in the
  ``throttle_fallback`` cache (each worker then allows the full rate on its own) and
  try Redis again after ``THROTTLE_REDIS_RETRY_SECONDS``; a warning is logged once per
  outage. The login lockout itself lives in the database and is unaffected.
- Rates are read from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` on every request.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import BaseCache, caches
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from core.middleware import client_ip

if TYPE_CHECKING:  # pragma: no cover - DRF loads this module while rest_framework.views loads
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

_DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_state = {"down_until": 0.0}
_state_lock = threading.Lock()


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """``"20/min"`` -> ``(20, 60)``; None or empty -> None (no throttle)."""
    if not rate:
        return None
    num, period = rate.split("/")
    return int(num), _DURATIONS[period.strip()[0]]


def _shared_store_usable(now: float) -> bool:
    return now >= _state["down_until"]


def _mark_shared_store_down(now: float, exc: Exception) -> None:
    with _state_lock:
        first = _state["down_until"] <= now
        _state["down_until"] = now + getattr(settings, "THROTTLE_REDIS_RETRY_SECONDS", 10)
    if first:
        logger.warning(
            "Throttle store unavailable (%s); counting per process until it answers again",
            exc.__class__.__name__,
        )


def _hit(cache: BaseCache, key: str, duration: int, now: float) -> tuple[int, float]:
    """Count one request in ``key``'s window; returns (count, window start)."""
    if cache.add(key, 0, timeout=duration):
        cache.set(f"{key}:start", now, timeout=duration)
    try:
        count = cache.incr(key)
    except ValueError:  # the window ended between add and incr
        cache.add(key, 0, timeout=duration)
        cache.set(f"{key}:start", now, timeout=duration)
        count = cache.incr(key)
    return count, now if count == 1 else (cache.get(f"{key}:start") or now)


def hit(key: str, duration: int) -> tuple[int, float]:
    """Count one request, in Redis when it answers, else in this process."""
    now = time.time()
    if _shared_store_usable(now):
        try:
            return _hit(caches["throttle"], key, duration, now)
        except Exception as exc:  # noqa: BLE001 - any store failure: fail open, locally
            _mark_shared_store_down(now, exc)
    return _hit(caches["throttle_fallback"], key, duration, now)


class SharedRateThrottle(BaseThrottle):
    """Base: ``scope`` names the rate; subclasses say whose requests are counted."""

    scope = ""

    def get_ident(self, request: Request) -> str:
        return client_ip(request) or "unknown"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return f"{self.scope}:{self.get_ident(request)}"

    def allow_request(self, request: Request, view: APIView) -> bool:
        # The stub types the rates as numbers; DRF's rates are strings such as "20/min".
        rate = parse_rate(api_settings.DEFAULT_THROTTLE_RATES.get(self.scope))  # type: ignore[arg-type]
        if rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        limit, duration = rate
        count, started = hit(key, duration)
        self._wait = max(0.0, started + duration - time.time())
        return count <= limit

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


class AnonThrottle(SharedRateThrottle):
    """Unauthenticated requests, per client address (``anon`` rate)."""

    scope = "anon"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return super().get_cache_key(request, view)


class UserThrottle(SharedRateThrottle):
    """Authenticated requests per user, others per client address (``user`` rate)."""

    scope = "user"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.user and request.user.is_authenticated:
            return f"{self.scope}:user-{request.user.pk}"
        return super().get_cache_key(request, view)


class LoginThrottle(SharedRateThrottle):
    """Login attempts per client address (``login`` rate), whatever the username."""

    scope = "login"
