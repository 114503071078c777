"""Criteria the system derives from stored data (SPEC.md §3.2): age from the date of birth
at the screening date, multiple myeloma from the primary tumour, consent from the consent
records, death. Table tests of the pure rules, then the service: derived answers stored as
derived, contradicting answers refused with the stored value named, nothing written."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation
from hypothesis import given
from hypothesis import strategies as st

from randomization import services
from randomization.eligibility import (
    Contradiction,
    DerivableSpec,
    Derived,
    StoredFacts,
    age_on,
    derive,
    merge_answers,
)
from randomization.models import Criterion, Screening, ScreeningAnswer
from tests import factories
from tests.randomization.conftest import events

AGE = ("age_at_screening", {"min_years": 18})
MYELOMA = ("primary_tumour", {"values": ["myeloma"], "undecided": ["unknown_primary", "other"]})
SCREENED = date(2026, 3, 1)


# --- pure rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "born,on,age",
    [
        (date(2008, 3, 1), date(2026, 3, 1), 18),  # exactly 18 on the screening date
        (date(2008, 3, 2), date(2026, 3, 1), 17),  # 17 years and 364 days
        (date(2008, 2, 29), date(2026, 2, 28), 17),  # 29 February, common year: not yet
        (date(2008, 2, 29), date(2026, 3, 1), 18),  # ... 18 on 1 March
        (date(2008, 2, 29), date(2028, 2, 29), 20),  # leap year: on the day itself
        (date(2010, 1, 1), date(2026, 12, 1), 16),
    ],
)
def test_age_on_the_screening_date(born, on, age):
    assert age_on(born, on) == age


@pytest.mark.parametrize(
    "derivation,facts,expected",
    [
        (
            AGE,
            StoredFacts(date_of_birth=date(2008, 3, 1)),
            Derived("yes", {"age": 18, "min_years": 18}),
        ),
        (
            AGE,
            StoredFacts(date_of_birth=date(2008, 3, 2)),
            Derived("no", {"age": 17, "min_years": 18}),
        ),
        (
            AGE,
            StoredFacts(date_of_birth=date(2008, 2, 29)),
            Derived("yes", {"age": 18, "min_years": 18}),
        ),
        (AGE, StoredFacts(date_of_birth=None), None),  # unknown date of birth: the nurse answers
        (
            MYELOMA,
            StoredFacts(primary_tumour="myeloma"),
            Derived("yes", {"primary_tumour": "myeloma"}),
        ),
        (
            MYELOMA,
            StoredFacts(primary_tumour="breast"),
            Derived("no", {"primary_tumour": "breast"}),
        ),
        (MYELOMA, StoredFacts(primary_tumour="unknown_primary"), None),
        (MYELOMA, StoredFacts(primary_tumour="other"), None),
        (MYELOMA, StoredFacts(primary_tumour=None), None),
        (
            ("randomisation_consent", {}),
            StoredFacts(consent_reasons=()),
            Derived("yes", {"consent_reasons": []}),
        ),
        (
            ("randomisation_consent", {}),
            StoredFacts(consent_reasons=("deceased",)),
            Derived("no", {"consent_reasons": ["deceased"]}),
        ),
        (("randomisation_consent", {}), StoredFacts(consent_reasons=None), None),
        (
            ("alive_at_screening", {}),
            StoredFacts(died_on=date(2026, 2, 1)),
            Derived("no", {"died_on": "2026-02-01"}),
        ),
        (
            ("alive_at_screening", {}),
            StoredFacts(died_on=date(2026, 3, 2)),
            Derived("yes", {"died_on": None}),
        ),
        (("alive_at_screening", {}), StoredFacts(), Derived("yes", {"died_on": None})),
    ],
)
def test_derive_table(derivation, facts, expected):
    name, params = derivation
    assert derive(name, params, facts, SCREENED) == expected


def test_unknown_derivation_is_an_error():
    with pytest.raises(ValueError):
        derive("horoscope", {}, StoredFacts(), SCREENED)


def test_merge_refuses_contradictions_and_keeps_undecided_answers():
    specs = [DerivableSpec("age_over_18", *AGE), DerivableSpec("multiple_myeloma", *MYELOMA)]
    facts = StoredFacts(date_of_birth=date(2010, 1, 1), primary_tumour="unknown_primary")
    answers, derived, contradictions = merge_answers(
        specs, {"age_over_18": "yes", "multiple_myeloma": "no", "fit": "yes"}, facts, SCREENED
    )
    assert answers == {"age_over_18": "no", "multiple_myeloma": "no", "fit": "yes"}
    assert set(derived) == {"age_over_18"}
    assert contradictions == [Contradiction("age_over_18", "yes", derived["age_over_18"])]
    # "unknown" contradicts what the system knows; the same answer or none is fine.
    for typed, n in (("unknown", 1), ("no", 0), ("", 0)):
        _a, _d, found = merge_answers(specs, {"age_over_18": typed}, facts, SCREENED)
        assert len(found) == n


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)), st.integers(0, 100))
def test_age_on_birthdays_property(born, years):
    """On the n-th birthday (1 March for a 29 February birth in a common year) the age is n,
    and the day before it is n - 1."""
    try:
        birthday = born.replace(year=born.year + years)
    except ValueError:  # 29 February in a common year
        birthday = date(born.year + years, 3, 1)
    assert age_on(born, birthday) == years
    if years:
        assert age_on(born, birthday - timedelta(days=1)) == years - 1


# --- the service ---------------------------------------------------------------------------------
def _snapshot():
    from cohort.models import IdentityAccess

    return (
        Screening.objects.count(),
        ScreeningAnswer.objects.count(),
        events(Screening).count(),
        events(ScreeningAnswer).count(),
        IdentityAccess.objects.count(),
    )


def _record(by, participant, blend, answers, on=None):
    return services.screening_record(
        by=by,
        trial=blend,
        participant=participant,
        screened_on=on or timezone.localdate(),
        answers=answers,
    )


def _typed(eligible_answers, *drop, **override):
    answers = {k: v for k, v in eligible_answers.items() if k not in drop}
    answers.update(override)
    return answers


pytestmark = pytest.mark.django_db


def test_blend_criteria_name_what_they_are_derived_from(blend):
    derived = dict(
        Criterion.objects.filter(trial=blend, protocol_version="1.0")
        .exclude(derived_from="")
        .values_list("code", "derived_from")
    )
    assert derived == {
        "age_over_18": "age_at_screening",
        "multiple_myeloma": "primary_tumour",
        "present_randomisation_consent": "randomisation_consent",
    }


def test_under_18_answered_yes_is_refused_naming_the_date_of_birth(
    blend, make_participant, nurse_a, site_a, eligible_answers
):
    """The issue's case: born 2010-01-01, answered "age over 18: yes"."""
    participant = make_participant(site_a, date_of_birth=date(2010, 1, 1))
    before = _snapshot()
    age = age_on(date(2010, 1, 1), timezone.localdate())
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        _record(nurse_a, participant, blend, _typed(eligible_answers, age_over_18="yes"))
    (message,) = exc.value.message_dict["age_over_18"]
    assert f"Date of birth 2010-01-01: {age} years old on the screening date" in message
    assert "“No”, not “Yes”" in message
    assert _snapshot() == before


