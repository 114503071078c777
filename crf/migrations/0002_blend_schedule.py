"""The default BLEND follow-up schedule (SPEC.md §3.5), identical for both arms.

The baseline is due before day 0: its window is day −14 to day 0.
"""

from django.db import migrations

# code, Dutch label, English label, day offset, window before, window after, instruments, primary
BLEND_SCHEDULE = [
    ("baseline", "Start", "Baseline", 0, 14, 0, ["c15pal", "bm22", "pain", "eq5d5l"], False),
    ("week1", "Week 1", "Week 1", 7, 2, 3, ["pain"], False),
    ("week2", "Week 2", "Week 2", 14, 3, 3, ["pain", "c15pal"], False),
    (
        "week4",
        "Week 4",
        "Week 4",
        28,
        7,
        7,
        ["pain", "c15pal", "bm22", "eq5d5l", "imcq", "ipcq"],
        True,
    ),
    ("week6", "Week 6", "Week 6", 42, 7, 7, ["pain"], False),
    ("week8", "Week 8", "Week 8", 56, 7, 7, ["pain", "c15pal", "eq5d5l"], False),
    (
        "week12",
        "Week 12",
        "Week 12",
        84,
        7,
        14,
        ["pain", "c15pal", "bm22", "eq5d5l", "imcq", "ipcq"],
        False,
    ),
    ("month6", "Maand 6", "Month 6", 182, 14, 28, ["c15pal", "bm22", "eq5d5l", "pain"], False),
    ("month12", "Maand 12", "Month 12", 365, 28, 28, ["c15pal", "bm22", "eq5d5l", "pain"], False),
]


def create_schedule(apps, schema_editor):
    Trial = apps.get_model("randomization", "Trial")
    Timepoint = apps.get_model("crf", "Timepoint")
    trial = Trial.objects.filter(code="BLEND").first()
    if trial is None:
        return
    for code, nl, en, offset, before, after, instruments, primary in BLEND_SCHEDULE:
        Timepoint.objects.get_or_create(
            trial=trial,
            code=code,
            defaults={
                "label_nl": nl,
                "label_en": en,
                "day_offset": offset,
                "window_before": before,
                "window_after": after,
                "instruments": instruments,
                "is_primary": primary,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("crf", "0001_initial"), ("randomization", "0002_blend_trial")]

    operations = [migrations.RunPython(create_schedule, migrations.RunPython.noop)]
