from django.urls import path

from cohort import apis

urlpatterns = [
    path("participants/", apis.ParticipantListApi.as_view(), name="participant-list"),
    path("participants/search/", apis.ParticipantSearchApi.as_view(), name="participant-search"),
    path(
        "participants/<str:study_number>/",
        apis.ParticipantDetailApi.as_view(),
        name="participant-detail",
    ),
    path(
        "participants/<str:study_number>/consents/",
        apis.ConsentListApi.as_view(),
        name="participant-consents",
    ),
    path(
        "participants/<str:study_number>/consents/<int:pk>/correction/",
        apis.ConsentCorrectionApi.as_view(),
        name="participant-consent-correction",
    ),
    path(
        "participants/<str:study_number>/withdrawals/",
        apis.WithdrawalCreateApi.as_view(),
        name="participant-withdrawals",
    ),
    path(
        "participants/<str:study_number>/death/",
        apis.DeathCreateApi.as_view(),
        name="participant-death",
    ),
    path(
        "consent-form-versions/",
        apis.ConsentFormVersionListApi.as_view(),
        name="consent-form-versions",
    ),
]
