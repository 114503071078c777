from django.urls import path

from crf import apis

urlpatterns = [
    path(
        "participants/<str:study_number>/questionnaires/",
        apis.ParticipantQuestionnairesApi.as_view(),
        name="participant-questionnaires",
    ),
]
