from django.urls import path

from cohort import views

app_name = "cohort"

urlpatterns = [
    path("", views.participant_list, name="participant_list"),
    path("register/", views.participant_register, name="participant_register"),
    path("<str:study_number>/", views.participant_detail, name="participant_detail"),
    path("<str:study_number>/consent/", views.consent_create, name="consent_create"),
    path(
        "<str:study_number>/consent/<int:pk>/correct/",
        views.consent_correct,
        name="consent_correct",
    ),
    path("<str:study_number>/withdrawal/", views.withdrawal_create, name="withdrawal_create"),
    path(
        "<str:study_number>/withdrawal/<int:pk>/correct/",
        views.withdrawal_correct,
        name="withdrawal_correct",
    ),
    path("<str:study_number>/death/", views.death_create, name="death_create"),
    path("<str:study_number>/death/correct/", views.death_correct, name="death_correct"),
    path("<str:study_number>/identity/", views.identity_edit, name="identity_edit"),
]
