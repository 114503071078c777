"""Who may see what: the one access module every screen and API builds on.

Rules (SPEC.md §2):

- Site staff (research nurse, investigator, data manager/monitor) see the
  participants and records of the sites where they hold that role. A
  membership without a site is sponsor-wide and covers every site.
- Statisticians see every site, but only pseudonymised data; they never see
  identifying data.
- Administrators manage users, sites and configuration; without a clinical
  role they read no clinical data.
- Identifying data is shown only to site staff *of the participant's own
  site* (a sponsor-wide membership does not grant it).

Use :func:`scope` to filter any queryset that has a path to a site, and the
``can_*`` predicates for single decisions. Never filter by site by hand in a
view or API. Every service that writes for a user checks :func:`require_write` (the one
write-access check; it raises :class:`core.refusals.NotAllowed`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol, TypeVar

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Model, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from core.models import Role, Site, SiteMembership, User
from core.refusals import NotAllowed

_M = TypeVar("_M", bound=Model)
_R = TypeVar("_R")

SITE_STAFF = frozenset({Role.NURSE, Role.INVESTIGATOR, Role.DATA_MANAGER})
CLINICAL_READERS = SITE_STAFF | {Role.STATISTICIAN}
DATA_ENTRY = frozenset({Role.NURSE, Role.INVESTIGATOR})
AUDIT_READERS = frozenset({Role.DATA_MANAGER, Role.ADMINISTRATOR})


@dataclass(frozen=True)
class Grant:
    role: str
    site_id: int | None  # None: every site


class Access:
    """The roles a user holds, loaded once per request (one query)."""

    def __init__(self, user: User | AnonymousUser):
        self.user = user

    @cached_property
    def grants(self) -> tuple[Grant, ...]:
        if not getattr(self.user, "is_authenticated", False) or not self.user.is_active:
            return ()
        rows = SiteMembership.objects.active().filter(user=self.user).values_list("role", "site_id")
        return tuple(Grant(role=r, site_id=s) for r, s in rows)

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(g.role for g in self.grants)

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def site_ids(self, roles: frozenset[str] | set[str] = CLINICAL_READERS) -> set[int] | None:
        """Sites where the user holds one of ``roles``: a set of ids, or ``None`` for all sites.

        An empty set means no site at all.
        """
        ids: set[int] = set()
        for grant in self.grants:
            if grant.role not in roles:
                continue
            if grant.site_id is None:
                return None
            ids.add(grant.site_id)
        return ids

    def scope(
        self,
        qs: QuerySet[_M, _R],
        *,
        site_field: str = "site",
        roles: frozenset[str] | set[str] = CLINICAL_READERS,
    ) -> QuerySet[_M, _R]:
        """Restrict ``qs`` to the rows whose ``site_field`` the user may read with ``roles``."""
        ids = self.site_ids(roles)
        if ids is None:
            return qs
        if not ids:
            return qs.none()
        return qs.filter(**{f"{site_field}__in": ids})

    def can_read_site(
        self, site_id: int, roles: frozenset[str] | set[str] = CLINICAL_READERS
    ) -> bool:
        ids = self.site_ids(roles)
        return ids is None or site_id in ids

    def can_see_identifying(self, site_id: int) -> bool:
        """Identifying data: only staff holding a site role *at that very site*."""
        return any(g.role in SITE_STAFF and g.site_id == site_id for g in self.grants)

    def identifying_site_ids(self) -> set[int]:
        return {g.site_id for g in self.grants if g.role in SITE_STAFF and g.site_id is not None}

    def can_write_site(self, site_id: int, roles: frozenset[str] | set[str] = DATA_ENTRY) -> bool:
        """Data entry at a site: nurses and investigators holding the role at that site."""
        return any(g.role in roles and g.site_id in (site_id, None) for g in self.grants)

    def writable_sites(self, roles: frozenset[str] | set[str] = DATA_ENTRY) -> QuerySet[Site]:
        ids = self.site_ids(roles)
        qs = Site.objects.filter(is_active=True)
        if ids is None:
            return qs
        return qs.filter(pk__in=ids)

    def visible_sites(self) -> QuerySet[Site]:
        ids = self.site_ids(CLINICAL_READERS)
        qs = Site.objects.all()
        if ids is None:
            return qs
        return qs.filter(pk__in=ids)

    @property
    def is_pseudonymised_only(self) -> bool:
        """True when the user may read clinical data but never identifying data."""
        return not any(g.role in SITE_STAFF for g in self.grants)


def access_for(user: User | AnonymousUser) -> Access:
    """The cached :class:`Access` of a user; one membership query per request."""
    cached: Access | None = getattr(user, "_blend_access", None)
    if cached is None:
        cached = Access(user)
        with contextlib.suppress(AttributeError):  # AnonymousUser may refuse attributes
            # a per-instance cache, not a declared attribute of the user
            setattr(user, "_blend_access", cached)  # noqa: B010
    return cached


class _Authenticated(Protocol):
    @property
    def user(self) -> object: ...


def acting_user(request: _Authenticated) -> User:
    """The logged-in user of a screen or API request behind a login gate
    (``core.views.role_required``, ``login_required``, ``core.apis.HasRole``), typed as
    :class:`~core.models.User` for the services. The gate already refused anonymous
    requests; one that got here anyway is refused (403), never passed on."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def require_write(
    user: User | AnonymousUser, site_id: int, *, roles: frozenset[str] | set[str] = DATA_ENTRY
) -> None:
    """The one write-access check of every service: ``user`` holds one of ``roles`` (data
    entry: nurse, investigator) at ``site_id`` or sponsor-wide. Refuses with
    :class:`~core.refusals.NotAllowed` (403 on screens and in the API); nothing is written."""
    if not access_for(user).can_write_site(site_id, roles):
        raise NotAllowed(_("Your role does not allow data entry at this site."))


def site_q(
    user: User | AnonymousUser,
    *,
    site_field: str = "site",
    roles: frozenset[str] | set[str] = CLINICAL_READERS,
) -> Q:
    """The same rule as :meth:`Access.scope` as a ``Q`` object, for joins and annotations."""
    ids = access_for(user).site_ids(roles)
    if ids is None:
        return Q()
    return Q(**{f"{site_field}__in": ids}) if ids else Q(pk__in=[])
