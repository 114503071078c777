"""API shell: authentication, one error format, pagination, role permissions, login/logout."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from knox.models import AuthToken
from knox.settings import knox_settings
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from core.access import access_for, acting_user
from core.authentication import TokenAuthentication
from core.refusals import Refusal, not_future
from core.schema import NOT_FUTURE
from core.throttling import LoginThrottle


# --- error format ---------------------------------------------------------------------------
def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {k: _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        if all(not isinstance(d, (dict, list)) for d in detail):
            return [str(d) for d in detail]
        return [_flatten(d) for d in detail]
    return [str(detail)]


def _from_refusal(refusal: Refusal) -> exceptions.APIException:
    """A service refusal as the API exception of its status: 400 with the field errors,
    403 with the message, 409 (or another status) with the reason codes in
    ``errors.reasons``."""
    if refusal.status_code == status.HTTP_400_BAD_REQUEST:
        errors = dict(refusal.field_errors)
        if refusal.non_field_errors:
            errors["non_field_errors"] = list(refusal.non_field_errors)
        return exceptions.ValidationError(errors)
    if refusal.status_code == status.HTTP_403_FORBIDDEN:
        return exceptions.PermissionDenied(str(refusal.message))
    exc = Conflict(
        {"detail": str(refusal.message), **refusal.field_errors, "reasons": refusal.reasons}
    )
    exc.status_code = refusal.status_code
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error has the shape ``{"detail": str, "errors": {field: [messages]}}``;
    a refusal's reason codes (409) are in ``errors.reasons``."""
    if isinstance(exc, Refusal):
        exc = _from_refusal(exc)
    elif isinstance(exc, DjangoValidationError):
        if hasattr(exc, "message_dict"):
            exc = exceptions.ValidationError(exc.message_dict)
        else:
            exc = exceptions.ValidationError({"non_field_errors": exc.messages})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(data) if isinstance(data, dict) else {"non_field_errors": _flatten(data)}
        detail = str(_("Invalid input."))
        if (
            isinstance(errors, dict)
            and list(errors) == ["non_field_errors"]
            and errors["non_field_errors"]
        ):
            detail = errors["non_field_errors"][0]
        response.data = {"detail": detail, "errors": errors}
    else:
        detail = data.get("detail", "") if isinstance(data, dict) else str(data)
        errors = (
            {k: _flatten(v) for k, v in data.items() if k != "detail"}
            if isinstance(data, dict)
            else {}
        )
        response.data = {"detail": str(detail), "errors": errors}
    return response


class Conflict(exceptions.APIException):
    status_code: int = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with the current state.")
    default_code = "conflict"


# --- input fields ------------------------------------------------------------------------------
class NotFutureDate(serializers.DateField):
    """A date the one rule (:func:`core.refusals.not_future`) refuses when after today;
    the schema names the rule (``x-server-rules``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(NOT_FUTURE)

    def to_internal_value(self, value: Any) -> date:
        day = super().to_internal_value(value)
        try:
            not_future(day, field=self.field_name or "")
        except Refusal as refusal:
            raise serializers.ValidationError(str(refusal.message), code=refusal.code) from None
        return day


# --- permissions ------------------------------------------------------------------------------
class HasRole(permissions.BasePermission):
    """Allow users holding any of the view's ``allowed_roles`` (at any site)."""

    message = _("Your role does not allow this.")

    def has_permission(self, request: Request, view: APIView) -> bool:
        roles = getattr(view, "allowed_roles", None)
        if not request.user or not request.user.is_authenticated:
            return False
        if roles is None:
            return True
        return access_for(request.user).has_role(*roles)


def role_permission(*roles: str) -> type[permissions.BasePermission]:
    """A permission class admitting ``roles`` (used per method where needed)."""

    class _RolePermission(HasRole):
        def has_permission(self, request: Request, view: APIView) -> bool:
            return bool(
                request.user
                and request.user.is_authenticated
                and access_for(request.user).has_role(*roles)
            )

    _RolePermission.__name__ = "Role_" + "_".join(roles)
    return _RolePermission


# --- login / logout -------------------------------------------------------------------------------
class LoginInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )


class LoginApi(APIView):
    """Exchange username and password for an expiring API token.

    Failed attempts count towards the same lockout as the web login
    (username + IP); a locked account gets 403 until the cool-off ends. A user holding
    ``TOKEN_LIMIT_PER_USER`` (20) unexpired tokens gets 403 until one is revoked
    (logout) or expires, as knox documents. Attempts are throttled per client address
    (``login`` rate) across all workers.
    """

    authentication_classes: list[type[BaseAuthentication]] = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(
        request=LoginInput,
        responses={
            200: inline_serializer(
                "LoginOutput",
                {
                    "token": serializers.CharField(),
                    "expiry": serializers.DateTimeField(),
                    "username": serializers.CharField(),
                },
            )
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if getattr(request._request, "axes_locked_out", False):
            raise exceptions.PermissionDenied(_("Too many failed login attempts. Try again later."))
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(
                _("Unable to log in with the given username and password.")
            )
        with transaction.atomic():
            # Lock the user row so that parallel logins cannot pass the limit together.
            type(user).objects.select_for_update().filter(pk=user.pk).first()
            # The user's expired tokens go now (requests check only the token they carry).
            AuthToken.objects.filter(user=user, expiry__lte=timezone.now()).delete()
            limit = knox_settings.TOKEN_LIMIT_PER_USER
            if limit is not None and (
                AuthToken.objects.filter(user=user)
                .filter(Q(expiry__gt=timezone.now()) | Q(expiry__isnull=True))
                .count()
                >= limit
            ):
                raise exceptions.PermissionDenied(
                    _(
                        "Too many active API tokens for this account. Log out with one "
                        "(POST /api/v1/auth/logout/) or wait until one expires."
                    )
                )
            instance, token = AuthToken.objects.create(user)
            user.last_login = timezone.now()
            user.save(update_fields=["last_login"])
        return Response(
            {"token": token, "expiry": instance.expiry, "username": user.get_username()}
        )

    def get_authenticate_header(self, request: Request) -> str:
        return "Token"


class LogoutApi(APIView):
    """Revoke the token used for this request."""

    authentication_classes = [TokenAuthentication]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    """The current user and the roles they hold."""

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "username": serializers.CharField(),
                "roles": serializers.ListField(child=serializers.CharField()),
                "sites": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        user = acting_user(request)
        access = access_for(user)
        return Response(
            {
                "username": user.get_username(),
                "roles": sorted(access.roles),
                "sites": list(access.visible_sites().values_list("code", flat=True)),
            }
        )
