"""REST API of the randomization app: trials, screenings, randomisations, the TwiCs decision
and the start of treatment. One view per operation; views parse, call one service or
selector, and render. Refusals are 409 with the reason codes in ``errors.reasons``.

No endpoint here reads a sequence or a slot: an unused allocation cannot leak through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cohort import selectors as cohort_selectors
from cohort.models import ConsentFormVersion, Participant
from core.access import CLINICAL_READERS, DATA_ENTRY, acting_user
from core.apis import HasRole
from core.pagination import Pagination
from core.schema import NOT_FUTURE, ServerRule, error_response
from randomization import selectors, services
from randomization.models import Allocation, Answer, Decision, ScreeningAnswer

# --- errors ----------------------------------------------------------------------------------
# Service refusals reach core.apis.exception_handler: 409 with the reason codes in
# ``errors.reasons``, 403 for access, 400 for field errors.
# 400, 401, 403, 404, 415 and 429 are documented on every operation by core.schema.AutoSchema
if TYPE_CHECKING:  # pragma: no cover - the stubs' name for what get_permissions returns
    from rest_framework.permissions import _SupportsHasPermission

REFUSALS = {409: error_response(409)}
PARTICIPANT_RULE = ServerRule("the study number of a participant at your sites")


def _participant(request: Request, study_number: str) -> Participant:
    user = acting_user(request)
    try:
        return cohort_selectors.participant_get(user=user, study_number=study_number)
    except Http404 as exc:
        raise exceptions.ValidationError(
            {"participant": [_("No participant with this study number at your sites.")]}
        ) from exc


# --- trials ----------------------------------------------------------------------------------
class ArmOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    ratio = serializers.IntegerField()
    is_intervention = serializers.BooleanField()


class TrialOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    registration = serializers.CharField()
    protocol_version = serializers.CharField()
    target_size = serializers.IntegerField()
    status = serializers.CharField()
    arms = ArmOutput(many=True, source="arms.all")


class TrialListApi(APIView):
    """The trials hosted on the cohort, with their arms."""

    pagination_class = Pagination  # the schema documents the page shape

    permission_classes = [HasRole]
    allowed_roles = tuple(CLINICAL_READERS)

    @extend_schema(responses={200: TrialOutput(many=True)})
    def get(self, request: Request) -> Response:
        user = acting_user(request)
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.trial_list(user=user), request, view=self)
        return paginator.get_paginated_response(TrialOutput(page, many=True).data)


# --- screenings -------------------------------------------------------------------------------
class ScreeningInput(serializers.Serializer):
    server_rules = (
        "an answer for every current criterion the stored data do not decide, and none that "
        "contradicts them (reported under the criterion's code)",
    )

    participant = serializers.CharField(
        max_length=20,
        help_text=_("Study number, e.g. PRE-00042"),
        validators=[PARTICIPANT_RULE],
    )
    screened_on = serializers.DateField(
        validators=[NOT_FUTURE, ServerRule("not after the participant's death")]
    )
    answers = serializers.DictField(
        child=serializers.ChoiceField(choices=Answer.choices),
        help_text=_("Criterion code → yes / no / unknown, for every current criterion."),
        validators=[ServerRule("only criteria of the trial's current protocol version")],
    )


class ScreeningAnswerOutput(serializers.Serializer):
    criterion = serializers.CharField(source="criterion.code")
    answer = serializers.CharField()
    # A declared field (moved into ``_declared_fields`` by SerializerMetaclass), not the
    # ``Field.source`` attribute the stub sees it overriding.
    source = serializers.CharField(  # type: ignore[assignment]
        help_text=_("entered, or derived (answered by the system from stored data)")
    )
    basis = serializers.DictField(
        help_text=_("What a derived answer rests on, e.g. the age on the screening date.")
    )


class ScreeningOutput(serializers.Serializer):
    id = serializers.IntegerField()
    trial = serializers.CharField(source="trial.code")
    participant = serializers.CharField(source="participant.study_number")
    protocol_version = serializers.CharField()
    screened_on = serializers.DateField()
    screened_by = serializers.CharField(source="screened_by.username")
    recorded_at = serializers.DateTimeField()
    verdict = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())
    answers = ScreeningAnswerOutput(many=True, source="answers.all")


class ScreeningListCreateApi(APIView):
    """Screenings of a trial at your sites (GET); record a screening (POST)."""

    pagination_class = Pagination  # GET: the schema documents the page shape

    permission_classes = [HasRole]
    allowed_roles = tuple(CLINICAL_READERS)

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        if self.request.method == "POST":
            self.allowed_roles = tuple(DATA_ENTRY)
        return super().get_permissions()

    @extend_schema(
        parameters=[OpenApiParameter("participant", str, description=_("Study number"))],
        responses={200: ScreeningOutput(many=True)},
    )
    def get(self, request: Request, code: str) -> Response:
        user = acting_user(request)
        trial = selectors.trial_get(user=user, code=code)
        qs = (
            selectors.screening_list(user=user, trial=trial)
            .select_related("trial")
            .prefetch_related(
                Prefetch("answers", queryset=ScreeningAnswer.objects.select_related("criterion"))
            )
        )
        participant = request.query_params.get("participant")
        if participant:
            qs = qs.filter(participant__study_number=participant.strip().upper())
        paginator = Pagination()
        page = paginator.paginate_queryset(qs.order_by("-recorded_at", "-pk"), request, view=self)
        return paginator.get_paginated_response(ScreeningOutput(page, many=True).data)

    @extend_schema(request=ScreeningInput, responses={201: ScreeningOutput, **REFUSALS})
    def post(self, request: Request, code: str) -> Response:
        user = acting_user(request)
        trial = selectors.trial_get(user=user, code=code)
        data = ScreeningInput(data=request.data)
        data.is_valid(raise_exception=True)
        participant = _participant(request, data.validated_data["participant"])
        try:
            screening = services.screening_record(
                by=user,
                trial=trial,
                participant=participant,
                screened_on=data.validated_data["screened_on"],
                answers=dict(data.validated_data["answers"]),
            )
        except DjangoValidationError as exc:
            if getattr(exc, "names_identifying", False):  # the message named the date of birth
                from cohort.services import identity_access_log

                identity_access_log(user=user, participants=[participant], context="api")
            raise
        return Response(ScreeningOutput(screening).data, status=status.HTTP_201_CREATED)


# --- randomisations ----------------------------------------------------------------------------
class RandomiseInput(serializers.Serializer):
    participant = serializers.CharField(
        max_length=20,
        help_text=_("Study number, e.g. PRE-00042"),
        validators=[PARTICIPANT_RULE],
    )
    request_id = serializers.CharField(max_length=64, required=False, allow_blank=True)


class RandomisationOutput(serializers.Serializer):
    trial_number = serializers.CharField()
    participant = serializers.CharField(source="participant.study_number")
    arm = serializers.CharField(source="arm.code")
    randomised_at = serializers.DateTimeField()
    status = serializers.CharField()


class OfferOutput(serializers.Serializer):
    offered_on = serializers.DateField()
    offered_by = serializers.CharField(source="offered_by.username")
    decision = serializers.CharField()
    decided_on = serializers.DateField(allow_null=True)
    refusal_reason = serializers.CharField()
    consent_form_version = serializers.IntegerField(
        source="consent_form_version_id", allow_null=True
    )
    consent_date = serializers.DateField(allow_null=True)


class AllocationDetailOutput(RandomisationOutput):
    arm_name = serializers.CharField(source="arm.name")
    is_intervention = serializers.BooleanField(source="arm.is_intervention")
    randomised_by = serializers.CharField(source="randomised_by.username")
    treatment_start_planned = serializers.DateField(allow_null=True)
    treatment_start_actual = serializers.DateField(allow_null=True)
    offer = serializers.SerializerMethodField()

    @extend_schema_field(OfferOutput(allow_null=True))
    def get_offer(self, obj: Allocation) -> dict[str, Any] | None:
        offer = getattr(obj, "offer", None)
        return OfferOutput(offer).data if offer is not None else None


class RandomisationListCreateApi(APIView):
    """Allocations of a trial at your sites (GET); randomise a participant (POST).

    POST is idempotent per participant: the first call answers 201, a repeat answers
    200 with the same body. Refusals (not eligible, no consent, randomised in error,
    no active sequence) answer 409 with the reason codes.
    """

    pagination_class = Pagination  # GET: the schema documents the page shape

    permission_classes = [HasRole]
    allowed_roles = tuple(CLINICAL_READERS)

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        if self.request.method == "POST":
            self.allowed_roles = tuple(DATA_ENTRY)
        return super().get_permissions()

    @extend_schema(responses={200: AllocationDetailOutput(many=True)})
    def get(self, request: Request, code: str) -> Response:
        user = acting_user(request)
        trial = selectors.trial_get(user=user, code=code)
        qs = selectors.allocation_list(user=user, trial=trial).select_related("offer__offered_by")
        paginator = Pagination()
        page = paginator.paginate_queryset(qs.order_by("trial_number"), request, view=self)
        return paginator.get_paginated_response(AllocationDetailOutput(page, many=True).data)

    @extend_schema(
        request=RandomiseInput,
        responses={201: RandomisationOutput, 200: RandomisationOutput, **REFUSALS},
    )
    def post(self, request: Request, code: str) -> Response:
        user = acting_user(request)
        trial = selectors.trial_get(user=user, code=code)
        data = RandomiseInput(data=request.data)
        data.is_valid(raise_exception=True)
        participant = _participant(request, data.validated_data["participant"])
        result = services.allocation_randomise(
            by=user,
            trial=trial,
            participant=participant,
            request_id=data.validated_data.get("request_id")
            or request.headers.get("Idempotency-Key"),
        )
        return Response(
            RandomisationOutput(result.allocation).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class RandomisationDetailApi(APIView):
    """One allocation at your sites."""

    permission_classes = [HasRole]
    allowed_roles = tuple(CLINICAL_READERS)

    @extend_schema(responses={200: AllocationDetailOutput})
    def get(self, request: Request, code: str, trial_number: str) -> Response:
        user = acting_user(request)
        trial = selectors.trial_get(user=user, code=code)
        allocation = selectors.allocation_get(user=user, trial=trial, trial_number=trial_number)
        return Response(AllocationDetailOutput(allocation).data)


class DecisionInput(serializers.Serializer):
    offered_on = serializers.DateField(
        validators=[NOT_FUTURE, ServerRule("not before randomisation")]
    )
    decision = serializers.ChoiceField(choices=Decision.choices)
    decided_on = serializers.DateField(
        required=False,
        allow_null=True,
        validators=[
            ServerRule("needed unless pending"),
            ServerRule("not before the offer"),
            NOT_FUTURE,
        ],
    )
    refusal_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        default="",
        validators=[ServerRule("needed when refused")],
    )
    consent_form_version = serializers.PrimaryKeyRelatedField(
        queryset=ConsentFormVersion.objects.all(),
        required=False,
        allow_null=True,
        validators=[
            ServerRule("an existing consent form version"),
            ServerRule("needed when accepted, and in effect on the consent date"),
        ],
    )
    consent_date = serializers.DateField(
        required=False,
        allow_null=True,
        validators=[ServerRule("needed when accepted"), NOT_FUTURE],
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        default="",
        help_text=_("Reason for change, needed when a recorded decision changes."),
        validators=[ServerRule("needed when a recorded decision changes")],
    )


class DecisionApi(APIView):
    """Intervention arm: record the offer and the patient's decision (accepted / refused)."""

    permission_classes = [HasRole]
    allowed_roles = tuple(DATA_ENTRY)

    @extend_schema(request=DecisionInput, responses={200: OfferOutput, **REFUSALS})
    def post(self, request: Request, code: str, trial_number: str) -> Response:
        user = acting_user(request)
        trial = selectors.trial_get(user=user, code=code)
        allocation = selectors.allocation_get(user=user, trial=trial, trial_number=trial_number)
        data = DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        offer = services.offer_decision_record(
            by=user,
            allocation=allocation,
            offered_on=v["offered_on"],
            decision=v["decision"],
            decided_on=v.get("decided_on"),
            refusal_reason=v.get("refusal_reason", ""),
            consent_form_version=v.get("consent_form_version"),
            consent_date=v.get("consent_date"),
            reason=v.get("reason", ""),
        )
        return Response(OfferOutput(offer).data)


