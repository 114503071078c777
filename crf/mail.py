"""Mail backends for tests and demos that count across processes.

:class:`FileCountingBackend` appends one JSON line per message to a file, so a
test can count what a Celery worker subprocess sent. Configure it in the
worker with ``QUESTIONNAIRE_EMAIL_BACKEND=crf.mail.FileCountingBackend`` and
``CRF_MAIL_COUNT_FILE=<path>``. ``CRF_MAIL_SEND_DELAY`` (seconds, tests only)
makes each send slow so a test can kill the worker in the middle of it; the
line is written only after the delay, as an SMTP server accepts a message only
at the end of the transfer.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend


def count_file() -> str:
    return os.environ.get("CRF_MAIL_COUNT_FILE") or os.path.join(
        settings.EMAIL_FILE_PATH, "sent.jsonl"
    )


def read_sent(path: str | None = None) -> list[dict]:
    """Every message a FileCountingBackend wrote to ``path``."""
    path = path or count_file()
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class FileCountingBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        delay = float(os.environ.get("CRF_MAIL_SEND_DELAY") or 0)
        path = count_file()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        sent = 0
        for message in email_messages:
            if delay:
                time.sleep(delay)
            line = json.dumps(
                {
                    "to": message.to,
                    "subject": message.subject,
                    "body": message.body,
                    "pid": os.getpid(),
                    "at": time.time(),
                }
            )
            with open(path, "a", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            sent += 1
        return sent
