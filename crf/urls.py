from django.urls import path

from crf import views

app_name = "crf"

urlpatterns = [
    # Patient pages (no login). The "/q/" prefix is scrubbed from log lines.
    path("q/done/", views.patient_done, name="patient_done"),
    path("q/<str:token>/", views.patient_start, name="patient_start"),
    path("q/<str:token>/submit/", views.patient_submit, name="patient_submit"),
    path("q/<str:token>/<int:step>/", views.patient_step, name="patient_step"),
    # Staff
    path("", views.worklist, name="worklist"),
    path("questionnaires/<int:pk>/", views.questionnaire_detail, name="questionnaire_detail"),
    path("questionnaires/<int:pk>/enter/", views.questionnaire_entry, name="questionnaire_entry"),
    path(
        "questionnaires/<int:pk>/correct/<slug:instrument>/",
        views.questionnaire_correct,
        name="questionnaire_correct",
    ),
    path(
        "questionnaires/<int:pk>/send-again/",
        views.questionnaire_send_retry,
        name="questionnaire_send_retry",
    ),
    # Clinical forms: one screen per form and occurrence ("new": a new event or log entry)
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/<slug:occurrence>/",
        views.form_screen,
        name="form_screen",
    ),
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/<slug:occurrence>/validate/"
        "<str:name>/",
        views.form_validate,
        name="form_validate",
    ),
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/<slug:occurrence>/compute/",
        views.form_compute,
        name="form_compute",
    ),
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/<slug:occurrence>/autosave/",
        views.form_autosave,
        name="form_autosave",
    ),
    path("demo-mail/", views.demo_mail, name="demo_mail"),
    path("demo-mail/<str:name>/", views.demo_mail, name="demo_mail_file"),
]
