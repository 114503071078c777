"""API authentication that also names the user in the audit context.

Kept apart from ``core.apis`` because DRF imports authentication classes while
``rest_framework.views`` is still loading.
"""

from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework.authentication import SessionAuthentication

from core.middleware import audit_user


class TokenAuthentication(KnoxTokenAuthentication):
    """Knox tokens (stored as digests, expiring); the user is added to the audit context."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            audit_user(result[0])
        return result


class SessionAuth(SessionAuthentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            audit_user(result[0])
        return result
