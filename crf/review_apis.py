"""Data review REST API (queries): one operation per view, scoped through crf.selectors,
writes through crf.services.

- ``GET queries/`` — the queries at your sites, unresolved first (filters: ``status``,
  ``form_code``, ``raised_by``, ``site``), keyset-paged; ``POST queries/`` — a monitor
  (data manager of the site) raises one on an item or a whole record;
- ``GET queries/{id}/`` — one query with its thread;
- ``POST queries/{id}/answer/`` (the site's nurses and investigators), ``…/close/`` and
  ``…/reopen/`` (monitors). Queries never change data: an answer with a data change is a
  PATCH of the record, with its own reason for change.

Site staff and monitors of the record's site read; statisticians and administrators do not
(queries are about identifiable data entry, not analysis data). A query at another site is
a 404, never a 403.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import DATA_ENTRY, SITE_STAFF, access_for
from core.apis import HasRole
from core.pagination import Pagination
from core.schema import ServerRule
from crf import expected, selectors, services
from crf.models import ClinicalRecord, DataQuery, QueryStatus
from crf.record_apis import api_user, valid_input

QUERY_ID = OpenApiParameter("id", int, OpenApiParameter.PATH)


# --- output ----------------------------------------------------------------------------------
class QueryMessageOutput(serializers.Serializer):
    action = serializers.CharField()
    text = serializers.CharField()
    by = serializers.CharField(source="by.username", allow_null=True, default=None)
    at = serializers.DateTimeField()


class QueryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    study_number = serializers.CharField(source="record.participant.study_number")
    site = serializers.CharField(source="record.participant.site.code")
    form_code = serializers.CharField(source="record.form_code")
    occurrence = serializers.CharField(source="record.occurrence")
    record_id = serializers.IntegerField()
    item = serializers.CharField(help_text="Item code; empty: the whole record.")
    origin = serializers.ChoiceField(choices=["check", "manual"])
    check_name = serializers.CharField(help_text="The edit check of an automatic query.")
    status = serializers.ChoiceField(choices=QueryStatus.values)
    text = serializers.CharField()
    suggested_value = serializers.JSONField(allow_null=True)
    raised_by = serializers.CharField(source="raised_by.username", allow_null=True, default=None)
    raised_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    age_days = serializers.SerializerMethodField(help_text="Whole days since the query was raised.")
    messages = QueryMessageOutput(many=True, help_text="The thread, oldest first.")

    def get_age_days(self, query: DataQuery) -> int:
        return int((self.context["now"] - query.raised_at).days)


def _output(query: DataQuery, *, now: Any = None) -> dict[str, Any]:
    from django.utils import timezone

    return dict(QueryOutput(query, context={"now": now or timezone.now()}).data)


# --- input -----------------------------------------------------------------------------------
class QueryFilterInput(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=QueryStatus.values,
        required=False,
        help_text="Only queries in this state; default: the unresolved (open and answered).",
    )
    form_code = serializers.ChoiceField(choices=list(expected.FORM_CODES), required=False)
    raised_by = serializers.IntegerField(min_value=1, required=False, help_text="A user id.")
    site = serializers.IntegerField(min_value=1, required=False, help_text="A site id.")


class QueryRaiseInput(serializers.Serializer):
    record = serializers.IntegerField(
        min_value=1,
        help_text="The clinical record's id.",
        validators=[ServerRule("an existing record at your sites that is not voided")],
    )
    item = serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        default="",
        help_text="Item code (a repeat field as 'targets-0-dose_gy'); empty: the whole record.",
        validators=[ServerRule("an item of the record's form")],
    )
    text = serializers.CharField(max_length=2000)
    suggested_value = serializers.JSONField(required=False, allow_null=True, default=None)


class QueryTextInput(serializers.Serializer):
    text = serializers.CharField(max_length=2000)


class QueryCloseInput(serializers.Serializer):
    text = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


def _query(user: Any, pk: int) -> DataQuery:
    query = (
        access_for(user)
        .scope(
            DataQuery.objects.filter(pk=pk),
            site_field="record__participant__site",
            roles=SITE_STAFF,
        )
        .select_related("record__participant")
        .first()
    )
    if query is None:
        raise Http404
    return query


def _with_thread(pk: int) -> DataQuery:
    return (
        DataQuery.objects.select_related("record__participant__site", "raised_by")
        .prefetch_related("messages__by")
        .get(pk=pk)
    )


# --- views -----------------------------------------------------------------------------------
class QueriesApi(APIView):
    """Queries at your sites (GET); a monitor raises one (POST)."""

    pagination_class = Pagination  # GET: the schema documents the page shape
    permission_classes = [HasRole]
    allowed_roles: frozenset[str] = SITE_STAFF

    def get_permissions(self) -> Any:
        if self.request.method == "POST":
            self.allowed_roles = services.REVIEWERS
        return super().get_permissions()

    @extend_schema(
        parameters=[QueryFilterInput],
        responses={200: QueryOutput(many=True)},
        operation_id="queries_list",
    )
    def get(self, request: Request) -> Response:
        user = api_user(request)
        # a plain dict: for form input DRF reads an empty optional parameter as omitted
        filters = valid_input(QueryFilterInput, request.query_params.dict())
        qs = selectors.query_worklist(
            user=user,
            status=filters.get("status"),
            form_code=filters.get("form_code"),
            raised_by=filters.get("raised_by"),
            site_id=filters.get("site"),
        ).prefetch_related("messages__by")
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        from django.utils import timezone

        now = timezone.now()
        return paginator.get_paginated_response([_output(q, now=now) for q in page])

    @extend_schema(request=QueryRaiseInput, responses={201: QueryOutput})
    def post(self, request: Request) -> Response:
        user = api_user(request)
        values = valid_input(QueryRaiseInput, request.data)
        record = (
            access_for(user)
            .scope(
                ClinicalRecord.objects.filter(pk=values["record"]),
                site_field="participant__site",
                roles=SITE_STAFF,
            )
            .first()
        )
        if record is None:
            raise exceptions.ValidationError({"record": ["No such record at your sites."]})
        query = services.query_raise(
            user=user,
            record=record,
            item=values["item"],
            text=values["text"],
            suggested_value=values["suggested_value"],
        )
        return Response(_output(_with_thread(query.pk)), status=status.HTTP_201_CREATED)


class QueryApi(APIView):
    """One query with its thread."""

    permission_classes = [HasRole]
    allowed_roles = SITE_STAFF

    @extend_schema(parameters=[QUERY_ID], responses=QueryOutput)
    def get(self, request: Request, pk: int) -> Response:
        user = api_user(request)
        return Response(_output(_with_thread(_query(user, pk).pk)))


class _QueryStepApi(APIView):
    permission_classes = [HasRole]
    input_class: type[serializers.Serializer] = QueryTextInput

    def step(self, user: Any, query: DataQuery, text: str) -> DataQuery:
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        user = api_user(request)
        query = _query(user, pk)
        values = valid_input(self.input_class, request.data)
        self.step(user, query, values["text"])
        return Response(_output(_with_thread(query.pk)))


class QueryAnswerApi(_QueryStepApi):
    """The site answers an open query (data changes go through the record, with a reason)."""

    allowed_roles = DATA_ENTRY

    def step(self, user: Any, query: DataQuery, text: str) -> DataQuery:
        return services.query_answer(user=user, query=query, text=text)

    @extend_schema(parameters=[QUERY_ID], request=QueryTextInput, responses=QueryOutput)
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class QueryCloseApi(_QueryStepApi):
    """A monitor closes an open or answered query."""

    allowed_roles = services.REVIEWERS
    input_class = QueryCloseInput

    def step(self, user: Any, query: DataQuery, text: str) -> DataQuery:
        return services.query_close(user=user, query=query, text=text)

    @extend_schema(parameters=[QUERY_ID], request=QueryCloseInput, responses=QueryOutput)
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class QueryReopenApi(_QueryStepApi):
    """A monitor re-opens a closed manual query, saying why."""

    allowed_roles = services.REVIEWERS

    def step(self, user: Any, query: DataQuery, text: str) -> DataQuery:
        return services.query_reopen(user=user, query=query, text=text)

    @extend_schema(parameters=[QUERY_ID], request=QueryTextInput, responses=QueryOutput)
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)
