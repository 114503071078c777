"""Cohort REST API (``/api/v1/participants/...``): one view per operation, input and
output serializers, scoped reads through cohort.selectors, writes through cohort.services.

- Site staff see the identifying data of their own site's participants (every such
  response is logged as an identity access); statisticians and other sponsor-wide
  readers get :class:`PseudonymisedParticipantOutput`, which has no identifying field.
- Another site's participant is a 404, never a 403.
- Input serializers refuse every key they do not declare, so ``site``,
  ``study_number`` or audit fields in a PATCH/POST change nothing (400).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cohort import selectors, services
from cohort.models import (
    ConsentElement,
    ConsentFormVersion,
    ConsentMode,
    ConsentRecord,
    Death,
    DeathSource,
    IdentityAccess,
    Language,
    Participant,
    PrimaryTumour,
    ReferringDepartment,
    Sex,
    Withdrawal,
    WithdrawalScope,
)
from cohort.rules import (
    ParticipantStatus,
    Status,
    search_safe_in_url,
    validate_hospital_number,
    validate_no_markup,
    validate_person_name,
    validate_phone,
)
from core.access import CLINICAL_READERS, DATA_ENTRY, access_for, acting_user, require_write
from core.apis import NotFutureDate
from core.models import Site, User
from core.pagination import Pagination
from core.refusals import Refusal
from core.schema import ServerRule

T = TypeVar("T")


# --- input helpers --------------------------------------------------------------------------
class StrictInput(serializers.Serializer):
    """Refuses keys it does not declare (e.g. ``site``, ``study_number``, ``recorded_by``)."""

    strict_input = True  # the schema says additionalProperties: false

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": [_("Send a JSON object.")]}, code="invalid"
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {key: [_("This field cannot be set.")] for key in unknown}, code="read_only"
            )
        return super().to_internal_value(data)


def _reason_field(required: bool = True) -> serializers.CharField:
    return serializers.CharField(
        max_length=2000,
        required=required,
        allow_blank=not required,
        validators=[
            validate_no_markup,
            ServerRule("no HTML, script or control characters"),
            ServerRule("no identifier of the participant (name, hospital record number)"),
        ],
    )


# --- output ---------------------------------------------------------------------------------
class IdentityOutput(serializers.Serializer):
    given_name = serializers.CharField()
    family_name = serializers.CharField()
    date_of_birth = serializers.DateField()
    hospital_number = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    preferred_language = serializers.CharField()


class WithdrawalOutput(serializers.ModelSerializer):
    class Meta:
        model = Withdrawal
        fields = ["id", "scope", "effective_on", "reason", "recorded_at"]


class DeathOutput(serializers.ModelSerializer):
    class Meta:
        model = Death
        fields = ["died_on", "source", "recorded_at"]


class ConsentFormVersionOutput(serializers.ModelSerializer):
    # a plain string: the same nl/en choice set is already the PreferredLanguage enum
    language = serializers.CharField(help_text="nl or en")

    class Meta:
        model = ConsentFormVersion
        fields = ["id", "code", "version", "language", "effective_from", "effective_to"]


class ConsentRecordOutput(serializers.ModelSerializer):
    form_version = ConsentFormVersionOutput()
    superseded_by = serializers.IntegerField(source="superseded_by_id", allow_null=True)

    class Meta:
        model = ConsentRecord
        fields = [
            "id",
            "element",
            "answer",
            "given_on",
            "form_version",
            "mode",
            "recorded_at",
            "superseded_by",
            "correction_reason",
        ]


class PseudonymisedParticipantOutput(serializers.Serializer):
    """No identifying field at all: for statisticians and sponsor-wide readers."""

    closed_output = True  # the schema says additionalProperties: false (no `identity`)

    study_number = serializers.CharField()
    site = serializers.CharField(source="site.code")
    sex = serializers.CharField()
    year_of_birth = serializers.IntegerField()
    primary_tumour = serializers.CharField()
    bone_metastases_diagnosed_on = serializers.DateField(allow_null=True)
    referring_department = serializers.CharField()
    registered_at = serializers.DateTimeField()
    status = serializers.SerializerMethodField()
    withdrawn_scopes = serializers.SerializerMethodField()
    died_on = serializers.SerializerMethodField()

    def _status(self, obj: Participant) -> ParticipantStatus:
        # DRF's context is the dict the view passed (the stubs declare a read-only Mapping)
        cache = cast(dict[str, Any], self.context).setdefault("_status", {})
        if obj.pk not in cache:
            cache[obj.pk] = selectors.status_of(obj)
        return cache[obj.pk]

    def get_status(self, obj: Participant) -> str:
        return self._status(obj).code

    def get_withdrawn_scopes(self, obj: Participant) -> list[str]:
        return list(self._status(obj).withdrawn_scopes)

    def get_died_on(self, obj: Participant) -> str | None:
        death = self._status(obj).died_on
        return death.isoformat() if death else None


@extend_schema_serializer(component_name="IdentityOutput")
class OwnSiteIdentityOutput(IdentityOutput):
    # ``identity`` of a participant: shown at the user's identifying sites, else null. One
    # nested serializer bound once for the whole list, not one built per row (that left a
    # few thousand objects per page of 50 in reference cycles, which only the cyclic
    # garbage collector frees: its pauses were the list's p95). No docstring: the schema
    # shows the same IdentityOutput component as before.

    def get_attribute(self, instance: Participant) -> Any:
        if instance.site_id not in self.context["identifying_sites"]:
            return None
        return getattr(instance, "identity", None)


class StaffParticipantOutput(PseudonymisedParticipantOutput):
    """Site staff: the identifying data of their own site's participants (else null)."""

    identity = OwnSiteIdentityOutput(source="*", allow_null=True, read_only=True)


