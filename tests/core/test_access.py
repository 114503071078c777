"""The access module decides which sites' records a user may read, and who sees identifying data."""

import pytest

from core.access import access_for
from core.models import Role, SiteMembership


@pytest.mark.django_db
def test_nurse_of_site_a_sees_only_site_a_records(nurse_a, nurse_b, site_a, site_b):
    """A nurse of site A cannot see site B's records through the scoped queryset."""
    rows = access_for(nurse_a).scope(SiteMembership.objects.all())
    sites = set(rows.values_list("site_id", flat=True))
    assert sites == {site_a.pk}
    assert not access_for(nurse_a).can_read_site(site_b.pk)
    assert access_for(nurse_a).can_read_site(site_a.pk)


@pytest.mark.django_db
def test_sponsor_wide_roles_read_every_site(
    monitor, statistician, site_a, site_b, nurse_a, nurse_b
):
    for user in (monitor, statistician):
        access = access_for(user)
        assert access.site_ids() is None
        assert set(access.visible_sites()) == {site_a, site_b}


@pytest.mark.django_db
def test_identifying_data_only_for_staff_of_that_site(
    nurse_a, monitor, statistician, administrator, site_a, site_b
):
    assert access_for(nurse_a).can_see_identifying(site_a.pk)
    assert not access_for(nurse_a).can_see_identifying(site_b.pk)
    # Sponsor-wide roles never see identifying data, not even the central monitor.
    assert not access_for(monitor).can_see_identifying(site_a.pk)
    assert not access_for(statistician).can_see_identifying(site_a.pk)
    assert access_for(statistician).is_pseudonymised_only


@pytest.mark.django_db
def test_administrator_reads_no_clinical_data(administrator, site_a):
    access = access_for(administrator)
    assert access.site_ids() == set()
    assert not access.scope(SiteMembership.objects.all()).exists()


@pytest.mark.django_db
def test_ended_membership_grants_nothing(nurse_a, site_a):
    from core.services import membership_end

    membership = SiteMembership.objects.get(user=nurse_a)
    membership_end(membership=membership, reason="left the hospital")
    nurse_a = type(nurse_a).objects.get(pk=nurse_a.pk)  # fresh object, no cached access
    assert access_for(nurse_a).site_ids() == set()
    assert SiteMembership.objects.filter(pk=membership.pk).exists()  # ended, not deleted


@pytest.mark.django_db
def test_inactive_user_has_no_access(nurse_a, site_a):
    nurse_a.is_active = False
    nurse_a.save()
    assert access_for(nurse_a).roles == frozenset()


@pytest.mark.django_db
def test_write_access_needs_nurse_or_investigator_at_that_site(
    nurse_a, monitor, investigator_a, site_a, site_b
):
    assert access_for(nurse_a).can_write_site(site_a.pk)
    assert not access_for(nurse_a).can_write_site(site_b.pk)
    assert access_for(investigator_a).can_write_site(site_a.pk)
    assert not access_for(monitor).can_write_site(site_a.pk)


@pytest.mark.django_db
def test_membership_delete_is_refused_by_the_database(nurse_a):
    from django.db import InternalError, transaction

    with pytest.raises(InternalError), transaction.atomic():
        SiteMembership.objects.filter(user=nurse_a).delete()
    assert SiteMembership.objects.filter(user=nurse_a, role=Role.NURSE).count() == 1
