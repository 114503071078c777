from django.urls import path

from randomization import apis

urlpatterns = [
    path("trials/", apis.TrialListApi.as_view(), name="trial-list"),
    path(
        "trials/<str:code>/screenings/",
        apis.ScreeningListCreateApi.as_view(),
        name="trial-screenings",
    ),
    path(
        "trials/<str:code>/randomisations/",
        apis.RandomisationListCreateApi.as_view(),
        name="trial-randomisations",
    ),
    path(
        "trials/<str:code>/randomisations/<str:trial_number>/",
        apis.RandomisationDetailApi.as_view(),
        name="trial-randomisation-detail",
    ),
    path(
        "trials/<str:code>/randomisations/<str:trial_number>/decision/",
        apis.DecisionApi.as_view(),
        name="trial-randomisation-decision",
    ),
    path(
        "trials/<str:code>/randomisations/<str:trial_number>/treatment-start/",
        apis.TreatmentStartApi.as_view(),
        name="trial-randomisation-treatment-start",
    ),
]
