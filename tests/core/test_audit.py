"""The audit trail records every write with its actor and cannot be edited."""

import pghistory
import pytest
from django.db import InternalError, connection, transaction
from django.urls import reverse

from core.models import Site, User
from core.selectors import audit_trail, event_model_for
from tests import factories


def _event_table(model) -> str:
    return event_model_for(model)._meta.db_table


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement", ["UPDATE {t} SET name = 'x'", "DELETE FROM {t}", "TRUNCATE {t}"]
)
def test_event_tables_refuse_update_delete_truncate(statement, site_a):
    """UPDATE, DELETE and TRUNCATE on an event table fail in SQL; the events stay."""
    table = _event_table(Site)
    before = event_model_for(Site).objects.count()
    assert before >= 1
    with pytest.raises(InternalError) as exc, transaction.atomic(), connection.cursor() as cur:
        cur.execute(statement.format(t=table))
    assert "append" in str(exc.value).lower() or "cannot" in str(exc.value).lower()
    assert event_model_for(Site).objects.count() == before


@pytest.mark.django_db
def test_queryset_update_is_audited_with_acting_user(client, nurse_a):
    """A QuerySet.update() inside a request leaves an event naming the user, with old and new value."""
    client.force_login(nurse_a)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "correct-horse-battery-9",
            "new_password1": "a-much-longer-pass-77",
            "new_password2": "a-much-longer-pass-77",
        },
    )
    assert response.status_code == 302
    events = event_model_for(User).objects.filter(pgh_obj_id=nurse_a.pk).order_by("pgh_id")
    last = events.last()
    assert last.pgh_label == "update"
    assert last.password_changed_at is not None
    assert last.pgh_context.metadata["user"] == nurse_a.pk
    assert last.pgh_context.metadata["username"] == "nurse_a"
    assert last.pgh_context.metadata["ip"] == "127.0.0.1"
    trail = audit_trail(model=User, pk=nurse_a.pk)
    assert trail[-1].changes["password_changed_at"][0] is None
    assert trail[-1].user_id == nurse_a.pk
    # The hash itself never enters the trail.
    assert not hasattr(last, "password")


@pytest.mark.django_db
def test_bulk_and_raw_sql_writes_are_audited(site_a):
    with pghistory.context(actor="test", reason="bulk rename"):
        Site.objects.filter(pk=site_a.pk).update(name="Renamed")
        with connection.cursor() as cur:
            cur.execute("UPDATE core_site SET name = 'Raw' WHERE id = %s", [site_a.pk])
    trail = audit_trail(model=Site, pk=site_a.pk)
    assert [e.label for e in trail] == ["insert", "update", "update"]
    assert trail[1].changes["name"] == ("Site A", "Renamed")
    assert trail[2].changes["name"] == ("Renamed", "Raw")
    assert trail[2].reason == "bulk rename"


@pytest.mark.django_db
def test_audit_view_shows_who_what_and_why(client, make_user, site_a):
    dm = make_user("data_manager", site_a, username="dm")
    with pghistory.context(user=dm.pk, username="dm", reason="typo in site name"):
        Site.objects.filter(pk=site_a.pk).update(name="Site A (fixed)")
    client.force_login(dm)
    response = client.get(reverse("audit_record", args=["core.site", site_a.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "typo in site name" in body
    assert "Site A (fixed)" in body
    assert "UTC" in body


@pytest.mark.django_db
def test_audit_view_refused_to_nurses(client, nurse_a, site_a):
    client.force_login(nurse_a)
    assert client.get(reverse("audit_index")).status_code == 403
    assert client.get(reverse("audit_record", args=["core.site", site_a.pk])).status_code == 403


@pytest.mark.django_db
def test_api_write_is_attributed_to_token_user(api_client_for, nurse_a):
    """Token-authenticated API writes carry the user in the audit context."""
    client = api_client_for(nurse_a)
    response = client.post("/api/v1/auth/logout/")
    assert response.status_code == 204
    # Logging out deletes the token row (knox); the membership trail is untouched.
    from knox.models import AuthToken

    assert not AuthToken.objects.filter(user=nurse_a).exists()


@pytest.mark.django_db
def test_audit_of_clinical_records_is_scoped_by_site_and_role(
    client, make_user, site_a, site_b, monitor, administrator
):
    """A site data manager reads only their site's clinical trail; administrators none."""
    dm_a = make_user("data_manager", site_a, username="dm_a")
    other = factories.ParticipantFactory(site=site_b, consents=False)
    url = reverse("audit_record", args=["cohort.participant", other.pk])
    client.force_login(dm_a)
    assert client.get(url).status_code == 404
    index = client.get(reverse("audit_index") + "?model=cohort.participant")
    assert f"#{other.pk}<" not in index.content.decode()
    client.force_login(monitor)
    assert client.get(url).status_code == 200
    client.force_login(administrator)
    assert client.get(url).status_code == 404
    assert client.get(reverse("audit_record", args=["core.site", site_b.pk])).status_code == 200


@pytest.mark.django_db
def test_reasons_stay_with_their_own_writes_inside_one_request(site_a, site_b, nurse_a):
    """Two edits with different reasons in one request keep their own reason; a write
    without one gets none; all carry the request's user."""
    from core.audit import reason

    with pghistory.context(user=nurse_a.pk, username="nurse_a"):
        with reason("first reason"):
            Site.objects.filter(pk=site_a.pk).update(name="A1")
        with reason("second reason"):
            Site.objects.filter(pk=site_b.pk).update(name="B1")
        Site.objects.filter(pk=site_a.pk).update(name="A2")
    trail_a = audit_trail(model=Site, pk=site_a.pk)
    trail_b = audit_trail(model=Site, pk=site_b.pk)
    assert [(e.changes["name"][1], e.reason) for e in trail_a[1:]] == [
        ("A1", "first reason"),
        ("A2", ""),
    ]
    assert trail_b[-1].reason == "second reason"
    assert {e.user_id for e in trail_a[1:] + trail_b[1:]} == {nurse_a.pk}
