"""Concealment: as nurse, investigator, site data manager, monitor, a statistician without
the sequence permission and an administrator, no page, API, admin view, audit view or error
reveals an unused slot, the next arm, or the structure of the list.

Method: request every randomization URL (and the admin and audit views of the sequence
models, allocations and minimisation decisions), then change what must stay concealed in
the database and request them all again. If any response depends on it, the two rounds
differ. Two changes are swept: the arm of every unused slot, and the list's structure
(block, block size and position of every unused slot, and the strata counters: slots
and slots used), written with the audit triggers on so the audit trail carries the
permuted values too. The statistician holding the permission is the positive control:
their sequence page and the audit pages of slots and strata do change.
"""

from __future__ import annotations

import re

import pgtrigger
import pytest
from django.db import models
from django.urls import reverse
from django.utils import timezone

from randomization.models import MinimisationDecision, Slot, Stratum

pytestmark = pytest.mark.django_db

CSRF = [
    re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"'),
    re.compile(rb'"X-CSRFToken": "[^"]+"'),
]


def _normalise(content: bytes) -> bytes:
    for pattern in CSRF:
        content = pattern.sub(b"CSRF", content)
    return content


@pytest.fixture
def world(
    blend,
    active_sequence,
    randomised,
    make_participant,
    screen,
    eligible_participant,
    nurse_a,
    investigator_a,
    site_a,
    site_b,
    statistician,
    sequence_statistician,
    settings,
):
    """A live trial: a few allocations, one eligible not yet randomised, one ineligible,
    an open correction, and one allocation by minimisation."""
    from randomization.services import correction_propose

    sequence = active_sequence(slots_per_stratum=20)
    control = randomised(site_a, nurse_a, arm="control")
    intervention = randomised(site_a, nurse_a, arm="intervention")
    waiting = eligible_participant(site_a, nurse_a)
    ineligible = make_participant(site_a, primary_tumour="myeloma")
    screen(nurse_a, ineligible, multiple_myeloma="yes")
    correction_propose(by=investigator_a, allocation=intervention, reason="check")
    minimised, minimisation = _minimised_allocation(
        settings, blend, sequence_statistician, eligible_participant, site_a, nurse_a
    )
    unused = Slot.objects.filter(sequence=sequence, allocation__isnull=True).order_by("pk")
    used = Slot.objects.filter(sequence=sequence, allocation__isnull=False).order_by("pk")
    return {
        "sequence": sequence,
        "minimisation": minimisation,
        "control": control,
        "intervention": intervention,
        "minimised": minimised,
        "decision": MinimisationDecision.objects.get(allocation=minimised),
        "waiting": waiting,
        "ineligible": ineligible,
        "unused": list(unused.values_list("pk", flat=True)),
        "used": list(used.values_list("pk", flat=True)),
        "stratum": Stratum.objects.get(sequence=sequence, key="site=site-a"),
        "strata": list(Stratum.objects.order_by("pk").values_list("pk", flat=True)),
    }


def _minimised_allocation(settings, blend, statistician, eligible_participant, site, nurse):
    """One participant randomised by minimisation (a live list of the other environment),
    so that a real minimisation decision and its lock row exist."""
    from randomization.services import allocation_randomise, sequence_activate, sequence_generate

    settings.RANDOMISATION_ENVIRONMENT = "production"
    try:
        minimisation = sequence_generate(
            by=statistician,
            trial=blend,
            method="minimisation",
            environment="production",
            factors=["site", "sex"],
        )
        sequence_activate(by=statistician, sequence=minimisation)
        participant = eligible_participant(site, nurse)
        allocation = allocation_randomise(by=nurse, trial=blend, participant=participant)
    finally:
        settings.RANDOMISATION_ENVIRONMENT = "test"
    return allocation.allocation, minimisation


