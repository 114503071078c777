# The trial numbers given out so far, kept on the trial row so that the randomisation's one
# statement can take the next number under that row's lock (randomization.services).

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('randomization', '0008_list_indexes'),
    ]

    operations = [
        pgtrigger.migrations.RemoveTrigger(
            model_name='trial',
            name='update_update',
        ),
        migrations.AddField(
            model_name='trial',
            name='numbers_issued',
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name='trial numbers issued'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='trial',
            trigger=pgtrigger.compiler.Trigger(name='update_update', sql=pgtrigger.compiler.UpsertTriggerSql(condition='WHEN (OLD."code" IS DISTINCT FROM (NEW."code") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."name" IS DISTINCT FROM (NEW."name") OR OLD."protocol_version" IS DISTINCT FROM (NEW."protocol_version") OR OLD."registration" IS DISTINCT FROM (NEW."registration") OR OLD."status" IS DISTINCT FROM (NEW."status") OR OLD."target_size" IS DISTINCT FROM (NEW."target_size"))', func='INSERT INTO "randomization_trialevent" ("code", "id", "name", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "protocol_version", "registration", "status", "target_size") VALUES (NEW."code", NEW."id", NEW."name", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."protocol_version", NEW."registration", NEW."status", NEW."target_size"); RETURN NULL;', hash='7ea1e4bb0cc16784aa91ce4f9ca5fb7d3b03e49a', operation='UPDATE', pgid='pgtrigger_update_update_3e087', table='randomization_trial', when='AFTER')),
        ),
        migrations.RunSQL(
            sql="""
                UPDATE randomization_trial AS trial SET numbers_issued = (
                    SELECT count(*) FROM randomization_allocation AS a WHERE a.trial_id = trial.id
                )
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
