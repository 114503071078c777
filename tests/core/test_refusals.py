"""The one refusal type and its two adapters: field errors next to the fields of an HTML
form (the rest on top), and the API's 400 / 403 / 409 bodies from the one handler branch;
the one write-access check, the one "not in the future" rule, and durable top-level
services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone, translation
from rest_framework.test import APIRequestFactory

from core.access import require_write
from core.apis import NotFutureDate, exception_handler
from core.forms import NotFutureDateField, add_refusal, refusal_notice
from core.models import Site
from core.refusals import DateInFuture, Invalid, NotAllowed, Refusal, not_future
from core.services import top_level


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


class Conflicting(Refusal):
    code = "conflicting"


class FieldRefusal(Invalid):
    code = "bad_start"
    field = "start"


class StartForm(forms.Form):
    start = forms.DateField()
    note = forms.CharField(required=False)


def _validated_form() -> StartForm:
    form = StartForm({"start": "2024-01-01", "note": ""})
    assert form.is_valid()
    return form


# --- the type ------------------------------------------------------------------------------------
def test_a_refusal_carries_message_reasons_and_field_errors():
    plain = Conflicting("Not now.")
    assert (str(plain), plain.reasons, plain.field_errors) == ("Not now.", ["conflicting"], {})
    assert plain.non_field_errors == ["Not now."] and plain.status_code == 409
    assert Conflicting("x", reasons=["a", "b"]).reasons == ["a", "b"]
    named = FieldRefusal("Too early.")
    assert named.field_errors == {"start": ["Too early."]} and named.non_field_errors == []
    assert named.status_code == 400
    assert Invalid("Bad.", field="note").field_errors == {"note": ["Bad."]}
    many = Invalid(errors={"start": ["a"], "__all__": ["b"], "non_field_errors": "c"})
    assert many.field_errors == {"start": ["a"]} and many.non_field_errors == ["b", "c"]
    assert many.messages == ["b", "c", "a"]


def test_a_model_clean_error_becomes_a_refusal_by_field():
    exc = ValidationError({"start": ["Enter a date."], "__all__": ["Inconsistent."]})
    refusal = Invalid.from_validation_error(exc)
    assert refusal.field_errors == {"start": ["Enter a date."]}
    assert refusal.non_field_errors == ["Inconsistent."]


def test_nested_moves_field_errors_under_one_key_and_keeps_the_class():
    refusal = FieldRefusal("Too early.")
    refusal.field_errors["other"] = ["x"]
    nested = refusal.nested(fields=["start"], under="identity")
    assert type(nested) is FieldRefusal
    assert nested.field_errors == {"other": ["x"], "identity": {"start": ["Too early."]}}
    assert refusal.field_errors == {"start": ["Too early."], "other": ["x"]}  # unchanged
    assert refusal.nested(fields=["nothing"], under="identity") is refusal


# --- the form adapter ------------------------------------------------------------------------
def test_field_errors_go_next_to_their_field_and_the_rest_on_top():
    form = _validated_form()
    add_refusal(form, Invalid(errors={"start": ["Too early."], "unknown": ["Odd."]}))
    assert form.errors["start"] == ["Too early."]
    assert form.non_field_errors() == ["Odd."]
    form = _validated_form()
    add_refusal(form, Conflicting("The trial is closed."))
    assert form.non_field_errors() == ["The trial is closed."]
    assert "start" not in form.errors


def test_the_adapter_takes_a_django_validation_error_too():
    form = _validated_form()
    add_refusal(form, ValidationError({"note": ["No HTML."], "__all__": ["Whole form."]}))
    assert form.errors["note"] == ["No HTML."]
    assert form.non_field_errors() == ["Whole form."]
    form = _validated_form()
    add_refusal(form, ValidationError("Plain."))
    assert form.non_field_errors() == ["Plain."]


def test_a_form_may_rename_the_services_fields():
    class Renaming(StartForm):
        def refusal_field(self, name: str) -> str:
            return {"begins_on": "start"}.get(name, name)

    form = Renaming({"start": "2024-01-01"})
    assert form.is_valid()
    add_refusal(form, Invalid("Too early.", field="begins_on"))
    assert form.errors["start"] == ["Too early."]


def test_an_access_refusal_is_not_a_form_error_but_a_403():
    form = _validated_form()
    with pytest.raises(PermissionDenied):
        add_refusal(form, NotAllowed())
    with pytest.raises(PermissionDenied):
        refusal_notice(NotAllowed())
    assert not form.errors
    assert refusal_notice(Conflicting("Not now.")) == "Not now."


# --- the API handler -------------------------------------------------------------------------
def _body(exc):
    request = APIRequestFactory().post("/api/v1/x/")
    response = exception_handler(exc, {"request": request, "view": None})
    return response.status_code, response.data


def test_an_input_refusal_answers_400_with_its_field_errors():
    assert _body(FieldRefusal("Too early.")) == (
        400,
        {"detail": "Invalid input.", "errors": {"start": ["Too early."]}},
    )
    assert _body(Invalid("Answer at least one.")) == (
        400,
        {
            "detail": "Answer at least one.",
            "errors": {"non_field_errors": ["Answer at least one."]},
        },
    )
    nested = FieldRefusal("Too early.").nested(fields=["start"], under="identity")
    assert _body(nested)[1]["errors"] == {"identity": {"start": ["Too early."]}}


def test_a_state_refusal_answers_409_with_its_reason_codes():
    assert _body(Conflicting("Not eligible.", reasons=["not_screened", "consent_c_missing"])) == (
        409,
        {"detail": "Not eligible.", "errors": {"reasons": ["not_screened", "consent_c_missing"]}},
    )


def test_an_access_refusal_answers_403_with_its_message():
    assert _body(NotAllowed("Your role does not allow data entry at this site.")) == (
        403,
        {"detail": "Your role does not allow data entry at this site.", "errors": {}},
    )


# --- the one write check ---------------------------------------------------------------------
@pytest.mark.django_db
def test_write_access_is_data_entry_at_that_site(nurse_a, nurse_b, monitor, site_a, make_user):
    require_write(nurse_a, site_a.pk)
    sponsor_nurse = make_user("nurse", None)
    require_write(sponsor_nurse, site_a.pk)
    for user in (nurse_b, monitor):
        with pytest.raises(NotAllowed) as exc:
            require_write(user, site_a.pk)
        assert isinstance(exc.value, PermissionDenied) and exc.value.status_code == 403


# --- the one "not in the future" rule -----------------------------------------------------------
def test_not_future_refuses_only_dates_after_today_with_one_message():
    today = timezone.localdate()
    not_future(today, field="day")
    not_future(None, field="day")
    with pytest.raises(DateInFuture) as exc:
        not_future(today + timedelta(days=1), field="day")
    assert exc.value.code == "date_in_future"
    assert exc.value.field_errors == {"day": ["This date is in the future."]}


def test_the_form_and_api_date_fields_apply_the_same_rule():
    from rest_framework import serializers

    tomorrow = timezone.localdate() + timedelta(days=1)
    with pytest.raises(forms.ValidationError) as form_error:
        NotFutureDateField().clean(tomorrow.isoformat())
    assert form_error.value.messages == ["This date is in the future."]
    assert form_error.value.code == "date_in_future"
    field = NotFutureDate()
    with pytest.raises(serializers.ValidationError) as api_error:
        field.run_validation(tomorrow.isoformat())
    assert [str(m) for m in api_error.value.detail] == ["This date is in the future."]
    assert NotFutureDateField().clean(timezone.localdate().isoformat()) == timezone.localdate()


# --- durable top-level services ------------------------------------------------------------------
@top_level
def _make_site(*, code: str) -> Site:
    return Site.objects.create(code=code, name=code)


@pytest.mark.django_db
def test_a_top_level_service_refuses_to_run_inside_another_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        _make_site(code="inside")
    assert not Site.objects.filter(code="inside").exists()
    with transaction.atomic():
        _make_site.nested(code="joined")
    _make_site(code="alone")
    assert set(
        Site.objects.filter(code__in=["joined", "alone"]).values_list("code", flat=True)
    ) == {
        "joined",
        "alone",
    }
    assert _make_site.__name__ == "_make_site"
