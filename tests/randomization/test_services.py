"""Services: screening, randomisation and its refusals, corrections, TwiCs, day 0 — asserting
on the database and the audit trail."""

from __future__ import annotations

from datetime import time, timedelta

import pghistory
import pgtrigger
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from core.selectors import audit_trail
from randomization import selectors, services
from randomization.models import (
    Allocation,
    AllocationCorrection,
    InterventionOffer,
    MinimisationDecision,
    Screening,
    ScreeningAnswer,
    Sequence,
    Slot,
    Stratum,
)
from tests import factories
from tests.randomization.conftest import events

pytestmark = pytest.mark.django_db


# --- screening ---------------------------------------------------------------------------------
def test_eligible_screening_records_every_answer_and_the_verdict(
    blend, make_participant, screen, nurse_a, site_a, criteria_codes
):
    participant = make_participant(site_a)
    with pghistory.context(user=nurse_a.pk):
        screening = screen(nurse_a, participant)
    screening.refresh_from_db()
    assert screening.verdict == "eligible" and screening.reasons == []
    assert screening.site_id == site_a.pk and screening.protocol_version == "1.0"
    assert ScreeningAnswer.objects.filter(screening=screening).count() == len(criteria_codes) == 14
    trail = audit_trail(model=Screening, pk=screening.pk)
    assert trail[0].label == "insert" and trail[0].user_id == nurse_a.pk
    assert events(ScreeningAnswer, screening_id=screening.pk).count() == 14


def test_ineligible_screening_keeps_machine_readable_reasons(
    blend, make_participant, screen, nurse_a, site_a
):
    participant = factories.participant_without_identity(  # age unknown: answered "unknown"
        site=site_a, consents={"cohort": True, "randomisation_offer": True}
    )
    screening = screen(nurse_a, participant, multiple_myeloma="yes", age_over_18="unknown")
    assert screening.verdict == "ineligible"
    assert screening.reasons == [
        "inclusion_not_met:present_randomisation_consent",
        "inclusion_unknown:age_over_18",
        "exclusion_met:multiple_myeloma",
        "consent_control_uninformed_missing",
    ]


def test_rescreening_adds_a_record_and_keeps_the_old_one(
    blend, make_participant, screen, nurse_a, site_a
):
    participant = make_participant(site_a)
    first = screen(nurse_a, participant, fit_for_radiosurgery="unknown")
    second = screen(nurse_a, participant)
    assert Screening.objects.filter(participant=participant).count() == 2
    first.refresh_from_db()
    assert first.verdict == "ineligible" and second.verdict == "eligible"
    assert selectors.latest_screening(trial=blend, participant=participant) == second


def test_incomplete_or_invalid_screening_writes_nothing(
    blend, make_participant, nurse_a, site_a, eligible_answers
):
    participant = make_participant(site_a)
    answers = dict(eligible_answers)
    answers.pop("fit_for_radiosurgery")
    answers["no_such_criterion"] = "yes"
    with pytest.raises(ValidationError) as exc:
        services.screening_record(
            by=nurse_a,
            trial=blend,
            participant=participant,
            screened_on=timezone.localdate(),
            answers=answers,
        )
    assert set(exc.value.message_dict) == {"answers", "fit_for_radiosurgery"}
    with pytest.raises(ValidationError) as exc:
        services.screening_record(
            by=nurse_a,
            trial=blend,
            participant=participant,
            screened_on=timezone.localdate() + timedelta(days=1),
            answers=eligible_answers,
        )
    assert "screened_on" in exc.value.message_dict
    assert Screening.objects.count() == 0 and ScreeningAnswer.objects.count() == 0


@pytest.mark.parametrize("who", ["nurse_b", "monitor", "statistician", "investigator_b"])
def test_screening_at_another_site_or_without_data_entry_role_is_refused(
    request, who, blend, make_participant, site_a, eligible_answers
):
    user = request.getfixturevalue(who)
    participant = make_participant(site_a)
    with pytest.raises(services.NotAllowed):
        services.screening_record(
            by=user,
            trial=blend,
            participant=participant,
            screened_on=timezone.localdate(),
            answers=eligible_answers,
        )
    assert Screening.objects.count() == 0


