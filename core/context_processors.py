"""Navigation shown in the base layout, by role."""

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from core.access import AUDIT_READERS, CLINICAL_READERS, DATA_ENTRY, SITE_STAFF, access_for
from core.models import Role, User

# (label, url name, roles that see it). Apps add their entries here as they grow.
NAVIGATION = [
    (_("Participants"), "cohort:participant_list", CLINICAL_READERS - {Role.STATISTICIAN}),
    (_("Trials"), "randomization:trial_list", CLINICAL_READERS),
    (_("Questionnaires"), "crf:worklist", DATA_ENTRY | {Role.DATA_MANAGER}),
    # data review (issue 12): the query worklist, the investigator's forms to sign, and the
    # monitor's source data verification (with locks and the edit checks' re-run beside it)
    (_("Queries"), "crf:review_queries", SITE_STAFF),
    (_("To sign"), "crf:review_sign_list", {Role.INVESTIGATOR}),
    (_("Data review"), "crf:review_sdv", {Role.DATA_MANAGER}),
    (
        _("Dashboards"),
        "endpoints:dashboard",
        {Role.INVESTIGATOR, Role.DATA_MANAGER, Role.STATISTICIAN},
    ),
    (_("Audit trail"), "audit_index", AUDIT_READERS),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    user: User | AnonymousUser | None = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    roles = access_for(user).roles
    items = []
    for label, url_name, allowed in NAVIGATION:
        if not roles.intersection(allowed):
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        items.append({"label": label, "url": url, "active": request.path.startswith(url)})
    return {"nav_items": items, "user_roles": sorted(roles)}
