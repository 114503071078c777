"""Clinical case report form REST API: one operation per view, scoped through crf.selectors,
writes through crf.services.

- ``GET participants/{study_number}/forms/`` — the expected forms with status;
- ``GET|POST participants/{study_number}/forms/{form_code}/records/`` — list / create;
- ``GET|PATCH participants/{study_number}/forms/{form_code}/records/{id}/`` — read / change
  (``If-Match: "<revision>"`` required: missing 428, stale 412 naming who changed the
  record and when; a completed record changes only with ``reason``);
- ``POST …/records/{id}/void/`` and ``POST participants/{study_number}/forms/{form_code}/not-done/``;
- ``GET form-definitions/`` and ``GET form-definitions/{code}/{version}/``.

Site staff of the participant's site (nurses, investigators) write; investigators, monitors
(data managers) and statisticians read, statisticians pseudonymised (possibly identifying
free texts come back as null); administrators without a clinical role read nothing. A
participant of another site is a 404 on every route, never a 403.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import CLINICAL_READERS, DATA_ENTRY, access_for, acting_user
from core.apis import Conflict, HasRole
from core.middleware import audit_user
from core.schema import ServerRule
from crf import expected, selectors, services
from crf.models import ClinicalRecord, FormDefinition

STUDY_NUMBER = OpenApiParameter("study_number", str, OpenApiParameter.PATH)
FORM_CODE = OpenApiParameter(
    "form_code", str, OpenApiParameter.PATH, enum=list(expected.FORM_CODES)
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description='The record revision the change is based on, as its ETag: "3".',
)


# --- output ----------------------------------------------------------------------------------
class DefinitionRefOutput(serializers.Serializer):
    code = serializers.CharField()
    version = serializers.CharField()


class SignatureOutput(serializers.Serializer):
    signed_by = serializers.CharField()
    printed_name = serializers.CharField()
    signed_at = serializers.DateTimeField()
    meaning = serializers.CharField()
    revision = serializers.IntegerField(allow_null=True)


class InvalidatedSignatureOutput(SignatureOutput):
    invalidated_at = serializers.DateTimeField()
    invalidated_by = serializers.CharField(allow_null=True)
    invalidated_reason = serializers.CharField()


class LockOutput(serializers.Serializer):
    level = serializers.ChoiceField(choices=["record", "participant", "trial"])
    locked_by = serializers.CharField()
    locked_at = serializers.DateTimeField()


class ReviewOutput(serializers.Serializer):
    """Read-only: what data review has done to the record. Queries are raised and answered
    through /api/v1/queries/; signing, locking and verification happen on the review
    screens."""

    open_queries = serializers.IntegerField(help_text="Open or answered queries.")
    signature = SignatureOutput(allow_null=True, help_text="The valid signature, if any.")
    signature_invalidated = InvalidatedSignatureOutput(
        allow_null=True, help_text="When unsigned: the last signature a change invalidated."
    )
    lock = LockOutput(
        allow_null=True,
        help_text="The lock that applies: the record's, the casebook's or the trial's.",
    )
    verified_items = serializers.ListField(child=serializers.CharField())
    sdv_key_items = serializers.ListField(
        child=serializers.CharField(), help_text="The items the definition asks monitors to verify."
    )
    sdv = serializers.ChoiceField(
        choices=["done", "partial", "none"],
        allow_null=True,
        help_text="Key items verified: all, some, none; null when the form names none.",
    )


class RecordOutput(serializers.Serializer):
    id = serializers.IntegerField()
    study_number = serializers.CharField(source="participant.study_number")
    form_code = serializers.CharField()
    occurrence = serializers.CharField()
    definition = DefinitionRefOutput()
    status = serializers.CharField()
    status_reason = serializers.CharField()
    revision = serializers.IntegerField()
    # a declared field named like Serializer.data (the stub sees an override)
    data = serializers.DictField(  # type: ignore[assignment]
        help_text="Item code → value; see the form definition."
    )
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username")
    updated_at = serializers.DateTimeField()
    updated_by = serializers.CharField(source="updated_by.username")
    completed_at = serializers.DateTimeField(allow_null=True)
    review = ReviewOutput(source="review_dict", read_only=True)


class RecordListOutput(serializers.Serializer):
    study_number = serializers.CharField()
    form_code = serializers.CharField()
    count = serializers.IntegerField()
    results = RecordOutput(many=True)


class ExpectedFormOutput(serializers.Serializer):
    form_code = serializers.CharField()
    title = serializers.DictField(child=serializers.CharField())
    occurs = serializers.CharField()
    occurrence = serializers.CharField(allow_null=True, help_text="null: 'add another'.")
    status = serializers.CharField()
    required = serializers.BooleanField()  # type: ignore[assignment]  # a field, as above
    window_start = serializers.DateField(allow_null=True)
    window_end = serializers.DateField(allow_null=True)
    record_id = serializers.IntegerField(allow_null=True)
    revision = serializers.IntegerField(allow_null=True)
    url = serializers.CharField(allow_null=True)


class ExpectedFormsOutput(serializers.Serializer):
    study_number = serializers.CharField()
    arm = serializers.CharField()
    results = ExpectedFormOutput(many=True)


class DefinitionOutput(serializers.Serializer):
    code = serializers.CharField()
    version = serializers.CharField()
    kind = serializers.CharField()
    occurs = serializers.CharField()
    title = serializers.DictField(child=serializers.CharField())
    sha256 = serializers.CharField()
    loaded_at = serializers.DateTimeField()


class DefinitionDetailOutput(DefinitionOutput):
    content = serializers.DictField()


# --- input -----------------------------------------------------------------------------------
OCCURRENCE_RULE = ServerRule(
    "a timepoint code of the form (follow-up) or a number from 1 (events and logs)"
)
ITEMS_RULE = ServerRule(
    "each item as its form definition says (kind, range, code list, dates not in the future); "
    "completion needs every applicable required item"
)


class RecordCreateInput(serializers.Serializer):
    occurrence = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=20,
        help_text="Timepoint code of a follow-up form; the next number of an event or log "
        "when omitted.",
        validators=[OCCURRENCE_RULE],
    )
    data = serializers.DictField(  # type: ignore[assignment]  # a field named data
        help_text="Item code → value.", validators=[ITEMS_RULE]
    )
    complete = serializers.BooleanField(default=False)


class RecordChangeInput(serializers.Serializer):
    data = serializers.DictField(  # type: ignore[assignment]  # a field, as above
        required=False,
        default=dict,
        help_text="The changed items; null clears an item.",
        validators=[ITEMS_RULE],
    )
    complete = serializers.BooleanField(required=False, allow_null=True, default=None)
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        default="",
        help_text="Reason for change: required for a completed form.",
    )


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class NotDoneInput(serializers.Serializer):
    server_rules = (
        "only an expected form is marked not done, not a log (reported under form_code)",
    )

    occurrence = serializers.CharField(
        required=False, allow_null=True, max_length=20, validators=[OCCURRENCE_RULE]
    )
    reason = serializers.CharField(max_length=2000)


# --- helpers ---------------------------------------------------------------------------------
class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_detail = 'Send If-Match with the record\'s revision (its ETag, e.g. "3").'
    default_code = "precondition_required"


def api_user(request: Request) -> Any:
    """The acting user of a clinical API request, named on the audit trail of its writes
    (the records and the queries API share it)."""
    user = acting_user(request)
    audit_user(user)
    return user


def valid_input(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """``data`` validated by ``serializer_class`` (400 with field errors otherwise)."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    return valid_input(serializer_class, request.data)


