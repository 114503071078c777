"""Audit scope: every tracked model, every role.

The models are taken from the registry (every model with an audit event table), not from
a hand list, so a new tracked model is covered the day it appears. The oracle is
independent of the models' own declarations: which site a row belongs to is known from
how the world was built (one pass per site, rows told apart by the pass that created
them). Platform configuration and the sequence secrets are named below; every other
tracked model is treated as clinical and must have rows at both sites.

Expected, per role:
- nurse, investigator, statistician without the sequence permission: no audit screen;
- data manager at site A: configuration, and clinical rows of site A only;
- sponsor-wide monitor: configuration, and clinical rows of every site;
- administrator: configuration only, nothing of a clinical model;
- statistician holding ``randomization.manage_sequences``: the sequence secrets only.
Nobody else sees anything of sequences, slots, strata or minimisation decisions.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.core import checks as django_checks
from django.db import models as dj_models
from django.test.utils import isolate_apps
from django.urls import reverse
from django.utils import timezone

from core.selectors import tracked_models
from tests import factories

pytestmark = pytest.mark.django_db

CONFIGURATION = {
    "core.user",
    "core.site",
    "core.sitemembership",
    "cohort.consentformversion",
    "randomization.trial",
    "randomization.arm",
    "randomization.criterion",
    "crf.timepoint",
    "crf.codelist",
    "crf.codelistterm",
    "crf.formdefinition",
}
SEQUENCE_SECRET = {
    "randomization.sequence",
    "randomization.slot",
    "randomization.stratum",
    "randomization.minimisationdecision",
}
ROLES = [
    "nurse_a",
    "investigator_a",
    "dm_a",
    "monitor",
    "statistician",
    "administrator",
    "sequence_statistician",
]
CONFIG_READERS = {"dm_a", "monitor", "administrator"}


def _label(model) -> str:
    return model._meta.label_lower


def _pks() -> dict[str, set]:
    return {_label(m): set(m._base_manager.values_list("pk", flat=True)) for m in tracked_models()}


def may_see(role: str, label: str, site: str | None) -> bool:
    """The rule, independent of the code under test."""
    if label in SEQUENCE_SECRET:
        return role == "sequence_statistician"
    if label in CONFIGURATION:
        return role in CONFIG_READERS
    return role == "monitor" or (role == "dm_a" and site == "a")


# --- the world: one pass per site, through the services ------------------------------------------
@pytest.fixture
def dm_a(make_user, site_a):
    return make_user("data_manager", site_a, username="dm_a")


def _site_pass(site, nurse, investigator, trial, form):
    """Every clinical record type at ``site``, through the services where they exist."""
    from cohort import services as cohort_services
    from crf.models import InstrumentResponse, Questionnaire, QuestionnaireLink
    from crf.services import token_hash
    from randomization import services as rnd

    def register():
        return factories.ParticipantFactory(site=site, by=nurse, consent_form=form)

    intervention = factories.AllocationFactory(
        trial=trial, site=site, by=nurse, arm="intervention", consent_form=form
    )
    control = factories.AllocationFactory(
        trial=trial, site=site, by=nurse, arm="control", consent_form=form
    )
    today = timezone.localdate()
    rnd.offer_decision_record(
        by=nurse,
        allocation=intervention,
        offered_on=today,
        decision="refused",
        decided_on=today,
        refusal_reason="prefers the standard treatment",
    )
    rnd.disclosure_record(
        by=nurse, allocation=control, disclosed_on=today, description="told at the desk"
    )
    rnd.correction_propose(by=investigator, allocation=control, reason="wrong participant")
    rnd.treatment_start_set(by=nurse, allocation=intervention, actual=today)
    q = Questionnaire.objects.filter(participant=intervention.participant).first()
    assert q is not None, "the schedule was anchored"
    QuestionnaireLink.objects.create(
        questionnaire=q,
        token_hash=token_hash(f"token-{site.code}"),
        kind="invitation",
        attempt="00000000-0000-0000-0000-000000000001",
        expires_at=q.closes_at,
    )
    InstrumentResponse.objects.create(
        questionnaire=q,
        instrument="pain",
        instrument_version="pain 1",
        answers={"worst": 7},
        scores={"worst": 7},
    )
    from crf import services as crf_services

    record = crf_services.clinical_record_create(
        user=nurse, allocation=intervention, form_code="admission", data={"icu": False}
    )
    monitor = factories.UserFactory(username=f"monitor-{site.code}", role="data_manager", site=site)
    crf_services.query_raise(user=monitor, record=record, item="icu", text="ICU?")
    ended = crf_services.clinical_record_create(
        user=nurse,
        allocation=intervention,
        form_code="end_of_study",
        data={"ended_on": today.isoformat(), "reason": "completed"},
        complete=True,
    )
    from django.test import RequestFactory

    crf_services.record_sign(
        user=investigator,
        record=ended,
        password=factories.PASSWORD,
        request=RequestFactory().post("/", REMOTE_ADDR="10.0.0.9"),
        revision=ended.revision,
    )
    crf_services.record_verify(user=monitor, record=ended, revision=ended.revision, items=["*"])
    crf_services.data_lock(
        user=monitor, level="participant", trial=trial, participant=control.participant, reason="x"
    )
    other = register()
    cohort_services.withdrawal_record(
        by=nurse, participant=other, scope="questionnaires", effective_on=today
    )
    cohort_services.death_record(
        by=nurse, participant=other, died_on=today, source="hospital_record"
    )
    cohort_services.identity_access_log(user=nurse, participants=[other], context="page")


@pytest.fixture
def world(
    settings,
    site_a,
    site_b,
    nurse_a,
    nurse_b,
    investigator_a,
    investigator_b,
    sequence_statistician,
    blend,
):
    """Returns {label: {"a": pks, "b": pks, None: pks}}: rows by the site they belong to."""
    from randomization import services as rnd

    settings.RANDOMISATION_ENVIRONMENT = "test"  # a test installation allocating from test lists
    trial = blend
    form = factories.ConsentFormVersionFactory(version="9", effective_from=date(2020, 1, 1))
    # A live minimisation sequence (decisions at both sites) and a sealed permuted-block
    # list of the other environment, not live (slots and strata).
    live = rnd.sequence_generate(
        by=sequence_statistician,
        trial=trial,
        method="minimisation",
        environment="test",
        factors=["site", "sex"],
    )
    rnd.sequence_activate(by=sequence_statistician, sequence=live)
    rnd.sequence_generate(
        by=sequence_statistician,
        trial=trial,
        method="permuted_blocks",
        environment="production",
        factors=["site"],
        block_sizes=[2, 4],
        slots_per_stratum=8,
    )
    # A loaded code list version (configuration).
    from crf.codelists import code_list_load

    code_list_load(
        by=factories.UserFactory(username="codelist_loader", role="administrator"),
        code="ctcae_v5",
        version="5.0",
        rows=[
            {
                "code": "10028813",
                "term": "Nausea",
                "soc": "Gastrointestinal disorders",
                "grades": {1: "Mild", 2: "Moderate", 3: "Severe"},
            }
        ],
        source="audit scope test",
    )
    before = _pks()
    _site_pass(site_a, nurse_a, investigator_a, trial, form)
    after_a = _pks()
    _site_pass(site_b, nurse_b, investigator_b, trial, form)
    after_b = _pks()
    return {
        label: {
            None: before[label],
            "a": after_a[label] - before[label],
            "b": after_b[label] - after_a[label],
        }
        for label in before
    }


# --- the tests -----------------------------------------------------------------------------------
def test_the_world_has_rows_of_every_tracked_model_at_both_sites(world):
    """Guard for the sweep below: every clinical model has rows at each site, every other
    model at least one row (a new tracked model must be added to the world)."""
    missing = []
    for label, rows in world.items():
        if label in CONFIGURATION or label in SEQUENCE_SECRET:
            if not (rows[None] | rows["a"] | rows["b"]):
                missing.append(label)
        elif not rows["a"] or not rows["b"]:
            missing.append(label)
    assert missing == []


INDEX_LINK = re.compile(r'href="/audit/([a-z_]+\.[a-z_]+)/([^/"]+)/"')


@pytest.mark.parametrize("role", ROLES)
def test_audit_screens_show_each_role_only_its_rows(request, client, world, role):
    """Index and detail page of every tracked model: only the rows the role may read."""
    user = request.getfixturevalue(role)
    client.force_login(user)
    failures = []
    visible_models = set()
    for label, rows in sorted(world.items()):
        by_site = {site: {str(pk) for pk in pks} for site, pks in rows.items()}
        if label in CONFIGURATION:  # includes the rows made since, e.g. the viewer's own
            model = next(m for m in tracked_models() if _label(m) == label)
            by_site = {None: {str(pk) for pk in model._base_manager.values_list("pk", flat=True)}}
        allowed = {pk for site, pks in by_site.items() for pk in pks if may_see(role, label, site)}
        index = client.get(reverse("audit_index") + f"?model={label}")
        if index.status_code == 200:
            body = index.content.decode()
            listed = {pk for lab, pk in INDEX_LINK.findall(body) if lab == label}
            if listed - allowed:
                failures.append(f"index {label} lists {sorted(listed - allowed)[:5]}")
            if allowed and not listed:
                failures.append(f"index {label} lists none of the readable rows")
            if not allowed and label not in CONFIGURATION:
                failures.append(f"index {label} opens (200)")
        elif allowed:
            failures.append(f"index {label}: {index.status_code}")
        if allowed:
            visible_models.add(label)
        samples = [(site, sorted(pks)[0]) for site, pks in by_site.items() if pks]
        for site, pk in samples:
            response = client.get(reverse("audit_record", args=[label, pk]))
            want = may_see(role, label, site)
            if want and response.status_code != 200:
                failures.append(f"detail {label}#{pk} ({site}): {response.status_code}")
            if not want and response.status_code == 200:
                failures.append(f"detail {label}#{pk} ({site}) readable")
    assert failures == [], f"{role}: {failures}"
    # The record types offered are exactly the readable ones.
    index = client.get(reverse("audit_index"))
    if visible_models:
        offered = set(re.findall(r'<option value="([a-z_]+\.[a-z_]+)"', index.content.decode()))
        assert offered == visible_models
    else:
        assert index.status_code in (403, 404)


def test_administrator_sees_no_clinical_value(client, world, administrator):
    """The administrator's pages contain none of a patient's answers or an IP address."""
    from crf.models import InstrumentResponse

    client.force_login(administrator)
    pk = sorted(world["crf.instrumentresponse"]["a"])[0]
    assert client.get(f"/audit/crf.instrumentresponse/{pk}/").status_code == 404
    assert InstrumentResponse.objects.filter(pk=pk).exists()
    body = client.get(reverse("audit_index")).content.decode()
    assert "crf.instrumentresponse" not in body
    assert "randomization.screeninganswer" not in body


def test_every_tracked_model_declares_its_audit_scope():
    """The system check passes for the project: every tracked model declares a scope."""
    from core.checks import audit_scope_declared

    assert audit_scope_declared(None) == []


@isolate_apps("core")
def test_system_check_refuses_a_tracked_model_without_a_declared_scope():
    """A tracked model with no declaration (or a wrong one) is an error, by name."""
    from core.checks import audit_scope_errors

    class Undeclared(dj_models.Model):  # noqa: DJ008
        class Meta:
            app_label = "core"

    class WrongPath(dj_models.Model):  # noqa: DJ008
        audit_site_path = "nowhere__site"

        class Meta:
            app_label = "core"

    class Unknown(dj_models.Model):  # noqa: DJ008
        audit_scope = "maybe"

        class Meta:
            app_label = "core"

    errors = audit_scope_errors([Undeclared, WrongPath, Unknown])
    assert all(isinstance(e, django_checks.Error) for e in errors)
    assert [e.obj for e in errors] == [Undeclared, WrongPath, Unknown]
    assert {e.id for e in errors} == {"core.E010"}


def test_identity_access_admin_is_scoped_like_its_audit_trail(
    client, world, dm_a, monitor, administrator
):
    """Who saw whose identifying data, in the Django admin: a site data manager sees their
    own site's rows only, the monitor every site's, the administrator (even a superuser
    without a clinical role) none."""
    from cohort.models import IdentityAccess
    from core.models import User

    User.objects.filter(pk__in=[dm_a.pk, monitor.pk, administrator.pk]).update(is_staff=True)
    User.objects.filter(pk=administrator.pk).update(is_superuser=True)
    rows = {site: sorted(world["cohort.identityaccess"][site]) for site in ("a", "b")}
    numbers = {
        site: set(
            IdentityAccess.objects.filter(pk__in=pks).values_list(
                "participant__study_number", flat=True
            )
        )
        for site, pks in rows.items()
    }
    url = "/admin/cohort/identityaccess/"

    client.force_login(dm_a)
    page = client.get(url)
    assert page.status_code == 200
    assert all(n in page.content.decode() for n in numbers["a"])
    assert not any(n in page.content.decode() for n in numbers["b"])
    assert client.get(f"{url}{rows['b'][0]}/change/").status_code in (302, 403, 404)
    assert client.get(f"{url}{rows['a'][0]}/change/").status_code == 200

    client.force_login(monitor)
    body = client.get(url).content.decode()
    assert all(n in body for n in numbers["a"] | numbers["b"])

    client.force_login(administrator)
    assert client.get(url).status_code == 403
    assert client.get(f"{url}{rows['a'][0]}/change/").status_code in (302, 403, 404)
    assert url not in client.get("/admin/").content.decode()


@pytest.mark.parametrize("pk", ["abc", "1.5", "%20"])
def test_a_malformed_record_id_is_a_404_not_a_500(client, world, monitor, pk):
    """Any text in the record id of an audit URL answers 404 (never an error page)."""
    client.force_login(monitor)
    for label in ("core.site", "cohort.participant"):
        assert client.get(f"/audit/{label}/{pk}/").status_code == 404


def test_allocation_trail_names_no_list_stratum_or_slot(client, world, monitor, dm_a):
    """An allocation's trail shows who randomised whom to which arm, but not which list,
    stratum or slot it took (they would reveal the list's structure); a link's trail
    shows no token hash."""
    from crf.models import QuestionnaireLink
    from randomization.models import Allocation

    allocation = Allocation.objects.get(pk=sorted(world["randomization.allocation"]["a"])[0])
    link = QuestionnaireLink.objects.get(pk=sorted(world["crf.questionnairelink"]["a"])[0])
    for user in (monitor, dm_a):
        client.force_login(user)
        body = client.get(f"/audit/randomization.allocation/{allocation.pk}/").content.decode()
        assert "<code>trial_number</code>" in body and allocation.trial_number in body
        for field in ("sequence_id", "stratum", "slot_id"):
            assert f"<code>{field}</code>" not in body
        assert f">{allocation.stratum}<" not in body
        body = client.get(f"/audit/crf.questionnairelink/{link.pk}/").content.decode()
        assert "<code>expires_at</code>" in body
        assert "token_hash" not in body and link.token_hash not in body
