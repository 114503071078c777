"""Arbitrary JSON sent to every cohort write endpoint: a 400 with field errors (or a refusal),
never a 500, and nothing written unless the answer is 201."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohort.models import ConsentRecord, Death, Identity, Participant, Withdrawal

pytestmark = pytest.mark.django_db

KEYS = [
    "site",
    "sex",
    "primary_tumour",
    "referring_department",
    "bone_metastases_diagnosed_on",
    "identity",
    "given_name",
    "hospital_number",
    "date_of_birth",
    "element",
    "answer",
    "given_on",
    "form_version",
    "mode",
    "scope",
    "effective_on",
    "reason",
    "died_on",
    "source",
    "study_number",
    "site_id",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "2024-01-01",
            "2999-12-31",
            "site-a",
            "female",
            "cohort",
            "trial",
            "<b>x</b>",
            "x" * 10_000,
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=8,
)
bodies = st.one_of(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8), json_values)


def _counts():
    return (
        Participant.objects.count(),
        Identity.objects.count(),
        ConsentRecord.objects.count(),
        Withdrawal.objects.count(),
        Death.objects.count(),
    )


@pytest.mark.parametrize("tail", ["", "consents/", "withdrawals/", "death/", "PATCH"])
def test_random_json_never_causes_a_500(api_client_for, nurse_a, participant_a, form_version, tail):
    client = api_client_for(nurse_a)
    sn = participant_a.study_number

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=bodies)
    def check(body):
        before = _counts()
        if tail == "PATCH":
            resp = client.patch(f"/api/v1/participants/{sn}/", body, format="json")
        elif tail == "":
            resp = client.post("/api/v1/participants/", body, format="json")
        else:
            resp = client.post(f"/api/v1/participants/{sn}/{tail}", body, format="json")
        assert resp.status_code in (200, 201, 400, 403, 404), (resp.status_code, body)
        if resp.status_code == 400:
            payload = resp.json()
            assert payload["detail"] and isinstance(payload["errors"], dict)
            assert _counts() == before

    check()