def _if_match(request: Request) -> int:
    header = request.headers.get("If-Match", "").strip()
    if not header:
        raise PreconditionRequired()
    value = header.removeprefix("W/").strip('"')
    if not value.isdigit():
        raise exceptions.ValidationError({"If-Match": ['Give the revision as "3".']})
    return int(value)


def _stale(refusal: services.RecordChanged) -> Conflict:
    exc = Conflict(
        {
            "detail": str(refusal.message),
            "reasons": refusal.reasons,
            "changed_by": refusal.changed_by,
            "changed_at": refusal.changed_at.isoformat(),
            "revision": str(refusal.revision),
        }
    )
    exc.status_code = status.HTTP_412_PRECONDITION_FAILED
    return exc


def _record_url(record: ClinicalRecord) -> str:
    return reverse(
        "api:form-record",
        args=[record.participant.study_number, record.form_code, record.pk],
    )


def _record_response(user: Any, record: ClinicalRecord, *, code: int = 200) -> Response:
    record.review_dict = selectors.record_review_state(record).as_dict()  # type: ignore[attr-defined]
    data = dict(RecordOutput().to_representation(record))
    data["data"] = selectors.record_data_for(user, record)
    response = Response(data, status=code)
    response["ETag"] = f'"{record.revision}"'
    if code == status.HTTP_201_CREATED:
        response["Location"] = _record_url(record)
    return response


