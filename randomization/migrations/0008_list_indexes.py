"""Indexes for the trial overview, the API lists and the corrections list (newest first, a
keyset page at a time) and for the counts by arm (index-only)."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('cohort', '0003_list_indexes'),
        ('core', '0001_initial'),
        ('randomization', '0007_blend_derived_criteria'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='allocation',
            index=models.Index(fields=['trial', '-randomised_at', '-id'], name='alloc_recent'),
        ),
        migrations.AddIndex(
            model_name='allocation',
            index=models.Index(condition=models.Q(('status', 'active')), fields=['trial', 'arm'], name='alloc_active_arm'),
        ),
        migrations.AddIndex(
            model_name='allocationcorrection',
            index=models.Index(fields=['-proposed_at', '-id'], name='correction_recent'),
        ),
        migrations.AddIndex(
            model_name='screening',
            index=models.Index(fields=['trial', '-recorded_at', '-id'], name='screening_recent'),
        ),
    ]