class ParticipantDetailOutput(StaffParticipantOutput):
    consents = ConsentRecordOutput(many=True, source="consents_list")
    withdrawals = WithdrawalOutput(many=True, source="withdrawals_list")


class PseudonymisedParticipantDetailOutput(PseudonymisedParticipantOutput):
    consents = ConsentRecordOutput(many=True, source="consents_list")
    withdrawals = WithdrawalOutput(many=True, source="withdrawals_list")


def participant_schema(*, detail: bool = False, many: bool = False) -> PolymorphicProxySerializer:
    """What a participant response is, for the schema: site staff get the object with
    ``identity``; statisticians and other readers without identifying rights get the
    pseudonymised object, which has no ``identity`` key at all (exactly one matches)."""
    return PolymorphicProxySerializer(
        component_name="ParticipantDetail" if detail else "Participant",
        serializers=(
            [ParticipantDetailOutput, PseudonymisedParticipantDetailOutput]
            if detail
            else [StaffParticipantOutput, PseudonymisedParticipantOutput]
        ),
        resource_type_field_name=None,
        many=many,
    )


class ParticipantPageOutput(serializers.Serializer):
    """One page of participants (``cursor`` / ``page_size`` query parameters; follow
    ``next`` and ``previous``, null at either end)."""

    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = participant_schema(many=True)


def _output_class(user: User, *, detail: bool = False) -> type[PseudonymisedParticipantOutput]:
    if access_for(user).identifying_site_ids():
        return ParticipantDetailOutput if detail else StaffParticipantOutput
    return PseudonymisedParticipantDetailOutput if detail else PseudonymisedParticipantOutput


def _render_participant(request: Request, participant: Participant, *, code: int = 200) -> Response:
    """Detail representation; logs the identity access when identifying data is included."""
    user = acting_user(request)
    access = access_for(user)
    # per-instance lists for the output's ``source``\ s, not declared attributes of the model
    setattr(  # noqa: B010
        participant, "consents_list", selectors.participant_consents(participant=participant)
    )
    setattr(  # noqa: B010
        participant, "withdrawals_list", selectors.participant_withdrawals(participant=participant)
    )
    output = _output_class(user, detail=True)
    data = output(
        participant,
        context={"identifying_sites": access.identifying_site_ids()},
    ).data
    if data.get("identity"):
        services.identity_access_log(
            user=user, participants=[participant], context=IdentityAccess.Context.API
        )
    return Response(data, status=code)


def _identity_errors_nested(call: Callable[[], T]) -> T:
    """Run a service call; refusals about identifying fields are reported under ``identity``,
    as the input nests them there (``core.apis.exception_handler`` answers)."""
    try:
        return call()
    except Refusal as exc:
        nested = exc.nested(fields=services.IDENTITY_FIELDS, under="identity")
        if nested is exc:
            raise
        raise nested from exc


# --- input ----------------------------------------------------------------------------------
NAME_RULES: list[Callable[[str], None]] = [
    validate_person_name,
    ServerRule("letters (any script), spaces, apostrophes, dots and hyphens only"),
]
FORM_VERSION_RULE = ServerRule("the id of an existing consent form version")


