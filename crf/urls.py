from django.urls import path

from crf import review_views, views

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
    # Data review (issue 12): queries, signatures, locks, source data verification, history
    path("queries/", review_views.query_worklist, name="review_queries"),
    path("queries/<int:pk>/answer/", review_views.query_answer, name="review_query_answer"),
    path("queries/<int:pk>/close/", review_views.query_close, name="review_query_close"),
    path("queries/<int:pk>/reopen/", review_views.query_reopen, name="review_query_reopen"),
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/<slug:occurrence>/queries/",
        review_views.query_raise,
        name="review_query_raise",
    ),
    path("sign/", review_views.sign_list, name="review_sign_list"),
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/<slug:occurrence>/sign/",
        review_views.record_sign,
        name="review_record_sign",
    ),
    path(
        "participants/<str:study_number>/sign/",
        review_views.casebook_sign,
        name="review_casebook_sign",
    ),
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/<slug:occurrence>/verify/",
        review_views.record_verify,
        name="review_record_verify",
    ),
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/<slug:occurrence>/lock/",
        review_views.record_lock,
        name="review_record_lock",
    ),
    path(
        "participants/<str:study_number>/lock/",
        review_views.participant_lock,
        name="review_participant_lock",
    ),
    path(
        "participants/<str:study_number>/forms/<slug:form_code>/<slug:occurrence>/history/",
        review_views.record_history,
        name="review_record_history",
    ),
    path("locks/", review_views.locks, name="review_locks"),
    path("locks/<int:pk>/unlock/", review_views.unlock, name="review_unlock"),
    path("sdv/", review_views.sdv_progress, name="review_sdv"),
    path("recheck/", review_views.recheck, name="review_recheck"),
    path("recheck/<int:pk>/", review_views.recheck_status, name="review_recheck_status"),
]
