"""The demo seed: an active test sequence, a few screened/randomised participants; idempotent."""

from __future__ import annotations

import io

import pytest

from randomization.models import Allocation, Screening, Sequence
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_world(blend, make_user):
    """Seven consenting participants without a recorded date of birth (so the demo must
    type the age criterion) at two demo sites."""
    umcu = factories.SiteFactory(code="umcu", name="UMC Utrecht")
    partner = factories.SiteFactory(code="partner", name="Partner")
    make_user("statistician", None, username="statistician")
    make_user("nurse", umcu, username="nurse")
    make_user("nurse", partner, username="nurse2")
    return [
        factories.participant_without_identity(site=umcu if i % 2 else partner) for i in range(7)
    ]


def test_demo_seed_is_idempotent(demo_world, settings):
    from randomization import demo

    settings.DEBUG = True
    settings.RANDOMISATION_ENVIRONMENT = ""
    out = io.StringIO()
    demo.seed(out)
    assert Sequence.objects.filter(status="active", environment="test").count() == 1
    assert Screening.objects.count() == 6
    assert Screening.objects.filter(verdict="ineligible").count() == 1
    assert Allocation.objects.count() == 4
    demo.seed(out)
    assert Sequence.objects.count() == 1 and Allocation.objects.count() == 4
    assert Screening.objects.count() == 6


def test_demo_seed_skips_quietly_without_participants(blend, make_user):
    from randomization import demo

    make_user("statistician", None, username="statistician")
    out = io.StringIO()
    demo.seed(out)
    assert "no cohort demo participants" in out.getvalue()
    assert Allocation.objects.count() == 0


def test_demo_answers_only_what_the_stored_data_cannot_decide(demo_world, settings):
    """The demo goes through the same rules: derived criteria are derived (never typed), and
    the trial stays in set-up (only a production sequence opens recruitment)."""
    from randomization import demo
    from randomization.models import ScreeningAnswer, Trial

    settings.DEBUG = True
    settings.RANDOMISATION_ENVIRONMENT = ""
    demo.seed(io.StringIO())
    derived = ScreeningAnswer.objects.filter(source="derived")
    assert set(derived.values_list("criterion__code", flat=True)) == {
        "multiple_myeloma",
        "present_randomisation_consent",
    }
    assert derived.count() == 2 * Screening.objects.count()
    assert Trial.objects.get(code="BLEND").status == "setup"