def _requests(world):
    """(method, url, data) for every screen and endpoint of the app, and more."""
    code = "BLEND"
    seq = world["sequence"].pk
    tn_c, tn_i = world["control"].trial_number, world["intervention"].trial_number
    waiting, ineligible = world["waiting"].study_number, world["ineligible"].study_number
    r = "randomization:"
    get = [
        reverse(r + "trial_list"),
        reverse(r + "trial_overview", args=[code]),
        reverse(r + "screening_lookup", args=[code]) + f"?participant={waiting}",
        reverse(r + "screening_create", args=[code, waiting]),
        reverse(r + "randomise", args=[code, waiting]),
        reverse(r + "randomise", args=[code, ineligible]),
        reverse(r + "allocation_detail", args=[code, tn_c]),
        reverse(r + "allocation_detail", args=[code, tn_i]),
        reverse(r + "offer_decision", args=[code, tn_i]),
        reverse(r + "treatment_start", args=[code, tn_c]),
        reverse(r + "disclosure_create", args=[code, tn_c]),
        reverse(r + "correction_propose", args=[code, tn_c]),
        reverse(r + "correction_list", args=[code]),
        reverse(r + "sequence_list", args=[code]),
        reverse(r + "sequence_generate", args=[code]),
        reverse(r + "sequence_detail", args=[code, seq]),
        reverse(r + "sequence_detail", args=[code, seq]) + "?slots=1&verify=1",
        "/api/v1/trials/",
        "/api/v1/trials/BLEND/screenings/",
        "/api/v1/trials/BLEND/randomisations/",
        f"/api/v1/trials/BLEND/randomisations/{tn_c}/",
        f"/api/v1/trials/BLEND/randomisations/{tn_i}/",
        "/api/schema/",
        "/admin/randomization/",
        "/admin/randomization/slot/",
        "/admin/randomization/sequence/",
        "/admin/randomization/stratum/",
        "/audit/?model=randomization.slot",
        "/audit/?model=randomization.sequence",
        "/audit/?model=randomization.stratum",
        f"/audit/randomization.sequence/{seq}/",
        f"/audit/randomization.stratum/{world['stratum'].pk}/",
        f"/audit/randomization.sequence/{world['minimisation'].pk}/",
        "/audit/?model=randomization.allocation",
        "/audit/?model=randomization.minimisationdecision",
        f"/audit/randomization.allocation/{world['control'].pk}/",
        f"/audit/randomization.allocation/{world['intervention'].pk}/",
        f"/audit/randomization.allocation/{world['minimised'].pk}/",
        f"/audit/randomization.minimisationdecision/{world['decision'].pk}/",
        reverse(r + "allocation_detail", args=[code, world["minimised"].trial_number]),
        f"/api/v1/trials/BLEND/randomisations/{world['minimised'].trial_number}/",
        reverse(r + "sequence_detail", args=[code, world["minimisation"].pk]),
        "/admin/randomization/allocation/",
        "/admin/randomization/minimisationdecision/",
        "/admin/pghistory/",
        "/admin/",
        # The cohort participant pages carry this app's panel and banner.
        f"/cohort/{waiting}/",
        f"/cohort/{world['control'].participant.study_number}/",
        "/cohort/",
    ]
    get += [f"/audit/randomization.slot/{pk}/" for pk in world["unused"][:5] + world["used"][:2]]
    get += [f"/audit/randomization.stratum/{pk}/" for pk in world["strata"]]
    post = [
        (reverse(r + "screening_verdict", args=[code, waiting]), {"c_fit_for_radiosurgery": "yes"}),
        # Refusals (ineligible participant) and forms with errors render without writing.
        (reverse(r + "randomise", args=[code, ineligible]), {"confirm": "on"}),
        (reverse(r + "sequence_activate", args=[code, seq]), {}),
        ("/api/v1/trials/BLEND/randomisations/", {"participant": ineligible}),
        (f"/api/v1/trials/BLEND/randomisations/{tn_c}/decision/", {"offered_on": "x"}),
    ]
    return [("get", url, None) for url in get] + [("post", url, data) for url, data in post]


