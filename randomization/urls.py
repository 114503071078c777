from django.urls import path

from randomization import views

app_name = "randomization"

urlpatterns = [
    path("", views.trial_list, name="trial_list"),
    path("<str:code>/", views.trial_overview, name="trial_overview"),
    path("<str:code>/status/", views.trial_status, name="trial_status"),
    path("<str:code>/screen/", views.screening_lookup, name="screening_lookup"),
    path("<str:code>/screen/<str:study_number>/", views.screening_create, name="screening_create"),
    path(
        "<str:code>/screen/<str:study_number>/verdict/",
        views.screening_verdict,
        name="screening_verdict",
    ),
    path("<str:code>/screenings/<int:pk>/", views.screening_detail, name="screening_detail"),
    path("<str:code>/randomise/<str:study_number>/", views.randomise, name="randomise"),
    path(
        "<str:code>/allocations/<str:trial_number>/",
        views.allocation_detail,
        name="allocation_detail",
    ),
    path(
        "<str:code>/allocations/<str:trial_number>/decision/",
        views.offer_decision,
        name="offer_decision",
    ),
    path(
        "<str:code>/allocations/<str:trial_number>/treatment-start/",
        views.treatment_start,
        name="treatment_start",
    ),
    path(
        "<str:code>/allocations/<str:trial_number>/disclosure/",
        views.disclosure_create,
        name="disclosure_create",
    ),
    path(
        "<str:code>/allocations/<str:trial_number>/correction/",
        views.correction_propose,
        name="correction_propose",
    ),
    path("<str:code>/corrections/", views.correction_list, name="correction_list"),
    path("<str:code>/corrections/<int:pk>/", views.correction_decide, name="correction_decide"),
    path("<str:code>/sequences/", views.sequence_list, name="sequence_list"),
    path("<str:code>/sequences/new/", views.sequence_generate, name="sequence_generate"),
    path("<str:code>/sequences/<int:pk>/", views.sequence_detail, name="sequence_detail"),
    path(
        "<str:code>/sequences/<int:pk>/activate/", views.sequence_activate, name="sequence_activate"
    ),
    path("<str:code>/sequences/<int:pk>/retire/", views.sequence_retire, name="sequence_retire"),
]