def _record(
    user: Any, study_number: str, form_code: str, pk: int, *, for_write: bool = False
) -> ClinicalRecord:
    record = selectors.clinical_record_get(
        user=user, pk=pk, for_write=for_write, study_number=study_number
    )
    if record.form_code != form_code:
        raise Http404
    return record


def _writable_allocation(user: Any, study_number: str, form_code: str) -> Any:
    if form_code not in expected.FORM_CODES:
        raise Http404
    participant, allocation = selectors.participant_allocation(user=user, study_number=study_number)
    if not access_for(user).can_write_site(participant.site_id):
        raise exceptions.PermissionDenied()
    return allocation


# --- views -----------------------------------------------------------------------------------
class ParticipantFormsApi(APIView):
    """The expected clinical forms of one participant with their status."""

    permission_classes = [HasRole]
    allowed_roles = CLINICAL_READERS

    @extend_schema(parameters=[STUDY_NUMBER], responses=ExpectedFormsOutput)
    def get(self, request: Request, study_number: str) -> Response:
        user = api_user(request)
        participant, allocation = selectors.participant_allocation(
            user=user, study_number=study_number
        )
        cells = selectors.form_cells(allocation=allocation)
        from crf import instruments

        rows = []
        for cell in cells:
            record = cell.record
            rows.append(
                {
                    "form_code": cell.form_code,
                    "title": dict(instruments.load(cell.form_code).title),
                    "occurs": cell.occurs,
                    "occurrence": cell.occurrence,
                    "status": cell.status,
                    "required": cell.required,
                    "window_start": cell.window_start,
                    "window_end": cell.window_end,
                    "record_id": record.pk if record else None,
                    "revision": record.revision if record else None,
                    "url": reverse(
                        "api:form-record",
                        args=[participant.study_number, cell.form_code, record.pk],
                    )
                    if record
                    else None,
                }
            )
        arm = "intervention" if allocation.arm.is_intervention else "control"
        return Response(
            ExpectedFormsOutput(
                {"study_number": participant.study_number, "arm": arm, "results": rows}
            ).data
        )


class FormRecordsApi(APIView):
    """The records of one form of a participant; POST starts one (draft or complete)."""

    permission_classes = [HasRole]
    allowed_roles = CLINICAL_READERS

    @extend_schema(
        parameters=[STUDY_NUMBER, FORM_CODE],
        responses=RecordListOutput,
        operation_id="participant_form_records_list",
    )
    def get(self, request: Request, study_number: str, form_code: str) -> Response:
        user = api_user(request)
        allocation, qs = selectors.clinical_records(
            user=user, study_number=study_number, form_code=form_code
        )
        results = []
        output = RecordOutput()  # one instance: its fields are built once, not per record
        for record in qs:
            record.review_dict = selectors.review_state(  # type: ignore[attr-defined]
                record, record.form_code
            ).as_dict()
            row = dict(output.to_representation(record))
            row["data"] = selectors.record_data_for(user, record)
            results.append(row)
        return Response(
            {
                "study_number": allocation.participant.study_number,
                "form_code": form_code,
                "count": len(results),
                "results": results,
            }
        )

    @extend_schema(
        parameters=[STUDY_NUMBER, FORM_CODE],
        request=RecordCreateInput,
        responses={201: RecordOutput},
    )
    def post(self, request: Request, study_number: str, form_code: str) -> Response:
        user = api_user(request)
        allocation = _writable_allocation(user, study_number, form_code)
        values = _valid(RecordCreateInput, request)
        record = services.clinical_record_create(
            user=user,
            allocation=allocation,
            form_code=form_code,
            data=values["data"],
            occurrence=values.get("occurrence"),
            complete=values["complete"],
        )
        return _record_response(user, _fresh(record), code=status.HTTP_201_CREATED)


def _fresh(record: ClinicalRecord) -> ClinicalRecord:
    return ClinicalRecord.objects.select_related(
        "definition", "updated_by", "created_by", "participant__site"
    ).get(pk=record.pk)


