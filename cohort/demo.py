"""Demo data for the cohort (called by ``manage.py seed_demo``; idempotent).

A consent form version (PRESENT ICF v3, Dutch and English, effective 2022-01-01) and
twelve participants at both demo sites, all made through cohort.services: consent
to all four elements, a couple of withdrawals and one death. Names are invented.
"""

from __future__ import annotations

from datetime import date, timedelta
from io import TextIOBase
from typing import TypedDict

from django.utils import timezone

from cohort import services
from cohort.models import ConsentElement, ConsentFormVersion, Identity, Language
from core.models import Site, User


class _FormVersion(TypedDict):
    code: str
    version: str
    effective_from: date


FORM: _FormVersion = {"code": "present-icf", "version": "3", "effective_from": date(2022, 1, 1)}

# hospital number, given, family, date of birth, sex, tumour, department, site, nurse
PEOPLE = [
    (
        "DEMO-1001",
        "Anna",
        "de Vries",
        date(1956, 3, 14),
        "female",
        "breast",
        "radiation_oncology",
        "umcu",
        "nurse",
    ),
    (
        "DEMO-1002",
        "Jan",
        "Jansen",
        date(1949, 7, 2),
        "male",
        "prostate",
        "orthopaedic_surgery",
        "umcu",
        "nurse",
    ),
    (
        "DEMO-1003",
        "Fatima",
        "El Amrani",
        date(1962, 11, 23),
        "female",
        "lung",
        "radiation_oncology",
        "umcu",
        "nurse",
    ),
    (
        "DEMO-1004",
        "Pieter",
        "Bakker",
        date(1958, 1, 30),
        "male",
        "kidney",
        "neurosurgery",
        "umcu",
        "nurse",
    ),
    (
        "DEMO-1005",
        "Sophie",
        "Visser",
        date(1970, 5, 9),
        "female",
        "breast",
        "radiation_oncology",
        "umcu",
        "nurse",
    ),
    (
        "DEMO-1006",
        "Henk",
        "Smit",
        date(1945, 9, 17),
        "male",
        "lung",
        "orthopaedic_surgery",
        "umcu",
        "nurse",
    ),
    (
        "DEMO-1007",
        "Lotte",
        "Meijer",
        date(1966, 12, 1),
        "female",
        "colorectal",
        "radiation_oncology",
        "umcu",
        "nurse",
    ),
    (
        "DEMO-2001",
        "Kees",
        "de Boer",
        date(1951, 4, 4),
        "male",
        "prostate",
        "radiation_oncology",
        "partner",
        "nurse2",
    ),
    (
        "DEMO-2002",
        "Emma",
        "Mulder",
        date(1968, 8, 21),
        "female",
        "melanoma",
        "orthopaedic_surgery",
        "partner",
        "nurse2",
    ),
    (
        "DEMO-2003",
        "Ahmed",
        "Yilmaz",
        date(1960, 2, 11),
        "male",
        "unknown_primary",
        "radiation_oncology",
        "partner",
        "nurse2",
    ),
    (
        "DEMO-2004",
        "Marieke",
        "de Groot",
        date(1957, 6, 28),
        "female",
        "thyroid",
        "neurosurgery",
        "partner",
        "nurse2",
    ),
    (
        "DEMO-2005",
        "Willem",
        "Bos",
        date(1947, 10, 5),
        "male",
        "bladder",
        "radiation_oncology",
        "partner",
        "nurse2",
    ),
]


def _form_versions() -> dict[str, ConsentFormVersion]:
    out: dict[str, ConsentFormVersion] = {}
    for language in (Language.DUTCH, Language.ENGLISH):
        form = ConsentFormVersion.objects.filter(
            code=FORM["code"], version=FORM["version"], language=language
        ).first()
        if form is None:
            form = services.consent_form_version_create.nested(language=language, **FORM)
        out[language] = form
    return out


def seed(stdout: TextIOBase) -> None:
    # seed_demo runs every app's seed in one transaction (all or nothing): the services
    # join it (``.nested``) instead of opening their own durable one.
    forms = _form_versions()
    sites = {s.code: s for s in Site.objects.filter(code__in=["umcu", "partner"])}
    users = {u.username: u for u in User.objects.filter(username__in=["nurse", "nurse2"])}
    if len(sites) < 2 or len(users) < 2:
        stdout.write("cohort demo: demo sites/users missing, skipped participants")
        return
    today = timezone.localdate()
    created = 0
    for i, (hn, given, family, dob, sex, tumour, dept, site_code, nurse) in enumerate(PEOPLE):
        site, by = sites[site_code], users[nurse]
        if Identity.objects.filter(site=site, hospital_number=hn).exists():
            continue
        language = Language.ENGLISH if i % 5 == 4 else Language.DUTCH
        participant = services.participant_register.nested(
            by=by,
            site=site,
            sex=sex,
            primary_tumour=tumour,
            referring_department=dept,
            bone_metastases_diagnosed_on=today - timedelta(days=60 + 7 * i),
            given_name=given,
            family_name=family,
            date_of_birth=dob,
            hospital_number=hn,
            email=f"{given.lower()}.{i}@example.invalid",
            phone=f"06 1234 56{i:02d}",
            preferred_language=language,
        )
        # Paper consent signed at the visit, before the registration was entered; a death or
        # withdrawal can only be dated from the registration day (today) on.
        consent_day = today - timedelta(days=40 - 2 * i)
        services.consents_record.nested(
            by=by,
            participant=participant,
            answers={e.value: True for e in ConsentElement},
            given_on=consent_day,
            form_version=forms[language],
            mode="paper" if i % 2 else "electronic",
        )
        if hn == "DEMO-1006":
            services.withdrawal_record.nested(
                by=by,
                participant=participant,
                scope="questionnaires",
                effective_on=today,
                reason="Questionnaires too burdensome",
            )
        if hn == "DEMO-2003":
            services.withdrawal_record.nested(
                by=by,
                participant=participant,
                scope="trial",
                effective_on=today,
            )
        if hn == "DEMO-2005":
            services.death_record.nested(
                by=by,
                participant=participant,
                died_on=today,
                source="hospital_record",
            )
        created += 1
    stdout.write(f"cohort demo: {created} participants registered ({len(PEOPLE)} in the demo set)")
