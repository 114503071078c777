"""What one randomisation costs and where its transaction boundary is: the SQL statements
of the service (pinned: every extra read under the locks is a wait for everyone queued
behind it), the statements of the API request, and the durable top-level transaction."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cohort.selectors import participant_get
from randomization import selectors, services
from randomization.models import Allocation, Stratum

pytestmark = pytest.mark.django_db


def _statements(queries) -> list[str]:
    """The statements, without the savepoint the test's own transaction adds."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


def test_a_randomisation_is_eight_statements_three_of_them_under_the_trial_lock(
    active_sequence, eligible_participant, nurse_a, site_a, blend
):
    """As the API passes them (participant_get, trial_get): three reads for readiness (the
    latest screening with the trial's status and any allocation; consent; withdrawals), the
    active sequence, one statement that locks the stratum and takes its slot, then the
    trial row lock, the count and the insert."""
    active_sequence()
    participant = participant_get(
        user=nurse_a, study_number=eligible_participant(site_a, nurse_a).study_number
    )
    trial = selectors.trial_get(user=nurse_a, code="BLEND")
    with CaptureQueriesContext(connection) as queries:
        result = services.allocation_randomise(by=nurse_a, trial=trial, participant=participant)
    statements = _statements(queries)
    assert result.created and len(statements) == 8, "\n".join(statements)
    locked = [i for i, sql in enumerate(statements) if "FOR UPDATE" in sql]
    assert len(locked) == 1 and 'FROM "randomization_trial"' in statements[locked[0]]
    assert locked[0] == len(statements) - 3  # the trial row lock: count and insert follow
    assert "UPDATE randomization_stratum" in statements[locked[0] - 1]
    assert "INSERT INTO" in statements[-1] and "randomization_allocation" in statements[-1]


def test_a_repeat_costs_two_reads_and_no_lock(
    active_sequence, eligible_participant, nurse_a, site_a, blend
):
    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    first = services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    participant = participant_get(user=nurse_a, study_number=participant.study_number)
    with CaptureQueriesContext(connection) as queries:
        again = services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    statements = _statements(queries)
    assert not again.created and again.allocation.pk == first.allocation.pk
    assert len(statements) == 2 and not any("FOR UPDATE" in s for s in statements), statements


def test_the_randomise_request_pins_its_queries(
    api_client_for,
    active_sequence,
    eligible_participant,
    nurse_a,
    site_a,
    blend,
    django_assert_max_num_queries,
):
    """The nurse's POST: authentication, roles, trial, participant and the randomisation."""
    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    client = api_client_for(nurse_a)
    with django_assert_max_num_queries(16):
        response = client.post(
            "/api/v1/trials/BLEND/randomisations/",
            {"participant": participant.study_number},
            format="json",
        )
    assert response.status_code == 201, response.json()


def test_randomising_is_its_own_transaction(
    active_sequence, eligible_participant, nurse_a, site_a, blend
):
    """A top-level service refuses to run inside another transaction (its commit is the real
    one); ``.within`` runs it inside the caller's, as demo seeding does."""
    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    assert not Allocation.objects.exists()
    with transaction.atomic():
        result = services.allocation_randomise.nested(
            by=nurse_a, trial=blend, participant=participant
        )
    assert result.created and Allocation.objects.get() == result.allocation
    assert Stratum.objects.get(key="site=site-a").used == 1