# --- sequences -----------------------------------------------------------------------------------
def test_generated_sequence_is_sealed_and_its_fingerprint_recomputes_from_the_slots(
    blend, sequence_statistician, site_a, site_b
):
    sequence = services.sequence_generate(
        by=sequence_statistician,
        trial=blend,
        method="permuted_blocks",
        environment="test",
        factors=["site"],
        block_sizes=[4, 6],
        slots_per_stratum=40,
    )
    assert sequence.status == "generated" and len(sequence.seed) == 64
    strata = {s.key: s for s in Stratum.objects.filter(sequence=sequence)}
    assert set(strata) == {"site=site-a", "site=site-b"}
    for key, stratum in strata.items():
        assert stratum.size >= 40 and stratum.used == 0
        assert Slot.objects.filter(sequence=sequence, stratum=key).count() == stratum.size
    # Recomputed independently from the stored rows with hashlib, not through the service.
    import hashlib
    import json

    rows = sorted(
        [s, p, a]
        for s, p, a in Slot.objects.filter(sequence=sequence).values_list(
            "stratum", "position", "arm__code"
        )
    )
    doc = {
        "method": "permuted_blocks",
        "arms": [["intervention", 1], ["control", 1]],
        "block_sizes": [4, 6],
        "factors": ["site"],
        "probability": "0.800",
        "seed": sequence.seed,
        "slots": rows,
    }
    canonical = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    assert hashlib.sha256(canonical).hexdigest() == sequence.fingerprint
    assert services.sequence_fingerprint_recompute(sequence=sequence) == sequence.fingerprint
    # The seed never enters the audit trail, nor do the slots' arms.
    event = events(Sequence, pgh_obj_id=sequence.pk).first()
    assert not hasattr(event, "seed")
    assert not hasattr(events(Slot).first(), "arm_id")


def test_slots_cannot_be_changed_and_a_tampered_list_cannot_go_live(
    blend, sequence_statistician, site_a
):
    sequence = services.sequence_generate(
        by=sequence_statistician,
        trial=blend,
        method="permuted_blocks",
        environment="test",
        factors=["site"],
        block_sizes=[4],
        slots_per_stratum=8,
    )
    slot = Slot.objects.filter(sequence=sequence).first()
    other_arm = blend.arms.exclude(pk=slot.arm_id).get()
    from django.db import InternalError, transaction

    with pytest.raises(InternalError), transaction.atomic():
        Slot.objects.filter(pk=slot.pk).update(arm=other_arm)
    # Someone with the power to switch the guard off could still change it: the fingerprint tells.
    with pgtrigger.ignore("randomization.Slot:sealed_no_update"):
        Slot.objects.filter(pk=slot.pk).update(arm=other_arm)
    assert services.sequence_fingerprint_recompute(sequence=sequence) != sequence.fingerprint
    with pytest.raises(services.SequenceError):
        services.sequence_activate(by=sequence_statistician, sequence=sequence)
    sequence.refresh_from_db()
    assert sequence.status == "generated"


@pytest.mark.parametrize("who", ["statistician", "nurse_a", "monitor", "administrator"])
def test_only_a_statistician_with_the_sequence_permission_generates(request, who, blend, site_a):
    user = request.getfixturevalue(who)
    with pytest.raises(services.NotAllowed):
        services.sequence_generate(
            by=user,
            trial=blend,
            method="permuted_blocks",
            environment="test",
            factors=["site"],
            block_sizes=[4],
        )
    assert Sequence.objects.count() == 0


def test_invalid_sequence_configuration_gives_field_errors(blend, sequence_statistician, site_a):
    with pytest.raises(ValidationError) as exc:
        services.sequence_generate(
            by=sequence_statistician,
            trial=blend,
            method="permuted_blocks",
            environment="staging",
            factors=["shoe_size"],
            block_sizes=[3],
            probability="0.4",
        )
    assert set(exc.value.message_dict) >= {"environment", "factors", "block_sizes", "probability"}
    assert Sequence.objects.count() == 0