class FormRecordApi(APIView):
    """One record: read it (ETag = revision) or change it (If-Match)."""

    permission_classes = [HasRole]
    allowed_roles = CLINICAL_READERS

    @extend_schema(parameters=[STUDY_NUMBER, FORM_CODE], responses=RecordOutput)
    def get(self, request: Request, study_number: str, form_code: str, pk: int) -> Response:
        user = api_user(request)
        return _record_response(user, _record(user, study_number, form_code, pk))

    @extend_schema(
        parameters=[STUDY_NUMBER, FORM_CODE, IF_MATCH],
        request=RecordChangeInput,
        responses=RecordOutput,
    )
    def patch(self, request: Request, study_number: str, form_code: str, pk: int) -> Response:
        user = api_user(request)
        record = _record(user, study_number, form_code, pk, for_write=True)
        revision = _if_match(request)
        values = _valid(RecordChangeInput, request)
        try:
            record = services.clinical_record_update(
                user=user,
                record=record,
                revision=revision,
                data=values["data"],
                complete=values["complete"],
                reason=values["reason"],
            )
        except services.RecordChanged as refusal:
            raise _stale(refusal) from None
        return _record_response(user, _fresh(record))


class FormRecordVoidApi(APIView):
    """Void an event or log entry made in error (If-Match; a reason)."""

    permission_classes = [HasRole]
    allowed_roles = DATA_ENTRY

    @extend_schema(
        parameters=[STUDY_NUMBER, FORM_CODE, IF_MATCH],
        request=ReasonInput,
        responses=RecordOutput,
    )
    def post(self, request: Request, study_number: str, form_code: str, pk: int) -> Response:
        user = api_user(request)
        record = _record(user, study_number, form_code, pk, for_write=True)
        revision = _if_match(request)
        values = _valid(ReasonInput, request)
        try:
            record = services.clinical_record_void(
                user=user, record=record, revision=revision, reason=values["reason"]
            )
        except services.RecordChanged as refusal:
            raise _stale(refusal) from None
        return _record_response(user, _fresh(record))


class FormNotDoneApi(APIView):
    """Record that an expected form was not done (e.g. a visit missed), with the reason."""

    permission_classes = [HasRole]
    allowed_roles = DATA_ENTRY

    @extend_schema(
        parameters=[STUDY_NUMBER, FORM_CODE],
        request=NotDoneInput,
        responses={201: RecordOutput},
    )
    def post(self, request: Request, study_number: str, form_code: str) -> Response:
        user = api_user(request)
        allocation = _writable_allocation(user, study_number, form_code)
        values = _valid(NotDoneInput, request)
        existing = (
            ClinicalRecord.objects.filter(
                participant_id=allocation.participant_id,
                trial_id=allocation.trial_id,
                form_code=form_code,
                occurrence=values.get("occurrence") or "1",
            )
            .values_list("revision", flat=True)
            .first()
        )
        revision = _if_match(request) if existing is not None else None
        try:
            record = services.clinical_record_not_done(
                user=user,
                allocation=allocation,
                form_code=form_code,
                occurrence=values.get("occurrence"),
                reason=values["reason"],
                revision=revision,
            )
        except services.RecordChanged as refusal:
            raise _stale(refusal) from None
        return _record_response(
            user, _fresh(record), code=status.HTTP_200_OK if existing else status.HTTP_201_CREATED
        )


def _definitions() -> QuerySet[FormDefinition]:
    return FormDefinition.objects.order_by("kind", "code", "-loaded_at")


class FormDefinitionsApi(APIView):
    """Every registered definition version (questionnaires and clinical forms)."""

    permission_classes = [HasRole]
    allowed_roles = CLINICAL_READERS

    @extend_schema(responses=DefinitionOutput(many=True))
    def get(self, request: Request) -> Response:
        api_user(request)
        return Response(DefinitionOutput(_definitions(), many=True).data)


class FormDefinitionApi(APIView):
    """One definition version with its content as shipped."""

    permission_classes = [HasRole]
    allowed_roles = CLINICAL_READERS

    @extend_schema(
        parameters=[
            OpenApiParameter("code", str, OpenApiParameter.PATH),
            OpenApiParameter("version", str, OpenApiParameter.PATH),
        ],
        responses=DefinitionDetailOutput,
    )
    def get(self, request: Request, code: str, version: str) -> Response:
        api_user(request)
        definition = _definitions().filter(code=code, version=version).first()
        if definition is None:
            raise Http404
        return Response(DefinitionDetailOutput(definition).data)
