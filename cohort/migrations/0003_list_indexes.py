"""Indexes for the participant lists' keyset pages (newest first, with and without a
site filter) and for the digits search: ``cohort_study_number_fragments`` lists every run
of digits of a study number, and a GIN index over it answers "numbers containing 042"."""

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
from django.conf import settings
from django.db import migrations, models

FRAGMENTS = """
CREATE OR REPLACE FUNCTION cohort_study_number_fragments(study_number text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
    SELECT coalesce(array_agg(DISTINCT substr(digits, i, n)), '{}')
    FROM (SELECT substr(study_number, 5) AS digits) AS s,
         generate_series(1, length(digits)) AS i,
         generate_series(1, length(digits) - i + 1) AS n
$$
"""


class Migration(migrations.Migration):

    dependencies = [
        ('cohort', '0002_identity_access_and_validators'),
        ('core', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='participant',
            name='participant_site_recent',
        ),
        migrations.AddIndex(
            model_name='participant',
            index=models.Index(fields=['site', '-registered_at', '-id'], name='participant_site_recent'),
        ),
        migrations.AddIndex(
            model_name='participant',
            index=models.Index(fields=['-registered_at', '-id'], name='participant_recent'),
        ),
        migrations.RunSQL(FRAGMENTS, "DROP FUNCTION cohort_study_number_fragments(text)"),
        migrations.AddIndex(
            model_name='participant',
            index=django.contrib.postgres.indexes.GinIndex(models.Func(models.F('study_number'), function='cohort_study_number_fragments', output_field=django.contrib.postgres.fields.ArrayField(base_field=models.TextField(), size=None)), name='participant_number_digits'),
        ),
    ]
