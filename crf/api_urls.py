from django.urls import path

from crf import apis, record_apis, review_apis

urlpatterns = [
    path(
        "participants/<str:study_number>/questionnaires/",
        apis.ParticipantQuestionnairesApi.as_view(),
        name="participant-questionnaires",
    ),
    path(
        "participants/<str:study_number>/forms/",
        record_apis.ParticipantFormsApi.as_view(),
        name="participant-forms",
    ),
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/records/",
        record_apis.FormRecordsApi.as_view(),
        name="form-records",
    ),
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/records/<int:pk>/",
        record_apis.FormRecordApi.as_view(),
        name="form-record",
    ),
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/records/<int:pk>/void/",
        record_apis.FormRecordVoidApi.as_view(),
        name="form-record-void",
    ),
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/not-done/",
        record_apis.FormNotDoneApi.as_view(),
        name="form-not-done",
    ),
    path("form-definitions/", record_apis.FormDefinitionsApi.as_view(), name="form-definitions"),
    path(
        "form-definitions/<slug:code>/<str:version>/",
        record_apis.FormDefinitionApi.as_view(),
        name="form-definition",
    ),
    path("queries/", review_apis.QueriesApi.as_view(), name="queries"),
    path("queries/<int:pk>/", review_apis.QueryApi.as_view(), name="query"),
    path("queries/<int:pk>/answer/", review_apis.QueryAnswerApi.as_view(), name="query-answer"),
    path("queries/<int:pk>/close/", review_apis.QueryCloseApi.as_view(), name="query-close"),
    path("queries/<int:pk>/reopen/", review_apis.QueryReopenApi.as_view(), name="query-reopen"),
]