def test_one_active_sequence_per_environment(active_sequence, sequence_statistician, blend):
    first = active_sequence()
    second = services.sequence_generate(
        by=sequence_statistician,
        trial=blend,
        method="permuted_blocks",
        environment="test",
        factors=["site"],
        block_sizes=[4],
    )
    with pytest.raises(services.SequenceError):
        services.sequence_activate(by=sequence_statistician, sequence=second)
    services.sequence_retire(by=sequence_statistician, sequence=first, reason="replaced")
    services.sequence_activate(by=sequence_statistician, sequence=second)
    # A production sequence may be active beside the test one; this system uses "test".
    prod = services.sequence_generate(
        by=sequence_statistician,
        trial=blend,
        method="permuted_blocks",
        environment="production",
        factors=["site"],
        block_sizes=[4],
    )
    services.sequence_activate(by=sequence_statistician, sequence=prod)
    assert selectors.current_environment() == "test"


@pytest.mark.parametrize(
    "configured,debug,expected",
    [
        ("", True, "test"),
        ("", False, "production"),
        ("production", True, "production"),
        ("test", False, "test"),
        ("bogus", False, "production"),
    ],
)
def test_environment_comes_from_the_setting_or_debug(settings, configured, debug, expected):
    settings.RANDOMISATION_ENVIRONMENT = configured
    settings.DEBUG = debug
    assert selectors.current_environment() == expected


# --- randomisation -------------------------------------------------------------------------------
def test_randomise_takes_the_next_slot_and_numbers_the_trial(
    active_sequence, eligible_participant, nurse_a, site_a, blend
):
    sequence = active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    with pghistory.context(user=nurse_a.pk):
        result = services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    allocation = result.allocation
    assert result.created
    first_slot = Slot.objects.get(sequence=sequence, stratum="site=site-a", position=1)
    assert allocation.slot_id == first_slot.pk and allocation.arm_id == first_slot.arm_id
    assert allocation.trial_number == "BLEND-001"
    assert allocation.randomised_by == nurse_a and allocation.status == "active"
    assert Stratum.objects.get(sequence=sequence, key="site=site-a").used == 1
    trail = audit_trail(model=Allocation, pk=allocation.pk)
    assert [e.label for e in trail] == ["insert"]
    assert trail[0].user_id == nurse_a.pk and trail[0].reason == "randomisation"


def test_randomise_again_returns_the_same_allocation_and_writes_nothing(
    active_sequence, eligible_participant, nurse_a, investigator_a, site_a, blend
):
    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    first = services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    n_events = events(Allocation).count()
    again = services.allocation_randomise(by=investigator_a, trial=blend, participant=participant)
    assert not again.created and again.allocation.pk == first.allocation.pk
    assert Allocation.objects.count() == 1 and events(Allocation).count() == n_events


def test_trial_numbers_run_across_strata_and_slots_stay_contiguous_per_stratum(
    active_sequence, eligible_participant, nurse_a, nurse_b, site_a, site_b, blend
):
    sequence = active_sequence()
    numbers = []
    for site, nurse in [(site_a, nurse_a), (site_b, nurse_b), (site_a, nurse_a), (site_b, nurse_b)]:
        p = eligible_participant(site, nurse)
        numbers.append(
            services.allocation_randomise(by=nurse, trial=blend, participant=p).allocation
        )
    assert [a.trial_number for a in numbers] == ["BLEND-001", "BLEND-002", "BLEND-003", "BLEND-004"]
    for key in ("site=site-a", "site=site-b"):
        used = sorted(
            Allocation.objects.filter(sequence=sequence, stratum=key).values_list(
                "slot__position", flat=True
            )
        )
        assert used == [1, 2]


def _nothing_written(before):
    assert Allocation.objects.count() == before["allocations"]
    assert events(Allocation).count() == before["events"]
    assert list(Stratum.objects.order_by("pk").values_list("used", flat=True)) == before["used"]


def _snapshot():
    return {
        "allocations": Allocation.objects.count(),
        "events": events(Allocation).count(),
        "used": list(Stratum.objects.order_by("pk").values_list("used", flat=True)),
    }