class IdentityInput(StrictInput):
    given_name = serializers.CharField(max_length=100, validators=NAME_RULES)
    family_name = serializers.CharField(max_length=100, validators=NAME_RULES)
    date_of_birth = NotFutureDate()
    hospital_number = serializers.CharField(
        max_length=20,
        validators=[
            validate_hospital_number,
            ServerRule("3 to 20 letters, digits or hyphens, starting with a letter or digit"),
            ServerRule("not already registered at the site"),
        ],
    )
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    phone = serializers.CharField(
        max_length=20,
        required=False,
        allow_blank=True,
        default="",
        validators=[
            validate_phone,
            ServerRule("digits, spaces, brackets and hyphens, an optional leading +; 6 to 20"),
        ],
    )
    preferred_language = serializers.ChoiceField(
        choices=Language.choices, required=False, default=Language.DUTCH
    )


class ParticipantRegisterInput(StrictInput):
    site = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Site.objects.filter(is_active=True),
        validators=[ServerRule("the code of an active site where you enter data")],
    )
    sex = serializers.ChoiceField(choices=Sex.choices)
    primary_tumour = serializers.ChoiceField(choices=PrimaryTumour.choices)
    bone_metastases_diagnosed_on = NotFutureDate(required=False, allow_null=True, default=None)
    referring_department = serializers.ChoiceField(choices=ReferringDepartment.choices)
    identity = IdentityInput()


