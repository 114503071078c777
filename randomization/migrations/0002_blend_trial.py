"""BLEND, the first TwiCs trial on the PRESENT cohort, with its two arms (SPEC.md §1)."""

from django.db import migrations

ARMS = [
    (
        "intervention",
        "Same-day SBRT + surgery",
        "Single-fraction stereotactic body radiotherapy with active dose-sparing of the surgical site, "
        "then surgical stabilisation with or without decompression within 24 hours.",
        True,
    ),
    (
        "control",
        "Standard of care",
        "Surgical stabilisation with or without decompression, then conventional radiotherapy or SBRT "
        "once the wound has healed.",
        False,
    ),
]


def create_blend(apps, schema_editor):
    Trial = apps.get_model("randomization", "Trial")
    Arm = apps.get_model("randomization", "Arm")
    trial, _ = Trial.objects.get_or_create(
        code="BLEND",
        defaults={
            "name": "BLEND: same-day SBRT and surgery for unstable spinal metastases",
            "registration": "NCT05575323; NL80847.041.22",
            "protocol_version": "1.0",
            "target_size": 100,
            "status": "setup",
        },
    )
    for code, name, description, is_intervention in ARMS:
        Arm.objects.get_or_create(
            trial=trial,
            code=code,
            defaults={"name": name, "description": description, "ratio": 1, "is_intervention": is_intervention},
        )


class Migration(migrations.Migration):
    dependencies = [("randomization", "0001_initial")]

    operations = [migrations.RunPython(create_blend, migrations.RunPython.noop)]
