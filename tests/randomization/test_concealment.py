"""Concealment: as nurse, investigator, monitor, a statistician without the sequence
permission and an administrator, no page, API, admin view, audit view or error reveals an
unused slot or the next arm.

Method: request every randomization URL (and the admin and audit views of the sequence
models), then switch the arm of every unused slot in the database and request them all
again. If any response depends on an unused slot, the two rounds differ. The statistician
holding the permission is the positive control: their sequence page does change.
"""

from __future__ import annotations

import re

import pgtrigger
import pytest
from django.urls import reverse
from django.utils import timezone

from randomization.models import Slot, Stratum

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
):
    """A live trial: a few allocations, one eligible not yet randomised, one ineligible,
    an open correction."""
    from randomization.services import correction_propose

    sequence = active_sequence(slots_per_stratum=20)
    control = randomised(site_a, nurse_a, arm="control")
    intervention = randomised(site_a, nurse_a, arm="intervention")
    waiting = eligible_participant(site_a, nurse_a)
    ineligible = make_participant(site_a)
    screen(nurse_a, ineligible, multiple_myeloma="yes")
    correction_propose(by=investigator_a, allocation=intervention, reason="check")
    unused = Slot.objects.filter(sequence=sequence, allocation__isnull=True).order_by("pk")
    return {
        "sequence": sequence,
        "control": control,
        "intervention": intervention,
        "waiting": waiting,
        "ineligible": ineligible,
        "unused": list(unused.values_list("pk", flat=True)),
        "stratum": Stratum.objects.get(sequence=sequence, key="site=site-a"),
    }


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
        "/admin/pghistory/",
        "/admin/",
        # The cohort participant pages carry this app's panel and banner.
        f"/cohort/{waiting}/",
        f"/cohort/{world['control'].participant.study_number}/",
        "/cohort/",
    ] + [f"/audit/randomization.slot/{pk}/" for pk in world["unused"][:5]]
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


@pytest.mark.parametrize(
    "who", ["nurse_a", "investigator_a", "monitor", "statistician", "administrator", "nurse_b"]
)
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
    they may use, and the monitor reaches the audit views of the sequence models."""
    client.force_login(nurse_a)
    statuses = {url: client.get(url).status_code for m, url, _d in _requests(world) if m == "get"}
    ok = [u for u, s in statuses.items() if s == 200]
    assert len(ok) >= 15, statuses
    for url, status in statuses.items():
        if "/sequences/" in url:
            assert status == 403
    client.force_login(monitor)
    assert client.get("/audit/?model=randomization.slot").status_code == 200
    assert client.get(f"/audit/randomization.slot/{world['unused'][0]}/").status_code == 200
