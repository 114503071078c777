"""No questionnaire token, API token or hospital number in any log line: the scrubbing
itself, Django's request logging with DEBUG on, and the suite-wide guard that fails a
test when a secret reaches a log (proved here by leaking on purpose)."""

from __future__ import annotations

import io
import logging

import pytest
from django.test import override_settings
from django.urls import reverse

from core.logging import scrub_text
from tests.conftest import LogLeak

TOKEN = "Zk3v9QwErTy-uIoP_aSdFgHjKlZxCvBnM1234567890"


def test_scrub_text_removes_tokens_and_query_values():
    line = (
        f'"GET /crf/q/{TOKEN}/2/?lang=nl HTTP/1.1" 200 '
        f"Authorization: Token {'ab' * 32} /cohort/?q=HN000123&page=2"
    )
    out = scrub_text(line)
    assert TOKEN not in out and "ab" * 32 not in out and "HN000123" not in out
    assert "/crf/q/[redacted]/2/" in out and "page=2" in out
    assert scrub_text("/crf/q/done/?lang=en&next=/x") == "/crf/q/done/?lang=en&next=[redacted]"
    assert (
        scrub_text("Invalid token header. No credentials.")
        == "Invalid token header. No credentials."
    )
    assert scrub_text("nothing to hide here? no.") == "nothing to hide here? no."


def test_every_handler_gets_scrubbed_records_not_only_the_console():
    """The record itself is scrubbed when it is made, so no handler (Django's own DEBUG
    console handler, pytest's capture, gunicorn's error log) sees the raw token."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        logger.warning("Not Found: %s", f"/crf/q/{TOKEN}/")
    finally:
        logger.removeHandler(handler)
    assert TOKEN not in stream.getvalue()
    assert "/crf/q/[redacted]/" in stream.getvalue()


def test_runserver_request_lines_are_scrubbed(log_guard):
    """django.server (runserver with DEBUG on) logs the request line with its query."""
    logging.getLogger("django.server").info(
        '"%s" %s %s', f"GET /crf/q/{TOKEN}/?lang=nl HTTP/1.1", "200", "512"
    )
    logging.getLogger("django.server").info('"%s" %s %s', "GET /cohort/?q=HN7 HTTP/1.1", 200, 9)
    logged = [text for name, text in log_guard.lines if name == "django.server"]
    assert logged == [
        '"GET /crf/q/[redacted]/?lang=nl HTTP/1.1" 200 512',
        '"GET /cohort/?q=[redacted] HTTP/1.1" 200 9',
    ]


def test_django_logger_has_no_unscrubbed_default_console_handler():
    """Django's DEFAULT_LOGGING console handler (DEBUG only) is replaced by ours."""
    handlers = [
        h
        for h in logging.getLogger("django").handlers
        if not type(h).__module__.startswith("_pytest")
    ]
    assert handlers, "the django logger is configured explicitly"
    for handler in handlers:
        assert any(type(f).__name__ == "ScrubTokenFilter" for f in handler.filters), handlers


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_unknown_patient_link_with_debug_on_logs_no_token(client, log_guard):
    response = client.get(reverse("crf:patient_start", args=[TOKEN]))
    assert response.status_code == 404
    logged = "\n".join(text for _name, text in log_guard.lines)
    assert "/crf/q/[redacted]/" in logged  # Django did log the request ...
    assert TOKEN not in logged  # ... without the token


@pytest.mark.django_db
def test_guard_catches_a_questionnaire_token_api_token_and_hospital_number(
    log_guard, nurse_a, site_a
):
    """The suite-wide guard really fails a test: each kind of secret, logged on purpose."""
    from knox.models import AuthToken

    import crf.services
    from cohort.models import Identity

    log = logging.getLogger("blend.leak-on-purpose")
    token = crf.services.new_token()
    log.info("link token %s", token)
    with pytest.raises(LogLeak, match="questionnaire token"):
        log_guard.check()
    log_guard.forget()

    _instance, api_token = AuthToken.objects.create(nurse_a)
    log.info("issued %s", api_token)
    with pytest.raises(LogLeak, match="API token"):
        log_guard.check()
    log_guard.forget()

    Identity(hospital_number="HN4711XY")  # any Identity built in a test is known to the guard
    log.warning("lookup of HN4711XY failed")
    with pytest.raises(LogLeak, match="hospital number"):
        log_guard.check()
    log_guard.forget()

    log.info("GET /crf/q/%s/ 200", "A" * 43)  # scrubbed when the record is made
    log.info("ok: /crf/q/done/ and an unrelated HN4711XYZ")
    log_guard.check()


def test_guard_reads_watched_files(log_guard, tmp_path):
    access_log = tmp_path / "access.log"
    access_log.write_text(f'127.0.0.1 "GET /crf/q/{TOKEN}/ HTTP/1.1" 404\n')
    log_guard.watch_file(access_log)
    with pytest.raises(LogLeak, match="access.log: a questionnaire link"):
        log_guard.check()
    log_guard.forget()
