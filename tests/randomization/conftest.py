"""Randomization fixtures. Trials, participants, screenings, sequences and allocations come
from the shared fixtures in tests/conftest.py (thin wrappers over tests/factories.py)."""

from __future__ import annotations

import pytest

from tests import factories
from tests.conftest import events  # noqa: F401 - the tests import it from here


@pytest.fixture(autouse=True)
def _test_environment(randomisation_test_environment):
    """These tests allocate from *test* sequences (production systems use production ones)."""


@pytest.fixture
def trial_form(db):
    """The BLEND trial consent form (blend-trial-icf 1.0, nl)."""
    return factories.ConsentFormVersionFactory(code="blend-trial-icf", version="1.0")