class IdentityPatchInput(IdentityInput):
    min_properties = 1  # an empty object changes nothing and is refused

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class ParticipantPatchInput(StrictInput):
    min_properties = 2  # the reason and at least one field to change

    reason = _reason_field()
    sex = serializers.ChoiceField(choices=Sex.choices, required=False)
    primary_tumour = serializers.ChoiceField(choices=PrimaryTumour.choices, required=False)
    bone_metastases_diagnosed_on = NotFutureDate(required=False, allow_null=True)
    referring_department = serializers.ChoiceField(
        choices=ReferringDepartment.choices, required=False
    )
    identity = IdentityPatchInput(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        changes = {k: v for k, v in attrs.items() if k != "reason" and v != {}}
        if not changes:
            raise serializers.ValidationError(
                {"non_field_errors": [_("Send at least one field to change.")]}
            )
        return attrs


class ConsentInput(StrictInput):
    element = serializers.ChoiceField(choices=ConsentElement.choices)
    answer = serializers.BooleanField()
    given_on = NotFutureDate()
    form_version = serializers.PrimaryKeyRelatedField(
        queryset=ConsentFormVersion.objects.all(), validators=[FORM_VERSION_RULE]
    )
    mode = serializers.ChoiceField(choices=ConsentMode.choices)


class ConsentCorrectionInput(StrictInput):
    min_properties = 2  # the reason and at least one value
    server_rules = ("at least one value differs from the record corrected",)

    reason = _reason_field()
    answer = serializers.BooleanField(required=False)
    given_on = NotFutureDate(required=False)
    form_version = serializers.PrimaryKeyRelatedField(
        queryset=ConsentFormVersion.objects.all(), required=False, validators=[FORM_VERSION_RULE]
    )
    mode = serializers.ChoiceField(choices=ConsentMode.choices, required=False)


class WithdrawalInput(StrictInput):
    scope = serializers.ChoiceField(choices=WithdrawalScope.choices)
    effective_on = NotFutureDate()
    reason = _reason_field(required=False)


class DeathInput(StrictInput):
    died_on = NotFutureDate()
    # A declared field (moved into ``_declared_fields`` by SerializerMetaclass), not the
    # ``Field.source`` attribute the stub sees it overriding.
    source = serializers.ChoiceField(choices=DeathSource.choices)  # type: ignore[assignment]


# --- views ----------------------------------------------------------------------------------
class _CohortApi(APIView):
    def check_roles(self, request: Request, roles: Iterable[str]) -> None:
        if not access_for(request.user).has_role(*roles):
            raise PermissionDenied(_("Your role does not allow this."))


class ParticipantListApi(_CohortApi):
    """Participants of the sites you may read (statisticians: pseudonymised), and registration."""

    pagination_class = Pagination  # the schema documents the page shape and its 404

    @extend_schema(
        operation_id="participants_list",
        parameters=[
            OpenApiParameter(
                "search",
                # what search_safe_in_url admits (anything else is refused, 400)
                {"type": "string", "pattern": r"^\s*(|[Pp][Rr][Ee][\s\S]*|[0-9]{1,5})\s*$"},
                description="a study number (PRE-00042) or up to five digits of one; "
                "search by hospital record number with POST /api/v1/participants/search/ "
                "(identifiers never go in a URL)",
            ),
            OpenApiParameter(
                "status", str, enum=["", *Status.ALL], description="empty: every status"
            ),
            *(
                OpenApiParameter(p["name"], p["schema"], description=p["description"])
                for p in Pagination().get_schema_operation_parameters(None)
            ),
        ],
        responses={200: ParticipantPageOutput},
        description="Site staff get `identity` for their own site's participants (null otherwise); "
        "statisticians get the same objects without the `identity` key.",
    )
    def get(self, request: Request) -> Response:
        self.check_roles(request, CLINICAL_READERS)
        status_ = request.query_params.get("status") or None
        if status_ not in (None, *Status.ALL):
            raise serializers.ValidationError({"status": [_("Unknown status.")]})
        search = request.query_params.get("search") or ""
        if not search_safe_in_url(search):
            raise serializers.ValidationError(
                {
                    "search": [
                        _("Search by hospital record number with POST %(url)s.")
                        % {"url": SEARCH_URL}
                    ]
                }
            )
        return _participant_page(self, request, search=search, status=status_)

    @extend_schema(
        operation_id="participants_register",
        request=ParticipantRegisterInput,
        responses={201: participant_schema(detail=True)},
    )
    def post(self, request: Request) -> Response:
        self.check_roles(request, DATA_ENTRY)
        user = acting_user(request)
        data = ParticipantRegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        identity = values.pop("identity")
        participant = _identity_errors_nested(
            lambda: services.participant_register(by=user, **values, **identity)
        )
        participant = selectors.participant_get(user=user, study_number=participant.study_number)
        return _render_participant(request, participant, code=status.HTTP_201_CREATED)


# --- search: identifiers travel in the body, never in a URL (URLs reach access logs) ---------
SEARCH_URL = "/api/v1/participants/search/"


class ParticipantSearchInput(StrictInput):
    search = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    status = serializers.ChoiceField(choices=list(Status.ALL), required=False, allow_null=True)


def _participant_page(
    view: APIView,
    request: Request,
    *,
    search: str,
    status: str | None,
    match_hospital_number: bool = False,
) -> Response:
    """One page of the participants ``request.user`` may read; identity accesses logged."""
    user = acting_user(request)
    qs = selectors.participant_list(
        user=user,
        search=search,
        status=status,
        match_hospital_number=match_hospital_number,
    )
    paginator = Pagination()
    page = paginator.paginate_queryset(qs, request, view=view)
    identifying = access_for(user).identifying_site_ids()
    output = _output_class(user)
    data = output(page, many=True, context={"identifying_sites": identifying}).data
    shown = [p for p, row in zip(page, data, strict=True) if row.get("identity")]
    services.identity_access_log(user=user, participants=shown, context=IdentityAccess.Context.API)
    return paginator.get_paginated_response(data)


class ParticipantSearchApi(_CohortApi):
    """Search participants by study number or exact hospital record number (own sites).

    POST, so that a hospital record number never appears in a URL or an access log.
    ``page`` / ``page_size`` stay in the query string; the page links point here (POST
    the same body again).
    """

    pagination_class = Pagination

    @extend_schema(
        operation_id="participants_search",
        request=ParticipantSearchInput,
        parameters=[
            OpenApiParameter(p["name"], p["schema"], description=p["description"])
            for p in Pagination().get_schema_operation_parameters(None)
        ],
        responses={200: ParticipantPageOutput},
    )
    def post(self, request: Request) -> Response:
        self.check_roles(request, CLINICAL_READERS)
        data = ParticipantSearchInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _participant_page(
            self,
            request,
            search=data.validated_data["search"],
            status=data.validated_data.get("status") or None,
            match_hospital_number=True,
        )


class ParticipantDetailApi(_CohortApi):
    @extend_schema(
        operation_id="participants_retrieve", responses={200: participant_schema(detail=True)}
    )
    def get(self, request: Request, study_number: str) -> Response:
        self.check_roles(request, CLINICAL_READERS)
        user = acting_user(request)
        participant = selectors.participant_get(user=user, study_number=study_number)
        return _render_participant(request, participant)

    @extend_schema(
        operation_id="participants_partial_update",
        request=ParticipantPatchInput,
        responses={200: participant_schema(detail=True)},
        description="Change clinical attributes and/or identifying data, with a reason. "
        "`site`, `study_number` and audit fields are refused.",
    )
    def patch(self, request: Request, study_number: str) -> Response:
        self.check_roles(request, CLINICAL_READERS)
        user = acting_user(request)
        participant = selectors.participant_get(user=user, study_number=study_number)
        require_write(user, participant.site_id)
        data = ParticipantPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        reason = values.pop("reason")
        identity_changes = values.pop("identity", None) or {}
        _identity_errors_nested(
            lambda: services.participant_update(
                by=user,
                participant=participant,
                reason=reason,
                changes=values,
                identity_changes=identity_changes,
            )
        )
        participant = selectors.participant_get(user=user, study_number=study_number)
        return _render_participant(request, participant)


class ConsentListApi(_CohortApi):
    @extend_schema(
        operation_id="participants_consents_list", responses={200: ConsentRecordOutput(many=True)}
    )
    def get(self, request: Request, study_number: str) -> Response:
        self.check_roles(request, CLINICAL_READERS)
        user = acting_user(request)
        participant = selectors.participant_get(user=user, study_number=study_number)
        records = selectors.participant_consents(participant=participant)
        return Response(ConsentRecordOutput(records, many=True).data)

    @extend_schema(
        operation_id="participants_consents_create",
        request=ConsentInput,
        responses={201: ConsentRecordOutput},
    )
    def post(self, request: Request, study_number: str) -> Response:
        self.check_roles(request, CLINICAL_READERS)
        user = acting_user(request)
        participant = selectors.participant_get(user=user, study_number=study_number)
        require_write(user, participant.site_id)
        data = ConsentInput(data=request.data)
        data.is_valid(raise_exception=True)
        record = services.consent_record(by=user, participant=participant, **data.validated_data)
        return Response(ConsentRecordOutput(record).data, status=status.HTTP_201_CREATED)


class ConsentCorrectionApi(_CohortApi):
    @extend_schema(
        operation_id="participants_consents_correct",
        request=ConsentCorrectionInput,
        responses={201: ConsentRecordOutput},
        description="Correct a consent record with a reason: a new record replaces it; "
        "the original is kept and points at the new one (`superseded_by`).",
    )
    def post(self, request: Request, study_number: str, pk: int) -> Response:
        self.check_roles(request, CLINICAL_READERS)
        user = acting_user(request)
        participant = selectors.participant_get(user=user, study_number=study_number)
        record = selectors.consent_record_get(participant=participant, pk=pk)
        require_write(user, participant.site_id)
        data = ConsentCorrectionInput(data=request.data)
        data.is_valid(raise_exception=True)
        corrected = services.consent_correct(record=record, by=user, **data.validated_data)
        return Response(ConsentRecordOutput(corrected).data, status=status.HTTP_201_CREATED)


class WithdrawalCreateApi(_CohortApi):
    @extend_schema(
        operation_id="participants_withdrawals_create",
        request=WithdrawalInput,
        responses={201: WithdrawalOutput},
    )
    def post(self, request: Request, study_number: str) -> Response:
        self.check_roles(request, CLINICAL_READERS)
        user = acting_user(request)
        participant = selectors.participant_get(user=user, study_number=study_number)
        require_write(user, participant.site_id)
        data = WithdrawalInput(data=request.data)
        data.is_valid(raise_exception=True)
        withdrawal = services.withdrawal_record(
            by=user, participant=participant, **data.validated_data
        )
        return Response(WithdrawalOutput(withdrawal).data, status=status.HTTP_201_CREATED)


class DeathCreateApi(_CohortApi):
    @extend_schema(
        operation_id="participants_death_create",
        request=DeathInput,
        responses={201: DeathOutput},
    )
    def post(self, request: Request, study_number: str) -> Response:
        self.check_roles(request, CLINICAL_READERS)
        user = acting_user(request)
        participant = selectors.participant_get(user=user, study_number=study_number)
        require_write(user, participant.site_id)
        data = DeathInput(data=request.data)
        data.is_valid(raise_exception=True)
        death = services.death_record(by=user, participant=participant, **data.validated_data)
        return Response(DeathOutput(death).data, status=status.HTTP_201_CREATED)


class ConsentFormVersionListApi(_CohortApi):
    @extend_schema(
        operation_id="consent_form_versions_list",
        responses={200: ConsentFormVersionOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        self.check_roles(request, CLINICAL_READERS)
        return Response(ConsentFormVersionOutput(selectors.consent_form_versions(), many=True).data)
