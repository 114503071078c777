"""BLEND protocol 1.0: which criteria the system answers from stored data (SPEC.md §3.2),
and trial statuses on the lifecycle (set-up → recruiting → closed to recruitment → closed).

- age over 18: from the date of birth, at the screening date (18 on that day counts);
- multiple myeloma: from the primary tumour recorded at registration ("unknown primary" and
  "other" cannot decide it: the nurse answers);
- PRESENT participation with consent to randomisation: from the consent records (elements
  (a), (c) and (d) given and not withdrawn; not dead).

Until now "closed" meant "closed to recruitment"; it becomes ``recruitment_closed`` and
"closed" now means the trial has ended. A trial in set-up with a live production sequence
is recruiting.
"""

from django.db import migrations

PROTOCOL_VERSION = "1.0"

DERIVED = {
    "age_over_18": ("age_at_screening", {"min_years": 18}),
    "multiple_myeloma": (
        "primary_tumour",
        {"values": ["myeloma"], "undecided": ["unknown_primary", "other"]},
    ),
    "present_randomisation_consent": ("randomisation_consent", {}),
}


def set_derivations(apps, schema_editor):
    Criterion = apps.get_model("randomization", "Criterion")
    for code, (derived_from, params) in DERIVED.items():
        for criterion in Criterion.objects.filter(
            trial__code="BLEND", protocol_version=PROTOCOL_VERSION, code=code, derived_from=""
        ):
            criterion.derived_from = derived_from
            criterion.derivation_params = params
            criterion.save(update_fields=["derived_from", "derivation_params"])


def unset_derivations(apps, schema_editor):
    Criterion = apps.get_model("randomization", "Criterion")
    Criterion.objects.filter(
        trial__code="BLEND", protocol_version=PROTOCOL_VERSION, code__in=list(DERIVED)
    ).update(derived_from="", derivation_params={})


def statuses_on_lifecycle(apps, schema_editor):
    Trial = apps.get_model("randomization", "Trial")
    Sequence = apps.get_model("randomization", "Sequence")
    for trial in Trial.objects.filter(status="closed"):
        trial.status = "recruitment_closed"
        trial.save(update_fields=["status"])
    for trial in Trial.objects.filter(status="setup"):
        if Sequence.objects.filter(trial=trial, environment="production", status="active").exists():
            trial.status = "recruiting"
            trial.save(update_fields=["status"])


def statuses_back(apps, schema_editor):
    Trial = apps.get_model("randomization", "Trial")
    Trial.objects.filter(status="recruitment_closed").update(status="closed")


class Migration(migrations.Migration):
    dependencies = [("randomization", "0006_derived_criteria_trial_lifecycle")]

    operations = [
        migrations.RunPython(set_derivations, unset_derivations),
        migrations.RunPython(statuses_on_lifecycle, statuses_back),
    ]
