"""Demo data goes through the services and is idempotent; the admin never deletes and never
shows clinical data to an administrator without a clinical role."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from cohort.models import ConsentFormVersion, ConsentRecord, Death, Participant, Withdrawal
from core.models import Site

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_world(make_user):
    umcu = Site.objects.create(code="umcu", name="UMC Utrecht")
    partner = Site.objects.create(code="partner", name="Partner")
    make_user("nurse", umcu, username="nurse")
    make_user("nurse", partner, username="nurse2")
    return umcu, partner


def test_demo_seed_makes_participants_at_both_sites_and_is_idempotent(demo_world):
    from cohort.demo import seed

    out = io.StringIO()
    seed(out)
    assert ConsentFormVersion.objects.filter(code="present-icf", version="3").count() == 2
    assert Participant.objects.count() == 12
    assert set(Participant.objects.values_list("site__code", flat=True)) == {"umcu", "partner"}
    assert ConsentRecord.objects.filter(answer=True).count() == 48
    assert Withdrawal.objects.count() == 2 and Death.objects.count() == 1
    seed(out)
    assert Participant.objects.count() == 12


def test_demo_deaths_and_withdrawals_obey_the_date_rules(demo_world):
    """No demo death or withdrawal before its participant's registration day, and no death
    before a consent: the demo goes through the same rules as a nurse."""
    from django.utils import timezone

    from cohort.demo import seed

    seed(io.StringIO())
    for record in [*Withdrawal.objects.select_related("participant"), *Death.objects.all()]:
        registered = timezone.localdate(record.participant.registered_at)
        day = getattr(record, "effective_on", None) or record.died_on
        assert day >= registered, (record, registered)
    for death in Death.objects.all():
        assert not ConsentRecord.objects.filter(
            participant=death.participant, given_on__gt=death.died_on
        ).exists()


@pytest.fixture
def staff_admin(administrator):
    administrator.is_staff = True
    administrator.is_superuser = True
    administrator.save()
    return administrator


def test_administrator_without_clinical_role_sees_no_clinical_data_in_admin(
    staff_admin, participant_a
):
    client = Client()
    client.force_login(staff_admin)
    assert client.get("/admin/cohort/participant/").status_code == 403
    assert client.get(f"/admin/cohort/participant/{participant_a.pk}/change/").status_code in (
        403,
        302,
    )
    assert client.get("/admin/cohort/identity/").status_code == 404  # not registered at all
    index = client.get("/admin/").content.decode()
    assert "/admin/cohort/participant/" not in index
    assert "/admin/cohort/consentformversion/" in index


def test_admin_never_deletes_consent_form_versions(staff_admin, form_version):
    client = Client()
    client.force_login(staff_admin)
    resp = client.post(
        f"/admin/cohort/consentformversion/{form_version.pk}/delete/", {"post": "yes"}
    )
    assert resp.status_code == 403
    assert ConsentFormVersion.objects.filter(pk=form_version.pk).exists()


def test_admin_creates_consent_form_versions_through_the_service(staff_admin):
    client = Client()
    client.force_login(staff_admin)
    resp = client.post(
        "/admin/cohort/consentformversion/add/",
        {"code": "present-icf", "version": "4", "language": "en", "effective_from": "2026-01-01"},
    )
    assert resp.status_code == 302
    assert ConsentFormVersion.objects.filter(version="4", language="en").exists()
