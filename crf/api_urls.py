from django.urls import path

from crf import apis, record_apis

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
]
