"""core.hooks: named hooks with fixed keyword arguments, fired inside the service's
transaction; a subscriber's error rolls the whole write back (unlike a Django signal)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from core import hooks
from core.models import Site

# Every hook and its subscribers, in call order. A new subscriber is a new line here.
PINNED = {
    "participant_records_after": [
        "randomization.selectors.participant_records_after",
        "crf.selectors.participant_records_after",
    ],
    "contact_stopped": [
        "crf.services.questionnaires_cancel_pending",
        "crf.services.form_expectations_on_contact_stopped",
    ],
    "treatment_started": ["crf.services.schedule_anchor", "crf.services.form_expectations_on_day0"],
    "allocation_changed": ["crf.services.form_expectations_on_allocation"],
    "deviation_reported": ["crf.services.deviation_log_entry"],
    "participant_panels": [
        "randomization.selectors.participant_panel",
        "crf.selectors.participant_panel",
        "crf.selectors.forms_panel",
    ],
    "not_informed_records": ["randomization.selectors.control_allocations"],
    "demo_seed": ["cohort.demo.seed", "randomization.demo.seed", "crf.demo.seed"],
}


def test_every_hook_has_its_pinned_subscribers():
    assert {name: hook.subscribers for name, hook in hooks.HOOKS.items()} == PINNED


def test_every_hook_documents_its_keyword_arguments():
    for hook in hooks.HOOKS.values():
        assert hook.doc.strip()
        for kwarg in hook.kwargs:
            assert f"``{kwarg}``" in hook.doc, (hook.name, kwarg)


@pytest.fixture
def action_hook():
    return hooks.Hook(name="test_action", kind=hooks.ACTION, kwargs=("site",), doc="test")


@pytest.mark.django_db
def test_a_hook_must_be_fired_inside_a_transaction_with_exactly_its_arguments(action_hook):
    calls = []
    action_hook.subscribe(lambda **kw: calls.append(kw))
    with pytest.raises(TypeError), transaction.atomic():
        action_hook.fire(site=None, extra=1)
    with pytest.raises(TypeError), transaction.atomic():
        action_hook.collect(site=None)  # an action hook is fired, not collected
    assert calls == []
    with transaction.atomic():
        action_hook.fire(site=None)
    assert calls == [{"site": None}]


@pytest.mark.django_db(transaction=True)
def test_firing_outside_a_transaction_is_refused(action_hook):
    action_hook.subscribe(lambda **kw: None)
    with pytest.raises(RuntimeError):
        action_hook.fire(site=None)


@pytest.mark.django_db(transaction=True)
def test_a_failing_subscriber_rolls_the_whole_write_back(action_hook):
    def write_then_fire():
        with transaction.atomic():
            site = Site.objects.create(code="hooked", name="Hooked")
            action_hook.fire(site=site)

    def broken(*, site):
        raise RuntimeError("subscriber failed")

    action_hook.subscribe(broken)
    with pytest.raises(RuntimeError):
        write_then_fire()
    assert not Site.objects.filter(code="hooked").exists()


def test_subscribing_twice_is_a_no_op(action_hook):
    def sub(*, site):
        return None

    action_hook.subscribe(sub)
    action_hook.subscribe(sub)
    assert action_hook.subscribers == [f"{__name__}.test_subscribing_twice_is_a_no_op.<locals>.sub"]


def test_a_hook_name_is_defined_once():
    with pytest.raises(ValueError):
        hooks.define("participant_records_after", kind=hooks.QUERY, kwargs=(), doc="x")


@pytest.mark.django_db(transaction=True)
def test_a_failing_query_subscriber_rolls_back_a_death(nurse_a, site_a, monkeypatch):
    """The real path: cohort's death service collects findings through the hook; a
    subscriber that raises leaves no death (and no audit event) behind."""
    from cohort import services
    from cohort.models import Death
    from core.selectors import event_model_for
    from tests.cohort.conftest import registration_data

    participant = services.participant_register(by=nurse_a, **registration_data(site_a))

    def broken(**kwargs):
        raise RuntimeError("randomization down")

    hook = hooks.participant_records_after
    monkeypatch.setattr(hook, "_subscribers", [broken, *hook._subscribers])
    with pytest.raises(RuntimeError):
        services.death_record(
            by=nurse_a, participant=participant, died_on=timezone.localdate(), source="family"
        )
    assert not Death.objects.exists()
    assert not event_model_for(Death).objects.exists()
