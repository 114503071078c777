"""BLEND eligibility criteria (SPEC.md §3.2), protocol version 1.0, as data.

Later protocol versions add rows with their own ``protocol_version``; these stay.
"""

from django.db import migrations

PROTOCOL_VERSION = "1.0"

# (kind, code, English, Dutch)
CRITERIA = [
    (
        "inclusion",
        "symptomatic_spinal_metastases",
        "Symptomatic cervical, thoracic and/or lumbar spinal metastases from a solid tumour",
        "Symptomatische cervicale, thoracale en/of lumbale wervelmetastasen van een solide tumor",
    ),
    (
        "inclusion",
        "instability_needs_rt_and_surgery",
        "(Impending) instability needing radiotherapy and surgical stabilisation and/or decompression",
        "(Dreigende) instabiliteit waarvoor radiotherapie en chirurgische stabilisatie en/of decompressie nodig is",
    ),
    (
        "inclusion",
        "malignancy_proven",
        "Histological proof of malignancy, or radiological/clinical certainty",
        "Histologisch bewezen maligniteit, of radiologische/klinische zekerheid",
    ),
    (
        "inclusion",
        "radiographic_evidence",
        "Radiographic evidence of spinal metastases",
        "Radiologisch bewijs van wervelmetastasen",
    ),
    (
        "inclusion",
        "present_randomisation_consent",
        "Participates in PRESENT with consent to randomisation",
        "Neemt deel aan PRESENT met toestemming voor randomisatie",
    ),
    (
        "inclusion",
        "fit_for_radiosurgery",
        "Fit for (radio)surgery",
        "Fit voor (radio)chirurgie",
    ),
    ("inclusion", "age_over_18", "Age over 18", "Leeftijd boven 18 jaar"),
    (
        "exclusion",
        "sbrt_not_deliverable",
        "SBRT cannot be delivered (e.g. cannot lie on the table because of pain)",
        "SBRT is niet uitvoerbaar (bijv. kan door pijn niet op de behandeltafel liggen)",
    ),
    (
        "exclusion",
        "routine_treatment_not_possible",
        "Routine surgery and radiotherapy not possible (e.g. bridging more than 5 levels, or radiotherapy needed on more than one location)",
        "Standaard chirurgie en radiotherapie niet mogelijk (bijv. overbrugging van meer dan 5 niveaus, of radiotherapie op meer dan één locatie nodig)",
    ),
    (
        "exclusion",
        "prior_treatment_index_level",
        "Prior surgery or radiotherapy at the index level(s)",
        "Eerdere chirurgie of radiotherapie op het indexniveau (de indexniveaus)",
    ),
    ("exclusion", "multiple_myeloma", "Multiple myeloma", "Multipel myeloom"),
    (
        "exclusion",
        "neurological_deficit",
        "Neurological deficit ASIA A–C, or ASIA D progressing within hours to days",
        "Neurologisch deficit ASIA A–C, of ASIA D dat binnen uren tot dagen verslechtert",
    ),
    (
        "exclusion",
        "interfering_medication",
        "Bevacizumab or similar long-acting medication that interferes with radiotherapy",
        "Bevacizumab of vergelijkbare langwerkende medicatie die radiotherapie beïnvloedt",
    ),
    (
        "exclusion",
        "life_expectancy_under_3_months",
        "Life expectancy under 3 months",
        "Levensverwachting korter dan 3 maanden",
    ),
]


def create_criteria(apps, schema_editor):
    Trial = apps.get_model("randomization", "Trial")
    Criterion = apps.get_model("randomization", "Criterion")
    trial = Trial.objects.filter(code="BLEND").first()
    if trial is None:
        return
    for order, (kind, code, text_en, text_nl) in enumerate(CRITERIA, start=1):
        Criterion.objects.get_or_create(
            trial=trial,
            protocol_version=PROTOCOL_VERSION,
            code=code,
            defaults={"kind": kind, "text_en": text_en, "text_nl": text_nl, "order": order},
        )


class Migration(migrations.Migration):
    dependencies = [("randomization", "0003_twics_randomisation")]

    operations = [migrations.RunPython(create_criteria, migrations.RunPython.noop)]
