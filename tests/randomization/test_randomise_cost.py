"""What one randomisation costs and where its transaction boundary is: the SQL statements
of the service (pinned: the write is one statement, so the locks it takes are held for
that statement and its commit only), the statements of the API request, and the
top-level boundary (outside any transaction; ``.nested`` inside the caller's)."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cohort.selectors import participant_get
from randomization import rules, selectors, services
from randomization.models import Allocation, Stratum, Trial

pytestmark = pytest.mark.django_db


def _statements(queries) -> list[str]:
    """The statements (without the audit context pghistory puts in front of each), without
    the savepoints the test's own transaction adds."""
    statements = [re.sub(r"^SELECT set_config\('pghistory[^;]*; ", "", q["sql"]) for q in queries]
    return [sql for sql in statements if not sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def test_a_randomisation_is_four_reads_and_one_write_statement(
    active_sequence, eligible_participant, nurse_a, site_a, blend
):
    """As the API passes them (participant_get, trial_get): three reads for readiness (the
    latest screening with the trial's status and any allocation; consent; withdrawals), the
    active sequence, then ONE statement that takes the trial's next number (the trial row
    lock), the stratum's next slot and inserts the allocation. No lock before it."""
    active_sequence()
    participant = participant_get(
        user=nurse_a, study_number=eligible_participant(site_a, nurse_a).study_number
    )
    trial = selectors.trial_get(user=nurse_a, code="BLEND")
    with CaptureQueriesContext(connection) as queries:
        result = services.allocation_randomise(by=nurse_a, trial=trial, participant=participant)
    statements = _statements(queries)
    assert result.created and len(statements) == 5, "\n".join(statements)
    assert not any("FOR UPDATE" in sql for sql in statements)
    reads, write = statements[:-1], statements[-1]
    assert all(sql.lstrip().startswith("SELECT") for sql in reads), reads
    assert not any(word in sql for sql in reads for word in ("UPDATE", "INSERT"))
    number, slot, insert = (
        write.index("UPDATE randomization_trial"),
        write.index("UPDATE randomization_stratum"),
        write.index("INSERT INTO randomization_allocation"),
    )
    assert number < slot < insert
    stored = Allocation.objects.get()
    assert (result.allocation.pk, result.allocation.trial_number, result.allocation.arm_id) == (
        stored.pk,
        stored.trial_number,
        stored.arm_id,
    )
    assert Trial.objects.get(pk=blend.pk).numbers_issued == 1


def test_trial_numbers_past_999_keep_every_digit(
    active_sequence, eligible_participant, nurse_a, site_a, blend
):
    """The statement formats the number as rules.trial_number does, also past three digits."""
    active_sequence()
    Trial.objects.filter(pk=blend.pk).update(numbers_issued=998)
    numbers = [
        services.allocation_randomise(
            by=nurse_a, trial=blend, participant=eligible_participant(site_a, nurse_a)
        ).allocation.trial_number
        for _ in range(3)
    ]
    assert numbers == [rules.trial_number("BLEND", n) for n in (999, 1000, 1001)]
    assert numbers == ["BLEND-999", "BLEND-1000", "BLEND-1001"]
    assert sorted(Allocation.objects.values_list("trial_number", flat=True)) == sorted(numbers)


@pytest.mark.django_db(transaction=True)
def test_the_write_commits_itself_outside_any_transaction(
    active_sequence, eligible_participant, nurse_a, site_a, blend
):
    """In a server (no wrapping transaction) the write statement runs in autocommit: the
    database commits it as it ends, so the trial row's lock never waits for Python."""
    active_sequence()
    participant = eligible_participant(site_a, nurse_a)
    seen = []

    def watch(execute, sql, params, many, context):
        if "INSERT INTO randomization_allocation" in sql:
            seen.append((connection.get_autocommit(), connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        result = services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    assert result.created and seen == [(True, False)]
    assert Allocation.objects.get().pk == result.allocation.pk


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
    with pytest.raises(RuntimeError, match="outside a transaction"), transaction.atomic():
        services.allocation_randomise(by=nurse_a, trial=blend, participant=participant)
    assert not Allocation.objects.exists()
    with transaction.atomic():
        result = services.allocation_randomise.nested(
            by=nurse_a, trial=blend, participant=participant
        )
    assert result.created and Allocation.objects.get() == result.allocation
    assert Stratum.objects.get(key="site=site-a").used == 1
