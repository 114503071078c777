"""crf fixtures: cohort participants with consent (a) and (b) and an email address (through
the cohort services, tests/factories.py), answering helpers, and real Celery beat processes.
BLEND and its schedule come from the shared ``blend`` fixture (tests/conftest.py)."""

from __future__ import annotations

from datetime import date

import pytest

from tests import factories

PF2_ANSWERS = {f"q{i}": 1 for i in range(1, 15)} | {"q15": 6}

CONSENTED_ON = date(2024, 1, 10)


@pytest.fixture
def make_prom_participant(db):
    """The crf tests' participant (root ``make_participant`` with questionnaire defaults):
    make_prom_participant(site, email=..., language=..., proms=True) -> Participant with
    consent (a) and (b) given on 10 Jan 2024 and an identity holding the email address."""

    def _make(site, *, email="patient@example.invalid", language="nl", proms=True):
        return factories.ParticipantFactory(
            site=site,
            email=email,
            preferred_language=language,
            consents={"cohort": True, "proms": proms},
            consents_on=CONSENTED_ON,
        )

    return _make


@pytest.fixture
def participant(make_prom_participant, site_a):
    return make_prom_participant(site_a)


# --- answering helpers -------------------------------------------------------------------------
def full_answers(code: str, *, choice_index: int = 0) -> dict:
    """Valid answers to every applicable required item of an instrument."""
    from crf import instruments

    answers: dict = {}
    for _round in range(3):  # follow-up items apply only after the item they depend on
        for item in instruments.applicable_items(code, answers):
            if not item.required or item.code in answers:
                continue
            if item.kind == "choice":
                values = item.choice_values
                answers[item.code] = values[min(choice_index, len(values) - 1)]
            elif item.kind == "number":
                answers[item.code] = int(item.min)
            elif item.kind == "analgesics":
                answers[item.code] = [
                    {"drug": "paracetamol", "route": "oral", "daily_dose": 3000, "unit": "mg/day"}
                ]
            elif item.kind == "text":
                answers[item.code] = "x"
    assert instruments.validate(code, answers, complete=True) == {}, code
    return answers


def post_data(code: str, answers: dict, prefix: str = "") -> dict:
    """Form fields as a browser would send them for ``answers``."""
    data: dict = {}
    for key, value in answers.items():
        name = f"{prefix}{key}"
        if isinstance(value, list):
            rows = value or [{"drug": "", "route": "", "daily_dose": "", "unit": ""}]
            data[f"{name}__drug"] = [r.get("drug", "") for r in rows]
            data[f"{name}__route"] = [r.get("route", "") for r in rows]
            data[f"{name}__dose"] = [str(r.get("daily_dose", "")) for r in rows]
            data[f"{name}__unit"] = [r.get("unit", "") for r in rows]
        else:
            data[name] = str(value)
    return data


def local_noon(days_from_today: int = 0):
    from datetime import datetime, time, timedelta

    from django.utils import timezone

    day = timezone.localdate() + timedelta(days=days_from_today)
    return timezone.make_aware(datetime.combine(day, time(12, 0)))


@pytest.fixture
def open_questionnaire(blend, mailoutbox):
    """open_questionnaire(participant, "week2") -> (questionnaire, token): day 0 chosen so
    that the timepoint is due today, the sweep sent the invitation, the token read from the
    mail (as the patient would)."""
    import re
    from datetime import timedelta

    from django.utils import timezone

    from crf import services
    from crf.models import Questionnaire, Timepoint

    def _open(participant, code="week2"):
        tp = Timepoint.objects.get(trial=blend, code=code)
        # due tomorrow; the sweep runs "tomorrow at noon", always later than the real now
        day0 = timezone.localdate() + timedelta(days=1 - tp.day_offset)
        services.schedule_anchor(participant=participant, trial=blend, day0=day0, is_actual=True)
        before = len(mailoutbox)
        services.questionnaires_sweep(now=local_noon(1))
        q = Questionnaire.objects.get(participant=participant, timepoint=tp)
        assert q.status == "sent", q.status
        token = None
        for message in mailoutbox[before:]:
            if participant.identity.email in message.to:
                match = re.search(r"/q/([A-Za-z0-9_\-]+)/", message.body)
                token = match.group(1)
        assert token
        return q, token

    return _open


# --- real Celery beat processes ---------------------------------------------------------------
class BeatProcess:
    """A real `celery beat` subprocess (the doorbell), with the sweep every ``interval`` s."""

    def __init__(self, redis_url: str, workdir, interval: float = 1.0):
        self.redis_url = redis_url
        self.workdir = workdir
        self.interval = interval
        self.proc = None

    def start(self):
        import subprocess
        import sys
        import time as _time

        from tests.conftest import ARTIFACTS, ROOT, _worker_env

        env = _worker_env(self.redis_url)
        env["QUESTIONNAIRE_SWEEP_INTERVAL_SECONDS"] = str(self.interval)
        tag = _time.monotonic_ns()
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"celery-beat-{tag}.log"
        self.proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "blend",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.workdir / f"beat-{tag}.db"),
                "--pidfile",
                str(self.workdir / f"beat-{tag}.pid"),
            ],
            env=env,
            cwd=ROOT,
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = _time.monotonic() + 20
        while _time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery beat exited early; see {self.log_path}")
            if any(self.workdir.glob(f"beat-{tag}.db*")):  # beat opened its schedule
                return self
            _time.sleep(0.2)
        raise RuntimeError(f"celery beat not ready; see {self.log_path}")

    def stop(self):
        import os
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except Exception:  # noqa: BLE001
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


@pytest.fixture
def celery_beat_process(transactional_db, tmp_path):
    beats: list[BeatProcess] = []

    def _start(redis_url: str | None = None, interval: float = 1.0) -> BeatProcess:
        from django.conf import settings

        beat = BeatProcess(redis_url or settings.REDIS_URL, tmp_path, interval).start()
        beats.append(beat)
        return beat

    yield _start
    for beat in beats:
        beat.stop()
