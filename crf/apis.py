"""Questionnaire REST API: one read operation per view, scoped through crf.selectors.

``GET /api/v1/participants/{study_number}/questionnaires/`` — status, window dates, mode
and scores of every questionnaire of a participant the caller may read. Item answers are
included for clinical readers (site staff and statisticians, who analyse item-level data);
free-text answers, which could identify a patient, only for staff of the participant's own
site. Another site's participant is a 404, never a 403; administrators without a clinical
role get 403.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import CLINICAL_READERS, access_for, acting_user
from core.apis import HasRole
from core.middleware import audit_user
from crf import selectors

ITEM_READERS = CLINICAL_READERS


class TimepointOutput(serializers.Serializer):
    code = serializers.CharField()
    # A declared field (moved into ``_declared_fields`` by SerializerMetaclass), not the
    # ``Field.label`` attribute the stub sees it overriding.
    label = serializers.CharField()  # type: ignore[assignment]
    day_offset = serializers.IntegerField()
    is_primary = serializers.BooleanField()


class ResponseOutput(serializers.Serializer):
    instrument = serializers.CharField()
    instrument_version = serializers.CharField()
    answers = serializers.DictField()
    scores = serializers.DictField()
    scoring_tables = serializers.DictField()


class QuestionnaireOutput(serializers.Serializer):
    id = serializers.IntegerField()
    trial = serializers.CharField(source="trial.code")
    timepoint = TimepointOutput()
    status = serializers.CharField()
    day0 = serializers.DateField()
    day0_is_actual = serializers.BooleanField()
    opens_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    closes_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    reminders_sent = serializers.IntegerField()
    send_attempts_failed = serializers.IntegerField(source="attempts")
    completed_on = serializers.DateField(allow_null=True, help_text="Date answered (local).")
    completed_at = serializers.DateTimeField(
        allow_null=True, help_text="Exact moment answered; null when only the date is known."
    )
    completion_recorded_at = serializers.DateTimeField(allow_null=True)
    outside_window = serializers.BooleanField(
        help_text="Answered outside the timepoint's window (confirmed at entry)."
    )
    mode = serializers.CharField()
    scores = serializers.DictField()


class QuestionnaireWithItemsOutput(QuestionnaireOutput):
    """As returned: ``responses`` (item answers) only for roles allowed to see them."""

    responses = ResponseOutput(many=True, required=False)


class QuestionnaireListOutput(serializers.Serializer):
    study_number = serializers.CharField()
    count = serializers.IntegerField()
    results = QuestionnaireWithItemsOutput(many=True)


def _free_text_items(code: str) -> set[str]:
    from crf import instruments

    return {item.code for item in instruments.load(code).items if item.kind == "text"}


class ParticipantQuestionnairesApi(APIView):
    """Questionnaires of one participant (all trials), oldest window first."""

    permission_classes = [HasRole]
    allowed_roles = CLINICAL_READERS

    @extend_schema(
        parameters=[OpenApiParameter("study_number", str, OpenApiParameter.PATH)],
        responses=QuestionnaireListOutput,
    )
    def get(self, request: Request, study_number: str) -> Response:
        user = acting_user(request)
        audit_user(user)
        participant, qs = selectors.participant_questionnaires(user=user, study_number=study_number)
        access = access_for(user)
        with_items = access.has_role(*ITEM_READERS)
        with_free_text = access.can_see_identifying(participant.site_id)
        rows = []
        for q in qs:
            data = QuestionnaireOutput(q).data
            if with_items:
                responses = []
                for r in q.responses.all():
                    answers = dict(r.answers)
                    if not with_free_text:
                        for key in _free_text_items(r.instrument):
                            answers.pop(key, None)
                    responses.append(
                        {
                            "instrument": r.instrument,
                            "instrument_version": r.instrument_version,
                            "answers": answers,
                            "scores": r.scores,
                            "scoring_tables": r.scoring_tables,
                        }
                    )
                data["responses"] = responses
            rows.append(data)
        return Response(
            {"study_number": participant.study_number, "count": len(rows), "results": rows}
        )
