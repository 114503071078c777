"""Trial status follows the lifecycle: set-up → recruiting when a production sequence goes
live → closed to recruitment → closed (statistician/administrator, with a reason, audited).
Randomising or screening in a trial that is not recruiting is refused; a test installation
may randomise with its test sequence while the trial is in set-up."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from randomization import lifecycle, services
from randomization.models import Allocation, Screening, Trial
from tests.randomization.conftest import events

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "current,target,production_active,refusal",
    [
        ("recruiting", "recruitment_closed", True, None),
        ("recruitment_closed", "recruiting", True, None),
        ("recruitment_closed", "recruiting", False, "no_active_production_sequence"),
        ("recruitment_closed", "closed", True, None),
        ("setup", "closed", False, None),
        ("setup", "recruiting", True, "recruiting_needs_go_live"),
        ("recruiting", "closed", True, "transition_not_allowed"),
        ("closed", "recruiting", True, "transition_not_allowed"),
        ("closed", "setup", True, "transition_not_allowed"),
        ("recruiting", "recruiting", True, "same_status"),
        ("recruiting", "paused", True, "unknown_status"),
    ],
)
def test_transition_table(current, target, production_active, refusal):
    assert (
        lifecycle.transition_refusal(current, target, production_sequence_active=production_active)
        == refusal
    )


@pytest.mark.parametrize(
    "status,environment,refusal",
    [
        ("recruiting", "production", None),
        ("recruiting", "test", None),
        ("setup", "test", None),
        ("setup", "production", "trial_in_setup"),
        ("recruitment_closed", "test", "trial_closed"),
        ("recruitment_closed", "production", "trial_closed"),
        ("closed", "production", "trial_ended"),
        ("closed", "test", "trial_ended"),
    ],
)
def test_recruitment_table(status, environment, refusal):
    assert lifecycle.recruitment_refusal(status, environment) == refusal


def _status(trial) -> str:
    return Trial.objects.get(pk=trial.pk).status


def test_a_production_sequence_going_live_opens_recruitment(blend, active_sequence, settings):
    active_sequence()  # test sequence: the trial stays in set-up
    assert _status(blend) == "setup"
    settings.RANDOMISATION_ENVIRONMENT = "production"
    active_sequence(environment="production")
    assert _status(blend) == "recruiting"
    event = (
        events(Trial, pgh_obj_id=blend.pk, status="recruiting").select_related("pgh_context").get()
    )
    assert "production sequence go-live" in event.pgh_context.metadata["reason"]


def test_production_installation_refuses_screening_and_randomising_in_setup(
    blend, make_participant, nurse_a, site_a, eligible_answers, settings
):
    settings.RANDOMISATION_ENVIRONMENT = "production"
    participant = make_participant(site_a)
    with pytest.raises(services.TrialNotRecruiting) as exc:
        services.screening_record(
            by=nurse_a,
            trial=blend,
            participant=participant,
            screened_on=timezone.localdate(),
            answers=eligible_answers,
        )
    assert exc.value.reasons == ["trial_in_setup"]
    with pytest.raises(services.TrialNotRecruiting):
        services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    assert Screening.objects.count() == 0 and Allocation.objects.count() == 0


@pytest.fixture
def recruiting(blend, active_sequence, settings):
    settings.RANDOMISATION_ENVIRONMENT = "production"
    active_sequence(environment="production")
    blend.refresh_from_db()
    assert blend.status == "recruiting"
    return blend


def test_closing_recruitment_refuses_randomising_and_is_audited(
    recruiting, statistician, eligible_participant, nurse_a, site_a
):
    participant = eligible_participant(site_a, nurse_a)
    services.trial_status_change(
        by=statistician, trial=recruiting, status="recruitment_closed", reason="target reached"
    )
    assert _status(recruiting) == "recruitment_closed"
    event = (
        events(Trial, pgh_obj_id=recruiting.pk, status="recruitment_closed")
        .select_related("pgh_context")
        .get()
    )
    assert "target reached" in event.pgh_context.metadata["reason"]
    # The caller's object still says "recruiting": the service reads the status itself.
    with pytest.raises(services.TrialNotRecruiting) as exc:
        services.allocation_randomise(by=nurse_a, trial=recruiting, participant=participant)
    assert exc.value.reasons == ["trial_closed"]
    assert Allocation.objects.count() == 0
    # Reopened (a production sequence is live), then randomising works again.
    services.trial_status_change(
        by=statistician, trial=recruiting, status="recruiting", reason="DSMB: resume"
    )
    assert services.allocation_randomise(
        by=nurse_a, trial=recruiting, participant=participant
    ).created
    services.trial_status_change(
        by=statistician, trial=recruiting, status="recruitment_closed", reason="target reached"
    )
    services.trial_status_change(
        by=statistician, trial=recruiting, status="closed", reason="follow-up complete"
    )
    assert _status(recruiting) == "closed"
    with pytest.raises(services.TrialStatusError) as exc:
        services.trial_status_change(
            by=statistician, trial=recruiting, status="recruiting", reason="again"
        )
    assert exc.value.reasons == ["transition_not_allowed"]


def test_status_changes_need_the_role_a_reason_and_the_lifecycle(
    recruiting, nurse_a, monitor, administrator, statistician
):
    n_events = events(Trial).count()
    for who in (nurse_a, monitor):
        with pytest.raises(services.NotAllowed):
            services.trial_status_change(
                by=who, trial=recruiting, status="recruitment_closed", reason="x"
            )
    with pytest.raises(ValidationError) as exc:
        services.trial_status_change(
            by=statistician, trial=recruiting, status="recruitment_closed", reason=" "
        )
    assert "reason" in exc.value.message_dict
    with pytest.raises(services.TrialStatusError) as exc:
        services.trial_status_change(by=statistician, trial=recruiting, status="setup", reason="x")
    assert _status(recruiting) == "recruiting" and events(Trial).count() == n_events
    services.trial_status_change(
        by=administrator, trial=recruiting, status="recruitment_closed", reason="sponsor"
    )
    assert _status(recruiting) == "recruitment_closed"


def test_recruitment_cannot_be_opened_by_hand(blend, statistician):
    with pytest.raises(services.TrialStatusError) as exc:
        services.trial_status_change(
            by=statistician, trial=blend, status="recruiting", reason="let's go"
        )
    assert exc.value.reasons == ["recruiting_needs_go_live"] and _status(blend) == "setup"


def test_overview_shows_the_status_and_the_status_screen_changes_it(
    client, recruiting, statistician, nurse_a, administrator
):
    client.force_login(nurse_a)
    html = client.get(reverse("randomization:trial_overview", args=["BLEND"])).content.decode()
    assert 'data-testid="trial-status" data-status="recruiting"' in html
    assert 'data-testid="trial-status-link"' not in html
    url = reverse("randomization:trial_status", args=["BLEND"])
    assert client.post(url, {"status": "recruitment_closed", "reason": "x"}).status_code in (
        403,
        404,
    )
    assert _status(recruiting) == "recruiting"
    client.force_login(statistician)
    assert client.get(url).status_code == 200
    response = client.post(url, {"status": "recruitment_closed", "reason": "target reached"})
    assert response.status_code == 302 and _status(recruiting) == "recruitment_closed"
    client.force_login(administrator)
    page = client.get(url)
    assert page.status_code == 200 and b'data-status="recruitment_closed"' in page.content


def test_participant_page_offers_screening_only_while_the_trial_recruits(
    recruiting, statistician, make_participant, nurse_a, site_a
):
    from randomization.selectors import participant_panel

    participant = make_participant(site_a)
    panel = participant_panel(user=nurse_a, participant=participant)
    assert [t.code for t in panel["context"]["trials"]] == ["BLEND"]
    services.trial_status_change(
        by=statistician, trial=recruiting, status="recruitment_closed", reason="target reached"
    )
    panel = participant_panel(user=nurse_a, participant=participant)
    assert panel["context"]["trials"] == []