def _fetch_all(client, requests) -> dict:
    out = {}
    for method, url, data in requests:
        response = client.get(url) if method == "get" else client.post(url, data)
        out[(method, url)] = (response.status_code, _normalise(response.content))
    return out


def _flip_unused(world):
    arms = list(world["sequence"].trial.arms.values_list("pk", flat=True))
    with pgtrigger.ignore("randomization.Slot:sealed_no_update"):
        for slot in Slot.objects.filter(pk__in=world["unused"]):
            other = [a for a in arms if a != slot.arm_id][0]
            Slot.objects.filter(pk=slot.pk).update(arm_id=other)


def _permute_structure(world):
    """Change the list's structure where it is not yet used, through the audited path
    (the audit triggers stay on, so the trail records the permuted values):

    - unused slots: positions reversed within their stratum, other block numbers, the
      other block size;
    - strata: more slots, and more slots used where nothing was allocated yet (the
      minimisation lock row's counter feeds its next random draw).
    """
    sequence = world["sequence"]
    sizes = sorted(sequence.block_sizes)
    with pgtrigger.ignore("randomization.Slot:sealed_no_update"):
        unused = Slot.objects.filter(pk__in=world["unused"])
        by_stratum: dict[str, list[Slot]] = {}
        for slot in unused.order_by("stratum", "position"):
            by_stratum.setdefault(slot.stratum, []).append(slot)
        # Out of the way first (positions are unique per stratum), then into place.
        unused.update(position=models.F("position") + 100_000)
        for slots in by_stratum.values():
            positions = [s.position for s in slots]
            for slot, position in zip(slots, reversed(positions), strict=True):
                other_size = next((b for b in sizes if b != slot.block_size), slot.block_size + 2)
                Slot.objects.filter(pk=slot.pk).update(
                    position=position, block=slot.block + 1000, block_size=other_size
                )
    for stratum in Stratum.objects.filter(pk__in=world["strata"]):
        allocated = stratum.sequence.allocations.filter(stratum=stratum.key).exists()
        used = stratum.used if allocated else stratum.used + 2
        if stratum.sequence_id == world["minimisation"].pk:
            used = stratum.used + 5
        Stratum.objects.filter(pk=stratum.pk).update(size=stratum.size + 4, used=used)


SWEPT_ROLES = [
    "nurse_a",
    "investigator_a",
    "dm_a",
    "monitor",
    "statistician",
    "administrator",
    "nurse_b",
]


@pytest.fixture
def dm_a(make_user, site_a):
    """A data manager / monitor of site A only."""
    return make_user("data_manager", site_a, username="dm_a")


@pytest.mark.parametrize("who", SWEPT_ROLES)
def test_no_response_depends_on_the_structure_of_the_list(request, client, world, who):
    """Permuting block sizes, blocks and positions of unused slots and the strata
    counters changes no response for any role but the sequence holder."""
    user = request.getfixturevalue(who)
    client.force_login(user)
    requests = _requests(world)
    before = _fetch_all(client, requests)
    stratum_events = _events(Stratum).count()
    _permute_structure(world)
    # The permutation is real and in the audit trail (so the audit screens could show it).
    assert _events(Stratum).count() > stratum_events
    assert _events(Slot).filter(pgh_obj_id__in=world["unused"], pgh_label="update").exists()
    after = _fetch_all(client, requests)
    changed = [key for key in before if before[key] != after[key]]
    assert changed == [], f"{who}: responses depend on the list's structure: {changed}"
    # The concealed models' audit screens are closed to this role altogether.
    for method, url, _d in requests:
        if "/audit/randomization.s" in url or "minimisationdecision" in url:
            assert before[(method, url)][0] in (302, 403, 404), (url, before[(method, url)][0])


def _events(model):
    from core.selectors import event_model_for

    return event_model_for(model).objects.all()


