"""System checks for trial configuration."""

from __future__ import annotations

import pytest

from randomization.checks import trial_configuration

pytestmark = pytest.mark.django_db


def _ids():
    return sorted(w.id for w in trial_configuration())


def test_blend_as_migrated_is_clean(blend):
    assert _ids() == []


def test_recruiting_without_an_active_sequence_and_missing_criteria_warn(blend, active_sequence):
    blend.status = "recruiting"
    blend.protocol_version = "2.0"
    blend.save()
    assert _ids() == ["randomization.W002", "randomization.W003"]
    active_sequence()
    assert _ids() == ["randomization.W002"]
