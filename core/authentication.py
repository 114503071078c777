"""API authentication that also names the user in the audit context.

Kept apart from ``core.apis`` because DRF imports authentication classes while
``rest_framework.views`` is still loading.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication

from core.middleware import audit_user
from core.models import User

if TYPE_CHECKING:  # pragma: no cover
    from rest_framework.request import Request

AuthResult = tuple[User, Any] | None


class TokenAuthentication(KnoxTokenAuthentication):
    """Knox tokens (stored as digests, expiring); the user is added to the audit context.

    A credential that is not of the shape knox issues (the prefix and
    ``AUTH_TOKEN_CHARACTER_LENGTH`` hex digits: non-ASCII bytes, wrong length, other
    characters) is refused as 401 before any lookup, never a 500.
    """

    def authenticate(self, request: Request) -> AuthResult:
        try:
            result = super().authenticate(request)
        except (UnicodeError, ValueError) as exc:  # e.g. a header not encodable as latin-1
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from exc
        if result is not None:
            audit_user(result[0])
        return result

    def authenticate_credentials(self, token: bytes) -> tuple[User, Any]:
        shape = re.compile(
            re.escape(knox_settings.TOKEN_PREFIX)
            + rf"[0-9a-f]{{{knox_settings.AUTH_TOKEN_CHARACTER_LENGTH}}}"
        )
        try:
            text = token.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if not shape.fullmatch(text) or len(text) < CONSTANTS.TOKEN_KEY_LENGTH:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return super().authenticate_credentials(token)

    def _cleanup_token(self, auth_token: Any) -> bool:
        """Knox's check that the presented token has expired (then it is deleted, as knox
        does, and refused), without knox's read of all the user's other tokens on every
        request: those expired tokens are deleted when the user next logs in
        (``core.apis.LoginApi``). One query less per API request."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


class SessionAuth(SessionAuthentication):
    def authenticate(self, request: Request) -> AuthResult:
        result = super().authenticate(request)
        if result is not None:
            audit_user(result[0])
        return result