def test_positive_control_the_sequence_holder_sees_the_structure(
    client, world, sequence_statistician
):
    """Proves the structure sweep can fail: for the statistician with the permission the
    list page and the audit pages of an unused slot and of the strata change."""
    client.force_login(sequence_statistician)
    seq = world["sequence"].pk
    urls = [
        reverse("randomization:sequence_detail", args=["BLEND", seq]) + "?slots=1",
        f"/audit/randomization.slot/{world['unused'][0]}/",
        f"/audit/randomization.stratum/{world['stratum'].pk}/",
        f"/audit/randomization.stratum/{world['strata'][-1]}/",
        "/audit/?model=randomization.slot",
    ]
    before = {url: client.get(url) for url in urls}
    assert {url: r.status_code for url, r in before.items()} == dict.fromkeys(urls, 200)
    # The minimisation figures are readable to the holder (and to nobody else, above).
    decision = client.get(f"/audit/randomization.minimisationdecision/{world['decision'].pk}/")
    assert decision.status_code == 200
    assert b"imbalance" in decision.content
    _permute_structure(world)
    for url in urls:
        assert _normalise(before[url].content) != _normalise(client.get(url).content), url


@pytest.mark.parametrize("who", SWEPT_ROLES)
def test_no_response_depends_on_an_unused_slot(request, client, world, who):
    user = request.getfixturevalue(who)
    client.force_login(user)
    requests = _requests(world)
    before = _fetch_all(client, requests)
    _flip_unused(world)
    after = _fetch_all(client, requests)
    changed = [key for key in before if before[key] != after[key]]
    assert changed == [], f"{who}: responses depend on unused slots: {changed}"
    # Nothing was written by the POSTs (refusals only) and the seed never appears.
    assert Stratum.objects.get(pk=world["stratum"].pk).used == world["stratum"].used
    seed = world["sequence"].seed.encode()
    fingerprint_only = [k for k, (_s, body) in before.items() if seed in body]
    assert fingerprint_only == []
    # The sequence screens and admin are refused outright.
    for method, url, _d in requests:
        if "/sequences/" in url or "/admin/randomization/s" in url:
            assert before[(method, url)][0] in (302, 403, 404), (url, before[(method, url)][0])


def test_positive_control_the_sequence_holder_sees_the_list(client, world, sequence_statistician):
    """Proves the method above can fail: for the statistician with the permission the full
    list page changes when unused slots change, and shows the seed."""
    client.force_login(sequence_statistician)
    url = (
        reverse("randomization:sequence_detail", args=["BLEND", world["sequence"].pk]) + "?slots=1"
    )
    before = client.get(url)
    assert before.status_code == 200
    assert world["sequence"].seed.encode() in before.content
    _flip_unused(world)
    after = client.get(url)
    assert _normalise(before.content) != _normalise(after.content)


def test_randomise_page_never_names_the_next_arm(client, world, nurse_a):
    """The confirmation page before randomising names no arm at all."""
    client.force_login(nurse_a)
    page = client.get(
        reverse("randomization:randomise", args=["BLEND", world["waiting"].study_number])
    ).content.decode()
    for arm in world["sequence"].trial.arms.all():
        assert arm.name not in page
    assert timezone.now()  # page rendered at all


def test_the_sweep_really_reaches_the_pages(client, world, nurse_a, monitor):
    """The sweep is only meaningful if the pages render: site staff get 200 on every screen
    they may use, and the monitor reaches the audit views of allocations (not those of the
    sequence models, which only the sequence holder reads)."""
    client.force_login(nurse_a)
    statuses = {url: client.get(url).status_code for m, url, _d in _requests(world) if m == "get"}
    ok = [u for u, s in statuses.items() if s == 200]
    assert len(ok) >= 15, statuses
    for url, status in statuses.items():
        if "/sequences/" in url:
            assert status == 403
    client.force_login(monitor)
    assert client.get("/audit/?model=randomization.allocation").status_code == 200
    assert client.get(f"/audit/randomization.allocation/{world['control'].pk}/").status_code == 200
    assert client.get("/audit/?model=randomization.slot").status_code == 404
    assert client.get(f"/audit/randomization.slot/{world['unused'][0]}/").status_code == 404