def test_refused_when_not_screened_or_not_eligible(
    active_sequence, make_participant, screen, nurse_a, site_a, blend
):
    active_sequence()
    participant = make_participant(site_a)
    before = _snapshot()
    with pytest.raises(services.NotEligible) as exc:
        services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    assert exc.value.reasons == ["not_screened"]
    screen(nurse_a, participant, life_expectancy_under_3_months="yes")
    with pytest.raises(services.NotEligible) as exc:
        services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    assert exc.value.reasons == ["not_eligible", "exclusion_met:life_expectancy_under_3_months"]
    # An eligible screening followed by an ineligible re-screening: the latest one counts.
    screen(nurse_a, participant)
    screen(nurse_a, participant, fit_for_radiosurgery="no")
    with pytest.raises(services.NotEligible):
        services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    _nothing_written(before)


def test_refused_when_consent_was_withdrawn_after_an_eligible_screening(
    active_sequence, eligible_participant, nurse_a, site_a, blend
):
    from cohort.models import Withdrawal

    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    Withdrawal.objects.create(
        participant=participant,
        scope="trial",
        effective_on=timezone.localdate(),
        recorded_by=nurse_a,
    )
    before = _snapshot()
    with pytest.raises(services.NoRandomisationConsent) as exc:
        services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    assert exc.value.reasons == ["withdrawn_trial"]
    _nothing_written(before)


def test_refused_when_the_participant_died(
    active_sequence, eligible_participant, nurse_a, site_a, blend
):
    from cohort.models import Death

    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    Death.objects.create(
        participant=participant,
        died_on=timezone.localdate(),
        source="hospital_record",
        recorded_by=nurse_a,
    )
    before = _snapshot()
    with pytest.raises(services.NoRandomisationConsent) as exc:
        services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    assert "deceased" in exc.value.reasons
    _nothing_written(before)


def test_refused_when_randomised_in_error_and_corrected(
    active_sequence, randomised, investigator_a, statistician, nurse_a, site_a, blend
):
    active_sequence()
    allocation = randomised(site_a, nurse_a)
    correction = services.correction_propose(
        by=investigator_a, allocation=allocation, reason="randomised before the MRI was read"
    )
    services.correction_decide(by=statistician, correction=correction, confirm=True)
    before = _snapshot()
    with pytest.raises(services.AllocationCorrected) as exc:
        services.allocation_randomise(by=nurse_a, trial=blend, participant=allocation.participant)
    assert exc.value.reasons == ["corrected_in_error"]
    _nothing_written(before)


def test_refused_without_an_active_sequence_and_the_message_says_nothing_about_arms(
    blend, eligible_participant, nurse_a, site_a, sequence_statistician
):
    participant = eligible_participant(site_a, nurse_a)
    # Generated but not activated; and an active *production* list does not count here.
    services.sequence_generate(
        by=sequence_statistician,
        trial=blend,
        method="permuted_blocks",
        environment="test",
        factors=["site"],
        block_sizes=[4],
    )
    prod = services.sequence_generate(
        by=sequence_statistician,
        trial=blend,
        method="permuted_blocks",
        environment="production",
        factors=["site"],
        block_sizes=[4],
    )
    services.sequence_activate(by=sequence_statistician, sequence=prod)
    before = _snapshot()
    with pytest.raises(services.RandomisationUnavailable) as exc:
        services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    assert exc.value.reasons == ["no_active_sequence"]
    text = str(exc.value.message).lower()
    assert "intervention" not in text and "control" not in text
    _nothing_written(before)


def test_refused_when_the_stratum_list_is_used_up(
    active_sequence, eligible_participant, nurse_a, site_a, blend
):
    active_sequence(block_sizes=[2], slots_per_stratum=2)
    for _ in range(2):
        services.allocation_randomise(
            by=nurse_a, trial=blend, participant=eligible_participant(site_a, nurse_a)
        )
    before = _snapshot()
    with pytest.raises(services.RandomisationUnavailable) as exc:
        services.allocation_randomise(
            by=nurse_a, trial=blend, participant=eligible_participant(site_a, nurse_a)
        )
    assert exc.value.reasons == ["sequence_exhausted"]
    _nothing_written(before)


@pytest.mark.parametrize("who", ["nurse_b", "monitor", "statistician", "investigator_b"])
def test_randomising_someone_elses_participant_is_refused(
    request, who, active_sequence, eligible_participant, nurse_a, site_a, blend
):
    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    with pytest.raises(services.NotAllowed):
        services.allocation_randomise(
            by=request.getfixturevalue(who), trial=blend, participant=participant
        )
    assert Allocation.objects.count() == 0