def test_myeloma_answered_no_is_refused_naming_the_primary_tumour(
    blend, make_participant, nurse_a, site_a, eligible_answers
):
    """The issue's case: registered with multiple myeloma, answered "multiple myeloma: no"."""
    participant = make_participant(site_a, primary_tumour="myeloma")
    before = _snapshot()
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        _record(nurse_a, participant, blend, _typed(eligible_answers, multiple_myeloma="no"))
    (message,) = exc.value.message_dict["multiple_myeloma"]
    assert "Primary tumour recorded at registration: Multiple myeloma" in message
    assert _snapshot() == before


def test_consent_answered_yes_without_consent_is_refused(
    blend, make_participant, nurse_a, site_a, eligible_answers
):
    participant = make_participant(site_a, consents={"cohort": True, "proms": True})
    before = _snapshot()
    with pytest.raises(ValidationError) as exc:
        _record(nurse_a, participant, blend, eligible_answers)
    assert set(exc.value.message_dict) == {"present_randomisation_consent"}
    assert _snapshot() == before


def test_derived_answers_are_stored_as_derived_without_identifying_data(
    blend, make_participant, nurse_a, site_a, eligible_answers
):
    born = timezone.localdate().replace(year=timezone.localdate().year - 18)
    participant = make_participant(site_a, date_of_birth=born)
    answers = _typed(
        eligible_answers, "age_over_18", "multiple_myeloma", "present_randomisation_consent"
    )
    screening = _record(nurse_a, participant, blend, answers)
    assert screening.is_eligible  # exactly 18 on the screening date
    rows = {a.criterion.code: a for a in screening.answers.select_related("criterion")}
    assert (rows["age_over_18"].answer, rows["age_over_18"].source) == ("yes", "derived")
    assert rows["age_over_18"].basis == {"age": 18, "min_years": 18}
    assert born.isoformat() not in str([a.basis for a in rows.values()])
    assert (rows["multiple_myeloma"].answer, rows["multiple_myeloma"].source) == ("no", "derived")
    assert rows["present_randomisation_consent"].source == "derived"
    assert rows["fit_for_radiosurgery"].source == "entered"
    # A typed answer that agrees with the stored data is accepted too.
    again = _record(nurse_a, participant, blend, _typed(eligible_answers, age_over_18="yes"))
    assert again.is_eligible


