"""Partial indexes in the staff worklist's order (closing soonest first), for its keyset pages
and capped counts: one over the rows still in play, one over the failed ones."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('cohort', '0003_list_indexes'),
        ('crf', '0006_completion_date_outside_window'),
        ('randomization', '0008_list_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='questionnaire',
            index=models.Index(condition=models.Q(('status__in', ['scheduled', 'open', 'sending', 'sent', 'reminded'])), fields=['closes_at', 'id'], name='q_worklist_active'),
        ),
        migrations.AddIndex(
            model_name='questionnaire',
            index=models.Index(condition=models.Q(('status', 'failed')), fields=['closes_at', 'id'], name='q_worklist_failed'),
        ),
    ]
