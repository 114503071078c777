"""The audit context stays attached to every event after the trigger helpers were replaced
(core.audit.install_trigger_helpers): who/why per event, the right context per block, and
the event tables still append-only."""

import pghistory
import pgtrigger
import pytest
from django.db import InternalError, connection, transaction
from pghistory.models import Context

from core.audit import reason, system_actor
from core.models import Site
from core.selectors import event_model_for
from tests import factories

SiteEvent = event_model_for(Site)


def _context_table_writes() -> tuple[int, int]:
    """Rows inserted into and updated in the context table so far in this transaction."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'pghistory_context'"
        )
        row = cur.fetchone()
    return (row[0], row[1]) if row else (0, 0)


def _inserts(codes):
    return SiteEvent.objects.filter(pgh_label="insert", code__in=codes).select_related(
        "pgh_context"
    )


@pytest.mark.django_db
def test_many_rows_in_one_context_share_it_and_its_metadata(nurse_a):
    """300 inserts (bulk and per row) in one context: 300 events, all linked to that one
    context row, whose metadata is the context's; the context row is written once."""
    with transaction.atomic():
        writes_before = _context_table_writes()
        with pghistory.context(user=nurse_a.pk, reason="site import") as ctx:
            Site.objects.bulk_create([Site(code=f"bulk-{i}", name=f"Bulk {i}") for i in range(200)])
            for i in range(100):
                factories.SiteFactory(code=f"row-{i}")
        writes_after = _context_table_writes()
    codes = [f"bulk-{i}" for i in range(200)] + [f"row-{i}" for i in range(100)]
    events = list(_inserts(codes))
    assert len(events) == 300
    assert {e.pgh_context_id for e in events} == {ctx.id}
    stored = Context.objects.get(pk=ctx.id)
    assert stored.metadata == {"user": nurse_a.pk, "reason": "site import"}
    assert all(e.pgh_context.metadata["reason"] == "site import" for e in events)
    # one insert of the context row, no update per event
    assert (writes_after[0] - writes_before[0], writes_after[1] - writes_before[1]) == (1, 0)


@pytest.mark.django_db
def test_two_contexts_in_one_transaction_each_keep_their_own_metadata(nurse_a, nurse_b):
    """Two contexts one after the other in one transaction, and a reason block inside the
    second: each event carries the context it was written in, with that one's metadata."""
    with transaction.atomic():
        with pghistory.context(user=nurse_a.pk, reason="first") as first:
            factories.SiteFactory(code="ctx-a1")
            factories.SiteFactory(code="ctx-a2")
        with pghistory.context(user=nurse_b.pk, reason="second") as second:
            factories.SiteFactory(code="ctx-b1")
            with reason("correction of a typo"):
                Site.objects.filter(code="ctx-a1").update(name="Fixed")
            factories.SiteFactory(code="ctx-b2")
    assert first.id != second.id
    by_code = {e.code: e for e in _inserts(["ctx-a1", "ctx-a2", "ctx-b1", "ctx-b2"])}
    assert {c: e.pgh_context_id for c, e in by_code.items()} == {
        "ctx-a1": first.id,
        "ctx-a2": first.id,
        "ctx-b1": second.id,
        "ctx-b2": second.id,
    }
    assert Context.objects.get(pk=first.id).metadata == {"user": nurse_a.pk, "reason": "first"}
    assert Context.objects.get(pk=second.id).metadata == {"user": nurse_b.pk, "reason": "second"}
    update = SiteEvent.objects.get(pgh_label="update", code="ctx-a1")
    assert update.pgh_context_id not in (first.id, second.id)
    assert update.pgh_context.metadata == {"user": nurse_b.pk, "reason": "correction of a typo"}
    assert Context.objects.filter(pk__in=[first.id, second.id, update.pgh_context_id]).count() == 3