def test_17_years_364_days_is_not_eligible(
    blend, make_participant, nurse_a, site_a, eligible_answers
):
    today = timezone.localdate()
    participant = make_participant(
        site_a, date_of_birth=today.replace(year=today.year - 18) + timedelta(days=1)
    )
    screening = _record(nurse_a, participant, blend, _typed(eligible_answers, "age_over_18"))
    assert screening.verdict == "ineligible"
    assert screening.reasons == ["inclusion_not_met:age_over_18"]


def test_unknown_date_of_birth_the_nurse_must_answer(
    blend, make_participant, nurse_a, site_a, eligible_answers
):
    participant = factories.participant_without_identity(site=site_a)  # no date of birth
    before = _snapshot()
    with pytest.raises(ValidationError) as exc:
        _record(nurse_a, participant, blend, _typed(eligible_answers, "age_over_18"))
    assert set(exc.value.message_dict) == {"age_over_18"}
    assert _snapshot() == before
    screening = _record(nurse_a, participant, blend, _typed(eligible_answers, age_over_18="yes"))
    answer = screening.answers.get(criterion__code="age_over_18")
    assert (answer.answer, answer.source) == ("yes", "entered")


def test_the_date_of_birth_is_named_only_to_staff_of_the_site(
    blend, make_participant, make_user, site_a, eligible_answers
):
    """A sponsor-wide nurse may screen but must not see identifying data: only the age."""
    roaming = make_user("nurse", None, username="roaming_nurse")
    participant = make_participant(site_a, date_of_birth=date(2010, 1, 1))
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        _record(roaming, participant, blend, _typed(eligible_answers, age_over_18="yes"))
    (message,) = exc.value.message_dict["age_over_18"]
    assert "2010-01-01" not in message and "years old on the screening date" in message
    assert not getattr(exc.value, "names_identifying", False)


def test_a_screening_dated_after_the_death_is_refused(
    blend, make_participant, nurse_a, site_a, eligible_answers
):
    from cohort.models import Death

    participant = make_participant(site_a)
    died = timezone.localdate() - timedelta(days=3)
    Death.objects.create(
        participant=participant, died_on=died, source="hospital_record", recorded_by=nurse_a
    )
    before = _snapshot()
    with pytest.raises(ValidationError) as exc:
        _record(
            nurse_a,
            participant,
            blend,
            _typed(eligible_answers, "present_randomisation_consent"),
        )
    assert died.isoformat() in exc.value.message_dict["screened_on"][0]
    assert _snapshot() == before


# --- the screen ----------------------------------------------------------------------------------
def test_screening_screen_shows_derived_answers_and_refuses_a_contradiction(
    client, blend, make_participant, nurse_a, site_a, eligible_answers
):
    from cohort.models import IdentityAccess

    participant = make_participant(site_a, primary_tumour="myeloma", date_of_birth=date(2010, 1, 1))
    client.force_login(nurse_a)
    url = reverse("randomization:screening_create", args=["BLEND", participant.study_number])
    html = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="derived-age_over_18" data-answer="no"' in html
    assert 'data-testid="derived-multiple_myeloma" data-answer="yes"' in html
    assert "2010-01-01" not in html  # the age is shown, not the date of birth
    assert 'name="c_age_over_18"' not in html  # nothing to answer
    data = {"screened_on": timezone.localdate().isoformat()}
    data.update({f"c_{k}": v for k, v in eligible_answers.items()})
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Date of birth 2010-01-01" in response.content.decode() or "Geboortedatum" in (
        response.content.decode()
    )
    assert Screening.objects.count() == 0
    # The refusal showed the date of birth: that display is attributable.
    assert IdentityAccess.objects.filter(user=nurse_a, participant=participant).count() == 1


def test_live_verdict_follows_the_screening_date(client, blend, make_participant, nurse_a, site_a):
    """18 today, 17 yesterday: the derived row is swapped in with the verdict."""
    today = timezone.localdate()
    participant = make_participant(site_a, date_of_birth=today.replace(year=today.year - 18))
    client.force_login(nurse_a)
    url = reverse("randomization:screening_verdict", args=["BLEND", participant.study_number])
    for on, answer in ((today, "yes"), (today - timedelta(days=1), "no")):
        html = client.post(
            url, {"screened_on": on.isoformat()}, HTTP_HX_REQUEST="true"
        ).content.decode()
        assert (
            f'data-testid="derived-age_over_18" data-answer="{answer}" hx-swap-oob="true"' in html
        )
    assert Screening.objects.count() == 0