class TreatmentStartInput(serializers.Serializer):
    planned = serializers.DateField(
        required=False,
        allow_null=True,
        validators=[
            ServerRule("planned or actual is needed"),
            ServerRule("not before randomisation"),
        ],
    )
    actual = serializers.DateField(
        required=False,
        allow_null=True,
        validators=[ServerRule("not before randomisation"), NOT_FUTURE],
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        default="",
        validators=[ServerRule("needed when a recorded date changes")],
    )


class TreatmentStartApi(APIView):
    """Record the planned and/or actual start of treatment (day 0); the follow-up schedule
    is (re-)anchored on it."""

    permission_classes = [HasRole]
    allowed_roles = tuple(DATA_ENTRY)

    @extend_schema(request=TreatmentStartInput, responses={200: AllocationDetailOutput, **REFUSALS})
    def put(self, request: Request, code: str, trial_number: str) -> Response:
        user = acting_user(request)
        trial = selectors.trial_get(user=user, code=code)
        allocation = selectors.allocation_get(user=user, trial=trial, trial_number=trial_number)
        data = TreatmentStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.treatment_start_set(
            by=user,
            allocation=allocation,
            planned=data.validated_data.get("planned"),
            actual=data.validated_data.get("actual"),
            reason=data.validated_data.get("reason", ""),
        )
        allocation = selectors.allocation_get(user=user, trial=trial, trial_number=trial_number)
        return Response(AllocationDetailOutput(allocation).data)
