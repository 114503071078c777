"""Reliability with a real Celery worker, real beat and real Redis (SPEC.md §3.6): the
database is the source of truth, so a killed worker or a stopped Redis delays mail and
never loses or duplicates it."""

from __future__ import annotations

import signal
import socket
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.selectors import audit_trail
from crf import services
from crf.mail import read_sent
from crf.models import Questionnaire

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_env(monkeypatch, tmp_path, settings):
    """Environment the worker subprocesses inherit: a counting mail backend, contact at
    any hour (the test must not depend on the time of day), short time limits."""
    count_file = tmp_path / "sent.jsonl"
    monkeypatch.setenv("QUESTIONNAIRE_EMAIL_BACKEND", "crf.mail.FileCountingBackend")
    monkeypatch.setenv("CRF_MAIL_COUNT_FILE", str(count_file))
    monkeypatch.setenv("PATIENT_CONTACT_FROM_HOUR", "0")
    monkeypatch.setenv("PATIENT_CONTACT_UNTIL_HOUR", "24")
    monkeypatch.setenv("CELERY_TASK_SOFT_TIME_LIMIT", "7")
    monkeypatch.setenv("CELERY_TASK_TIME_LIMIT", "8")
    monkeypatch.setenv("QUESTIONNAIRE_SENDING_STALE_SECONDS", "9")
    monkeypatch.setenv("QUESTIONNAIRE_SWEEP_SECONDS_BUDGET", "5")
    settings.PATIENT_CONTACT_HOURS = (0, 24)
    return count_file


def due_baselines(blend, make_prom_participant, site, n=1, prefix="p"):
    """Participants whose baseline window has been open for days: the invitation is due."""
    people = []
    for i in range(n):
        p = make_prom_participant(site, email=f"{prefix}{i}@example.invalid")
        services.schedule_anchor(
            participant=p,
            trial=blend,
            day0=timezone.localdate() + timedelta(days=3),
            is_actual=False,
        )
        # only the baseline matters in these tests
        Questionnaire.objects.filter(participant=p).exclude(timepoint__code="baseline").update(
            status="cancelled", next_action_at=None
        )
        people.append(p)
    return people


