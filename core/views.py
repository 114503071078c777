"""Platform screens: login/logout, password change, home, audit trail, health, error pages."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec

import redis
from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from core import services
from core.access import AUDIT_READERS, access_for, acting_user
from core.forms import LoginForm
from core.models import Role, User
from core.selectors import audit_models_for, audit_trail_for, recent_events
from core.tasks import HEARTBEAT_KEY

_P = ParamSpec("_P")
View = Callable[Concatenate[HttpRequest, _P], HttpResponse]


def role_required(*roles: str) -> Callable[[View[_P]], View[_P]]:
    """View decorator: logged in, and holding one of ``roles`` somewhere.

    A refusal by 404 (another site's participant, a record the user may not see) answers
    with the project's own 404 page in every mode: with DEBUG on, Django's technical 404
    page would list the URL patterns and the view that refused.
    """

    def decorator(view: View[_P]) -> View[_P]:
        @login_required
        def wrapped(request: HttpRequest, *args: _P.args, **kwargs: _P.kwargs) -> HttpResponse:
            if not access_for(request.user).has_role(*roles):
                raise PermissionDenied
            try:
                return view(request, *args, **kwargs)
            except Http404:
                return error_404(request)

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return wrapped

    return decorator


class LoginView(auth_views.LoginView):
    template_name = "core/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "core/password_change.html"
    success_url = reverse_lazy("home")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        services.user_password_changed(user=acting_user(self.request))
        messages.success(self.request, _("Your password has been changed."))
        return response


@login_required
def home(request: HttpRequest) -> HttpResponse:
    access = access_for(request.user)
    return render(
        request,
        "core/home.html",
        {
            "sites": access.visible_sites(),
            "grants": [{"role": Role(g.role).label, "site_id": g.site_id} for g in access.grants],
        },
    )


def _model_from_label(user: User, label: str) -> type[Model]:
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise Http404 from exc
    if model not in audit_models_for(user):
        raise Http404
    return model


# Statisticians pass the role gate; only those holding a secret model's permission find
# anything (audit_models_for), the others get 403 / 404 as before.
AUDIT_SCREEN_ROLES = (*AUDIT_READERS, Role.STATISTICIAN)


@role_required(*AUDIT_SCREEN_ROLES)
def audit_index(request: HttpRequest) -> HttpResponse:
    """Recent changes of one model; pick a record to see its full history."""
    user = acting_user(request)
    models_ = audit_models_for(user)
    if not models_:
        raise PermissionDenied
    label = request.GET.get("model") or models_[0]._meta.label_lower
    model = _model_from_label(user, label)
    return render(
        request,
        "core/audit_index.html",
        {
            "models": [(m._meta.label_lower, m._meta.verbose_name) for m in models_],
            "selected": model._meta.label_lower,
            "events": recent_events(model=model, limit=200, user=user),
        },
    )


@role_required(*AUDIT_SCREEN_ROLES)
def audit_record(request: HttpRequest, label: str, pk: str) -> HttpResponse:
    """The full history of one record: who changed which field from what to what, when and why."""
    user = acting_user(request)
    model = _model_from_label(user, label)
    entries = audit_trail_for(user=user, model=model, pk=pk)
    if not entries:
        raise Http404
    return render(
        request,
        "core/audit_record.html",
        {"model_label": model._meta.verbose_name, "label": label, "pk": pk, "entries": entries},
    )


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Database, Redis and a recent worker heartbeat: 200 when all are fine, 503 otherwise."""
    checks: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        checks["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - report, never raise
        checks["database"] = {"ok": False, "error": exc.__class__.__name__}

    heartbeat = None
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
        heartbeat = client.get(HEARTBEAT_KEY)
        checks["redis"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = {"ok": False, "error": exc.__class__.__name__}

    if heartbeat is None:
        checks["worker"] = {
            "ok": False,
            "error": "no recent heartbeat" if checks["redis"]["ok"] else "unknown (Redis down)",
        }
    else:
        text = heartbeat.decode() if isinstance(heartbeat, bytes) else str(heartbeat)
        age = time.time() - float(text.split("|", 1)[0])
        ok = age <= settings.WORKER_HEARTBEAT_MAX_AGE.total_seconds()
        checks["worker"] = {"ok": ok, "age_seconds": round(age, 1)}
        if not ok:
            checks["worker"]["error"] = "heartbeat too old"

    healthy = all(c["ok"] for c in checks.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": checks,
        "time": timezone.now().isoformat(),
        "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
    }
    return JsonResponse(body, status=200 if healthy else 503)


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/403.html", status=403)


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        # An API path no route matches (e.g. a negative id) answers in the API's one error
        # format, as its schema documents, never with the HTML page.
        from rest_framework.exceptions import NotFound

        return JsonResponse({"detail": str(NotFound.default_detail), "errors": {}}, status=404)
    return render(request, "errors/404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    from django.template import loader

    return HttpResponse(loader.get_template("errors/500.html").render({}), status=500)