def test_unique_constraints_back_up_the_lock(
    active_sequence, randomised, eligible_participant, nurse_a, site_a, blend
):
    """Even bypassing the service, the database refuses a second allocation of a participant,
    a second use of a slot, and a repeated trial number."""
    from django.db import IntegrityError, transaction

    active_sequence()
    a = randomised(site_a, nurse_a)
    other = eligible_participant(site_a, nurse_a)
    base = {
        "trial": blend,
        "site": site_a,
        "arm": a.arm,
        "sequence": a.sequence,
        "stratum": a.stratum,
        "screening": a.screening,
        "randomised_by": nurse_a,
    }
    for override in (
        {"participant": a.participant, "trial_number": "BLEND-900"},
        {"participant": other, "trial_number": "BLEND-901", "slot": a.slot},
        {"participant": other, "trial_number": a.trial_number},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            Allocation.objects.create(**{**base, **override})


def test_minimisation_allocates_and_stores_the_imbalance_figures(
    active_sequence, eligible_participant, nurse_a, site_a, blend
):
    sequence = active_sequence(method="minimisation", factors=["site", "sex"], block_sizes=[])
    allocations = []
    for i in range(6):
        p = eligible_participant(site_a, nurse_a, sex="female" if i % 2 else "male")
        allocations.append(
            services.allocation_randomise(by=nurse_a, trial=blend, participant=p).allocation
        )
    decisions = list(MinimisationDecision.objects.order_by("allocation__trial_number"))
    assert len(decisions) == 6
    for allocation, decision in zip(allocations, decisions, strict=True):
        assert decision.allocation_id == allocation.pk
        assert decision.chosen == allocation.arm.code
        assert set(decision.imbalance) == {"intervention", "control"}
        assert decision.levels["site"] == "site-a"
        assert 0 <= decision.draw < 1
        assert allocation.slot_id is None and allocation.sequence_id == sequence.pk
    # The first participant: nothing before, both arms tie.
    assert decisions[0].preferred == ["intervention", "control"]
    assert Stratum.objects.get(sequence=sequence).used == 6
    # Reproducible: the stored draw is the seed's draw for that index.
    from randomization.sequences import minimisation_draw

    assert decisions[3].draw == minimisation_draw(sequence.seed, 3)


# --- corrections ---------------------------------------------------------------------------------
def test_two_person_correction_marks_the_allocation_and_changes_nothing_else(
    active_sequence, randomised, investigator_a, statistician, nurse_a, site_a
):
    active_sequence()
    allocation = randomised(site_a, nurse_a)
    before = {
        f: getattr(allocation, f)
        for f in ("arm_id", "trial_number", "slot_id", "randomised_at", "randomised_by_id")
    }
    with pghistory.context(user=investigator_a.pk):
        correction = services.correction_propose(
            by=investigator_a, allocation=allocation, reason="age under 18 after all"
        )
    assert correction.proposed_role == "investigator"
    with pytest.raises(services.CorrectionError) as exc:
        services.correction_decide(by=investigator_a, correction=correction, confirm=True)
    assert exc.value.reasons == ["same_person"]
    with pghistory.context(user=statistician.pk):
        services.correction_decide(by=statistician, correction=correction, confirm=True)
    allocation.refresh_from_db()
    assert allocation.status == "corrected_in_error"
    assert {f: getattr(allocation, f) for f in before} == before
    trail = audit_trail(model=Allocation, pk=allocation.pk)
    assert trail[-1].changes == {"status": ("active", "corrected_in_error")}
    assert "age under 18" in trail[-1].reason and trail[-1].user_id == statistician.pk
    correction.refresh_from_db()
    assert correction.status == "confirmed" and correction.decided_by == statistician
    assert correction.decided_role == "statistician"
    # The slot stays used: never reallocated.
    assert Slot.objects.get(pk=allocation.slot_id).allocation == allocation


def test_correction_needs_a_different_role_to_confirm(
    active_sequence, randomised, investigator_a, make_user, nurse_a, site_a
):
    active_sequence()
    allocation = randomised(site_a, nurse_a)
    second_investigator = make_user("investigator", site_a, username="pi2")
    correction = services.correction_propose(by=investigator_a, allocation=allocation, reason="x")
    with pytest.raises(services.CorrectionError) as exc:
        services.correction_decide(by=second_investigator, correction=correction, confirm=True)
    assert exc.value.reasons == ["same_role"]
    allocation.refresh_from_db()
    assert allocation.status == "active"


@pytest.mark.parametrize("who", ["nurse_a", "monitor", "investigator_b", "administrator"])
def test_correction_proposal_refused_for_other_roles(
    request, who, active_sequence, randomised, nurse_a, site_a
):
    active_sequence()
    allocation = randomised(site_a, nurse_a)
    with pytest.raises(services.NotAllowed):
        services.correction_propose(
            by=request.getfixturevalue(who), allocation=allocation, reason="x"
        )
    assert AllocationCorrection.objects.count() == 0


def test_rejected_correction_needs_a_note_and_leaves_the_allocation_active(
    active_sequence, randomised, investigator_a, statistician, nurse_a, site_a
):
    active_sequence()
    allocation = randomised(site_a, nurse_a)
    correction = services.correction_propose(by=statistician, allocation=allocation, reason="x")
    with pytest.raises(ValidationError):
        services.correction_decide(by=investigator_a, correction=correction, confirm=False)
    services.correction_decide(
        by=investigator_a, correction=correction, confirm=False, note="was eligible"
    )
    allocation.refresh_from_db()
    assert allocation.status == "active"
    # A new proposal is possible after a rejection.
    services.correction_propose(by=statistician, allocation=allocation, reason="again")


# --- TwiCs -----------------------------------------------------------------------------------------
def test_offer_accept_needs_trial_consent_and_refusal_keeps_the_arm(
    active_sequence, randomised, nurse_a, site_a, trial_form
):
    active_sequence()
    allocation = randomised(site_a, nurse_a, arm="intervention")
    today = timezone.localdate()
    with pytest.raises(ValidationError) as exc:
        services.offer_decision_record(
            by=nurse_a,
            allocation=allocation,
            offered_on=today,
            decision="accepted",
            decided_on=today,
        )
    assert set(exc.value.message_dict) == {"consent_form_version", "consent_date"}
    assert InterventionOffer.objects.count() == 0
    offer = services.offer_decision_record(
        by=nurse_a,
        allocation=allocation,
        offered_on=today,
        decision="accepted",
        decided_on=today,
        consent_form_version=trial_form,
        consent_date=today,
    )
    assert offer.decision == "accepted" and offer.offered_by == nurse_a
    # Changing a recorded decision needs a reason; the refusal needs its own reason.
    with pytest.raises(ValidationError) as exc:
        services.offer_decision_record(
            by=nurse_a,
            allocation=allocation,
            offered_on=today,
            decision="refused",
            decided_on=today,
            refusal_reason="changed mind",
        )
    assert "reason" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.offer_decision_record(
            by=nurse_a,
            allocation=allocation,
            offered_on=today,
            decision="refused",
            decided_on=today,
            reason="patient called back",
        )
    assert "refusal_reason" in exc.value.message_dict
    services.offer_decision_record(
        by=nurse_a,
        allocation=allocation,
        offered_on=today,
        decision="refused",
        decided_on=today,
        refusal_reason="fears two procedures in one day",
        reason="patient called back",
    )
    offer.refresh_from_db()
    allocation.refresh_from_db()
    assert offer.decision == "refused" and offer.consent_form_version is None
    assert allocation.arm.code == "intervention" and allocation.status == "active"
    trail = audit_trail(model=InterventionOffer, pk=offer.pk)
    assert trail[-1].changes["decision"] == ("accepted", "refused")
    assert trail[-1].reason == "patient called back"


def test_control_participants_are_not_offered_and_disclosure_is_a_deviation(
    active_sequence, randomised, nurse_a, site_a
):
    from randomization.models import ControlDisclosure
    from randomization.selectors import is_not_informed

    active_sequence()
    control = randomised(site_a, nurse_a, arm="control")
    today = timezone.localdate()
    with pytest.raises(services.OfferError) as exc:
        services.offer_decision_record(
            by=nurse_a, allocation=control, offered_on=today, decision="pending"
        )
    assert exc.value.reasons == ["not_intervention_arm"]
    assert is_not_informed(control.participant)
    d = services.disclosure_record(
        by=nurse_a, allocation=control, disclosed_on=today, description="letter named the trial"
    )
    assert ControlDisclosure.objects.get().pk == d.pk
    intervention = randomised(site_a, nurse_a, arm="intervention")
    assert not is_not_informed(intervention.participant)
    with pytest.raises(services.DisclosureError):
        services.disclosure_record(
            by=nurse_a, allocation=intervention, disclosed_on=today, description="x"
        )


def test_treatment_start_anchors_the_schedule_planned_then_actual(
    active_sequence, randomised, nurse_a, site_a, monkeypatch
):
    from core import hooks

    calls = []
    # day 0 reaches the schedule through the treatment_started hook (crf subscribes)
    monkeypatch.setattr(hooks.treatment_started, "_subscribers", [lambda **kw: calls.append(kw)])
    active_sequence()
    allocation = randomised(site_a, nurse_a)
    today = timezone.localdate()
    services.treatment_start_set(
        by=nurse_a, allocation=allocation, planned=today + timedelta(days=3)
    )
    assert calls[-1]["day0"] == today + timedelta(days=3) and calls[-1]["is_actual"] is False
    assert (
        calls[-1]["participant"] == allocation.participant
        and calls[-1]["trial"] == allocation.trial
    )
    with pytest.raises(ValidationError) as exc:
        services.treatment_start_set(
            by=nurse_a, allocation=allocation, planned=today + timedelta(days=5)
        )
    assert "reason" in exc.value.message_dict
    services.treatment_start_set(by=nurse_a, allocation=allocation, actual=today)
    assert calls[-1]["day0"] == today and calls[-1]["is_actual"] is True
    allocation.refresh_from_db()
    assert allocation.treatment_start_planned == today + timedelta(days=3)
    assert allocation.treatment_start_actual == today
    assert len(calls) == 2
    with pytest.raises(ValidationError) as exc:
        services.treatment_start_set(
            by=nurse_a, allocation=allocation, actual=today + timedelta(days=1), reason="typo"
        )
    assert "actual" in exc.value.message_dict
    with pytest.raises(ValidationError):
        services.treatment_start_set(
            by=nurse_a, allocation=allocation, planned=today - timedelta(days=30), reason="x"
        )
    assert len(calls) == 2


def test_treatment_start_rolls_back_when_the_schedule_fails(
    active_sequence, randomised, nurse_a, site_a, monkeypatch
):
    from core import hooks

    def broken(**kw):
        raise RuntimeError("schedule down")

    monkeypatch.setattr(hooks.treatment_started, "_subscribers", [broken])
    active_sequence()
    allocation = randomised(site_a, nurse_a)
    with pytest.raises(RuntimeError):
        services.treatment_start_set(
            by=nurse_a, allocation=allocation, planned=timezone.localdate()
        )
    allocation.refresh_from_db()
    assert allocation.treatment_start_planned is None


def test_participant_panel_shows_the_banner_for_controls_only_to_readers(
    active_sequence, randomised, nurse_a, nurse_b, site_a
):
    from randomization.selectors import participant_panel

    active_sequence()
    control = randomised(site_a, nurse_a, arm="control")
    panel = participant_panel(user=nurse_a, participant=control.participant)
    assert panel["banner"] == "not_informed"
    assert panel["template"] == "randomization/_participant_panel.html"
    assert any(control.trial_number in entry["text"] for entry in panel["timeline"])
    assert all(timezone.is_aware(entry["recorded_at"]) for entry in panel["timeline"])
    assert participant_panel(user=nurse_b, participant=control.participant) is None


def test_sql_count_of_randomise_is_bounded(
    active_sequence, eligible_participant, nurse_a, site_a, blend, django_assert_max_num_queries
):
    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    with django_assert_max_num_queries(30):
        services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    assert connection.queries_log is not None


def test_refused_after_a_protocol_change_until_screened_again(
    active_sequence, eligible_participant, nurse_a, site_a, blend
):
    from randomization.models import Criterion

    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    for c in Criterion.objects.filter(trial=blend, protocol_version="1.0"):
        Criterion.objects.create(
            trial=blend,
            protocol_version="2.0",
            kind=c.kind,
            code=c.code,
            text_nl=c.text_nl,
            text_en=c.text_en,
            order=c.order,
        )
    blend.protocol_version = "2.0"
    blend.save()
    with pytest.raises(services.NotEligible) as exc:
        services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    assert exc.value.reasons == ["screening_outdated_protocol"]
    assert Allocation.objects.count() == 0
    screening = services.screening_record(
        by=nurse_a,
        trial=blend,
        participant=participant,
        screened_on=timezone.localdate(),
        answers={
            c.code: ("yes" if c.kind == "inclusion" else "no")
            for c in Criterion.objects.filter(protocol_version="2.0")
        },
    )
    assert screening.protocol_version == "2.0" and screening.is_eligible
    assert services.allocation_randomise(by=nurse_a, trial=blend, participant=participant).created


def test_refused_when_the_trial_is_closed(
    active_sequence, eligible_participant, nurse_a, site_a, blend, eligible_answers
):
    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    blend.status = "closed"
    blend.save()
    with pytest.raises(services.TrialClosed):
        services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    with pytest.raises(services.TrialClosed):
        services.screening_record(
            by=nurse_a,
            trial=blend,
            participant=participant,
            screened_on=timezone.localdate(),
            answers=eligible_answers,
        )
    assert Allocation.objects.count() == 0


def test_dates_that_contradict_the_stored_randomisation_or_death_are_refused(
    active_sequence, randomised, nurse_a, site_a, trial_form
):
    """Offer, decision, trial consent, day 0 and disclosures dated after the recorded death,
    a trial consent before the offer, a disclosure before randomisation: refused, nothing
    written."""
    from datetime import datetime

    from cohort.models import Death
    from randomization.models import ControlDisclosure

    active_sequence()
    intervention = randomised(site_a, nurse_a, arm="intervention")
    control = randomised(site_a, nurse_a, arm="control")
    today = timezone.localdate()
    ten_days_ago = timezone.make_aware(datetime.combine(today - timedelta(days=10), time(9)))
    Allocation.objects.filter(pk__in=[intervention.pk, control.pk]).update(
        randomised_at=ten_days_ago
    )
    intervention.refresh_from_db()
    control.refresh_from_db()
    with pytest.raises(ValidationError) as exc:
        services.offer_decision_record(
            by=nurse_a,
            allocation=intervention,
            offered_on=today - timedelta(days=5),
            decision="accepted",
            decided_on=today - timedelta(days=5),
            consent_form_version=trial_form,
            consent_date=today - timedelta(days=6),
        )
    assert "consent_date" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.disclosure_record(
            by=nurse_a,
            allocation=control,
            disclosed_on=today - timedelta(days=11),
            description="letter",
        )
    assert "disclosed_on" in exc.value.message_dict
    died = today - timedelta(days=7)
    for allocation in (intervention, control):
        Death.objects.create(
            participant=allocation.participant,
            died_on=died,
            source="hospital_record",
            recorded_by=nurse_a,
        )
    with pytest.raises(ValidationError) as exc:
        services.offer_decision_record(
            by=nurse_a,
            allocation=intervention,
            offered_on=today - timedelta(days=5),
            decision="pending",
        )
    assert died.isoformat() in exc.value.message_dict["offered_on"][0]
    with pytest.raises(ValidationError) as exc:
        services.treatment_start_set(by=nurse_a, allocation=intervention, planned=today)
    assert died.isoformat() in exc.value.message_dict["planned"][0]
    with pytest.raises(ValidationError) as exc:
        services.disclosure_record(
            by=nurse_a, allocation=control, disclosed_on=today, description="letter"
        )
    assert died.isoformat() in exc.value.message_dict["disclosed_on"][0]
    assert not InterventionOffer.objects.exists() and not ControlDisclosure.objects.exists()
    intervention.refresh_from_db()
    assert intervention.treatment_start_planned is None