def wait_for(predicate, timeout=60.0, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def baseline(p) -> Questionnaire:
    return Questionnaire.objects.get(participant=p, timepoint__code="baseline")


def test_sigkill_during_send_gives_exactly_one_email_after_restart(
    blend,
    make_prom_participant,
    site_a,
    worker_env,
    monkeypatch,
    celery_worker_process,
    celery_beat_process,
):
    monkeypatch.setenv("CRF_MAIL_SEND_DELAY", "4")  # the kill lands inside the hand-over
    (p,) = due_baselines(blend, make_prom_participant, site_a)
    worker = celery_worker_process()
    beat = celery_beat_process(interval=1.0)
    assert wait_for(lambda: baseline(p).status == "sending", 30), "the send never started"
    children = worker.children()
    worker.stop(signal.SIGKILL)  # the whole worker, children included, mid-send
    beat.stop()
    for pid in children:
        assert wait_for(lambda pid=pid: not _alive(pid), 10)
    assert read_sent(str(worker_env)) == []  # killed before the message was handed over
    q = baseline(p)
    assert q.status == "sending"  # the claim survives in the database

    monkeypatch.setenv("CRF_MAIL_SEND_DELAY", "0")
    celery_worker_process()
    celery_beat_process(interval=1.0)
    assert wait_for(lambda: baseline(p).status == "sent", 60), "not resent after restart"
    time.sleep(4)  # several more sweeps: still one mail
    sent = read_sent(str(worker_env))
    assert [line["to"] for line in sent] == [["p0@example.invalid"]]
    statuses = [
        e.changes["status"][1]
        for e in audit_trail(model=Questionnaire, pk=q.pk)
        if "status" in e.changes
    ]
    assert statuses == ["sending", "sending", "sent"] or statuses[-2:] == ["sending", "sent"]


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_beats_and_two_workers_send_each_invitation_once(
    blend,
    make_prom_participant,
    site_a,
    worker_env,
    monkeypatch,
    celery_worker_process,
    celery_beat_process,
):
    monkeypatch.setenv("CRF_MAIL_SEND_DELAY", "0.1")
    people = due_baselines(blend, make_prom_participant, site_a, n=15)
    celery_worker_process()
    celery_worker_process()
    celery_beat_process(interval=0.5)
    celery_beat_process(interval=0.5)
    assert wait_for(
        lambda: (
            Questionnaire.objects.filter(timepoint__code="baseline", status="sent").count() == 15
        ),
        90,
    )
    time.sleep(3)
    sent = read_sent(str(worker_env))
    recipients = sorted(r for line in sent for r in line["to"])
    assert recipients == sorted(f"p{i}@example.invalid" for i in range(15))
    assert len({line["pid"] for line in sent}) >= 2  # both workers really sent
    assert all(baseline(p).sent_at for p in people)


def test_smtp_failure_backs_off_and_ends_failed_with_a_real_worker(
    blend,
    make_prom_participant,
    site_a,
    worker_env,
    monkeypatch,
    celery_worker_process,
    celery_beat_process,
):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("QUESTIONNAIRE_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
    monkeypatch.setenv("EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("EMAIL_PORT", str(port))
    monkeypatch.setenv("QUESTIONNAIRE_MAX_SEND_ATTEMPTS", "3")
    monkeypatch.setenv("QUESTIONNAIRE_RETRY_BASE_SECONDS", "1")
    (p,) = due_baselines(blend, make_prom_participant, site_a)
    celery_worker_process()
    celery_beat_process(interval=0.5)
    assert wait_for(lambda: baseline(p).status == "failed", 60)
    q = baseline(p)
    assert q.attempts == 3 and "ConnectionRefused" in q.last_error and q.next_action_at is None
    trail = audit_trail(model=Questionnaire, pk=q.pk)
    attempts = [e for e in trail if e.label == "update" and e.changes.get("attempts")]
    assert [e.changes["attempts"][1] for e in attempts] == [1, 2, 3]
    assert all(e.actor == "celery:crf.questionnaires_sweep" for e in attempts)
    # the retries were spaced by the backoff (1 s, then 2 s), not immediate
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9


def test_redis_down_keeps_pages_working_and_mail_goes_out_once_back(
    blend,
    make_prom_participant,
    site_a,
    worker_env,
    monkeypatch,
    private_redis,
    settings,
    celery_worker_process,
    celery_beat_process,
    client,
    nurse_a,
):
    from tests.crf.conftest import full_answers, post_data

    settings.REDIS_URL = settings.CELERY_BROKER_URL = private_redis.url
    # one participant answers on paper (nurse entry), one online, one waits for mail
    paper, online = due_baselines(blend, make_prom_participant, site_a, n=2, prefix="x")
    waiting = make_prom_participant(site_a, email="waiting@example.invalid")
    # the online participant already has a link (sent before Redis went down)
    services.questionnaires_sweep()
    token = _token_for(online)
    Questionnaire.objects.filter(participant=paper).update(status="open", next_action_at=None)

    celery_worker_process(redis_url=private_redis.url)
    private_redis.stop()

    # nurse data entry works with Redis down
    client.force_login(nurse_a)
    q = baseline(paper)
    data = {"mode": "paper", "completed_on": timezone.localdate().isoformat()}
    for code in q.timepoint.instruments:
        data |= post_data(code, full_answers(code), prefix=f"{code}-")
    response = client.post(reverse("crf:questionnaire_entry", args=[q.pk]), data)
    assert response.status_code == 302
    assert baseline(paper).status == "completed"
    # the patient page works with Redis down
    client.logout()
    assert client.get(reverse("crf:patient_start", args=[token])).status_code == 200
    assert client.post(reverse("crf:patient_start", args=[token])).status_code == 302

    # a new invitation becomes due while Redis is down: the doorbell cannot ring
    services.schedule_anchor(
        participant=waiting,
        trial=blend,
        day0=timezone.localdate() + timedelta(days=3),
        is_actual=False,
    )
    Questionnaire.objects.filter(participant=waiting).exclude(timepoint__code="baseline").update(
        status="cancelled", next_action_at=None
    )
    time.sleep(2)
    assert baseline(waiting).status == "scheduled"

    private_redis.start()
    celery_beat_process(redis_url=private_redis.url, interval=0.5)
    assert wait_for(lambda: baseline(waiting).status == "sent", 60)
    time.sleep(3)
    sent = [
        line for line in read_sent(str(worker_env)) if line["to"] == ["waiting@example.invalid"]
    ]
    assert len(sent) == 1


def _token_for(p) -> str:
    """Re-issue a known link for a sent questionnaire (the test cannot read locmem mail of
    another process): a new link row with a token the test knows."""
    import uuid

    from crf.models import QuestionnaireLink

    q = baseline(p)
    token = services.new_token()
    QuestionnaireLink.objects.create(
        questionnaire=q,
        token_hash=services.token_hash(token),
        kind="invitation",
        attempt=uuid.uuid4(),
        expires_at=q.closes_at,
    )
    if q.status != "sent":
        Questionnaire.objects.filter(pk=q.pk).update(
            status="sent", sent_at=timezone.now(), next_action_at=q.closes_at
        )
    return token