@pytest.mark.django_db
def test_metadata_added_inside_a_context_reaches_its_context_row(nurse_a):
    """Metadata added to an open context (pghistory.context(...) called inside it) is
    stored on the next write: the context row is updated when its metadata changed."""
    with pghistory.context(actor="import-job") as ctx:
        factories.SiteFactory(code="meta-1")
        pghistory.context(user=nurse_a.pk)
        factories.SiteFactory(code="meta-2")
    assert Context.objects.get(pk=ctx.id).metadata == {"actor": "import-job", "user": nurse_a.pk}
    assert {e.pgh_context_id for e in _inserts(["meta-1", "meta-2"])} == {ctx.id}


@pytest.mark.django_db
def test_writes_outside_a_context_have_no_context_and_create_none():
    """Outside any context an event is still written, without a context, and no context
    row appears (the helper returns NULL instead of catching an error)."""
    before = Context.objects.count()
    with transaction.atomic():
        factories.SiteFactory(code="no-ctx-1")
        Site.objects.bulk_create([Site(code="no-ctx-2", name="No ctx 2")])
    events = list(_inserts(["no-ctx-1", "no-ctx-2"]))
    assert len(events) == 2
    assert all(e.pgh_context_id is None for e in events)
    assert Context.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {t} SET name = 'x' WHERE code = 'locked'",
        "DELETE FROM {t} WHERE code = 'locked'",
        "TRUNCATE {t}",
    ],
)
def test_event_tables_still_refuse_update_delete_truncate(statement):
    """The replaced ignore helper still lets the append-only guards fire."""
    with system_actor("test"):
        factories.SiteFactory(code="locked")
    before = list(SiteEvent.objects.filter(code="locked").values_list("pgh_id", "name"))
    assert before
    table = SiteEvent._meta.db_table
    with pytest.raises(InternalError) as exc, transaction.atomic(), connection.cursor() as cur:
        cur.execute(statement.format(t=table))
    assert "append" in str(exc.value).lower() or "cannot" in str(exc.value).lower()
    assert list(SiteEvent.objects.filter(code="locked").values_list("pgh_id", "name")) == before


@pytest.mark.django_db
def test_pgtrigger_ignore_still_names_the_trigger_it_skips():
    """pgtrigger.ignore goes on working with the replaced helper: the named guard is
    skipped inside the block (the test teardown's flush relies on it), and only there."""
    with system_actor("test"):
        factories.SiteFactory(code="ignored")
    uri = next(
        f"{model._meta.label}:{trigger.name}"
        for model, trigger in pgtrigger.registry.registered()
        if model is SiteEvent and trigger.name == "append_only"
    )
    table = SiteEvent._meta.db_table
    with transaction.atomic():
        with pgtrigger.ignore(uri), connection.cursor() as cur:
            cur.execute(f"UPDATE {table} SET name = 'bypassed' WHERE code = 'ignored'")  # noqa: S608
        assert SiteEvent.objects.filter(code="ignored", name="bypassed").exists()
        transaction.set_rollback(True)
    with pytest.raises(InternalError), transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"UPDATE {table} SET name = 'again' WHERE code = 'ignored'")  # noqa: S608
    assert not SiteEvent.objects.filter(code="ignored", name__in=["bypassed", "again"]).exists()


@pytest.mark.django_db
def test_installed_trigger_helpers_catch_no_errors():
    """After migrate the per-row helpers are core's versions, without exception blocks:
    a caught error per row made big inserts quadratic (see core.audit). pgtrigger
    rewrites its helper with every trigger it installs, so this pins the post-migrate
    reinstall too."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT proname, prosrc FROM pg_proc "
            "WHERE proname IN ('_pgtrigger_should_ignore', '_pgh_attach_context')"
        )
        sources = dict(cur.fetchall())
    assert set(sources) == {"_pgtrigger_should_ignore", "_pgh_attach_context"}
    for name, source in sources.items():
        assert "EXCEPTION" not in source.upper(), name
        assert "CURRENT_SETTING" in source.upper() and ", TRUE)" in source.upper(), name
