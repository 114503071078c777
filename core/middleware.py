"""Request middleware: audit context (who, role, IP, URL) and security headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pghistory
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _

from core.access import access_for
from core.models import User

if TYPE_CHECKING:  # pragma: no cover - loaded while DRF loads its authentication classes
    from rest_framework.request import Request

GetResponse = Callable[[HttpRequest], HttpResponse]


def client_ip(request: HttpRequest | Request) -> str:
    """The client address, trusting X-Forwarded-For only behind ``TRUSTED_PROXY_COUNT``
    proxies (each appends the address it saw, so the client is the N-th from the right;
    anything a client writes further left is ignored). The lockout (axes), the API
    throttles and the audit context all use this one function."""
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0
    if proxies:
        forwarded = [
            p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


class AuditContextMiddleware:
    """Every write inside a request is attributed to the user, their roles and address.

    Reads (GET/HEAD) open no context so that they cost no extra SQL.
    """

    WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in self.WRITE_METHODS:
            return self.get_response(request)
        with pghistory.context(**self._context(request)):
            return self.get_response(request)

    @staticmethod
    def _context(request: HttpRequest) -> dict[str, Any]:
        user: User | AnonymousUser | None = getattr(request, "user", None)
        ctx: dict[str, Any] = {
            "url": request.path,
            "ip": client_ip(request),
            "method": request.method,
        }
        if user is not None and user.is_authenticated:
            ctx["user"] = user.pk
            ctx["username"] = user.get_username()
            ctx["roles"] = sorted(access_for(user).roles)
        return ctx


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """django-axes lockout: the API answers 403 in its error format (as documented for
    ``POST /api/v1/auth/login/``); screens get the lockout page (429)."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": _("Too many failed login attempts. Try again later."), "errors": {}},
            status=403,
        )
    return render(
        request,
        settings.AXES_LOCKOUT_TEMPLATE,
        status=getattr(settings, "AXES_HTTP_RESPONSE_CODE", 429),
    )


def audit_user(user: User | AnonymousUser | None) -> None:
    """Attach a user to the current audit context (API token users are known only in the view)."""
    if user is not None and getattr(user, "is_authenticated", False):
        # Called as a function, pghistory adds to the context the middleware opened.
        pghistory.context(
            user=user.pk, username=user.get_username(), roles=sorted(access_for(user).roles)
        )


class SecurityHeadersMiddleware:
    """A strict Content-Security-Policy (all assets are self-hosted) and no-store for private pages."""

    CSP = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith("/api/docs/"):
            response.setdefault(
                "Content-Security-Policy",
                self.CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'").replace(
                    "script-src 'self'", "script-src 'self' 'unsafe-inline'"
                ),
            )
        else:
            response.setdefault("Content-Security-Policy", self.CSP)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            response.setdefault("Cache-Control", "no-store")
        return response


class ApiLanguageMiddleware:
    """API clients get English unless they ask otherwise (``Accept-Language``); the staff
    screens keep the project's default, Dutch. Runs after ``LocaleMiddleware``, which already
    honoured an ``Accept-Language`` header or a language cookie."""

    API_PREFIX = "/api/"
    API_DEFAULT_LANGUAGE = "en"

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.path.startswith(self.API_PREFIX)
            and not request.META.get("HTTP_ACCEPT_LANGUAGE")
            and settings.LANGUAGE_COOKIE_NAME not in request.COOKIES
        ):
            translation.activate(self.API_DEFAULT_LANGUAGE)
            request.LANGUAGE_CODE = self.API_DEFAULT_LANGUAGE
        return self.get_response(request)
