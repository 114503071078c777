"""Per-row audit trigger helpers without exception blocks (see core.audit).

pgtrigger's ``_pgtrigger_should_ignore`` and pghistory's ``_pgh_attach_context``
caught an error per row, and each caught error's subtransaction rollback walked all
deferred constraint checks queued so far in the transaction: big inserts slowed down
quadratically. This installs the replacements; ``CoreConfig.ready`` reinstalls them
after every migrate, because pgtrigger rewrites its helper with each trigger it adds.
Reversing leaves the replacements in place (they return the same results).
"""

from django.db import migrations


def install(apps, schema_editor):
    from core.audit import install_trigger_helpers

    install_trigger_helpers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("pghistory", "0007_auto_20250421_0444"),
    ]

    operations = [migrations.RunPython(install, reverse_code=migrations.RunPython.noop)]
