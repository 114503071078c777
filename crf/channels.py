"""How a questionnaire invitation reaches a patient: a channel abstraction.

Email is the only channel now; SMS can follow by adding a channel class and
returning it from :func:`channel_for`. A channel raises :class:`SendFailed` when
the message was not handed over (the sweep retries with backoff).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from django.core.mail import EmailMultiAlternatives, get_connection

from crf import conf

if TYPE_CHECKING:  # pragma: no cover
    from cohort.models import Identity


class SendFailed(Exception):
    """The message was not handed over; ``reason`` is safe to store (no address, no token)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason[:200]


@dataclass(frozen=True)
class OutgoingMessage:
    to: str
    subject: str
    text: str
    html: str | None = None


class Channel(Protocol):
    name: str

    def address_for(self, identity: Identity) -> str | None: ...

    def send(self, message: OutgoingMessage) -> None: ...


class EmailChannel:
    """Email through Django's mail backend (SMTP in production)."""

    name = "email"

    def address_for(self, identity: Identity) -> str | None:
        email = (getattr(identity, "email", "") or "").strip()
        return email or None

    def send(self, message: OutgoingMessage) -> None:
        try:
            connection = get_connection(backend=conf.email_backend(), fail_silently=False)
            mail = EmailMultiAlternatives(
                subject=message.subject,
                body=message.text,
                to=[message.to],
                connection=connection,
                headers={"Auto-Submitted": "auto-generated"},
            )
            if message.html:
                mail.attach_alternative(message.html, "text/html")
            sent = mail.send(fail_silently=False)
        except Exception as exc:  # noqa: BLE001 - any transport error is a failed send
            raise SendFailed(f"{exc.__class__.__name__}: {str(exc)[:150]}") from exc
        if sent != 1:
            raise SendFailed("the mail backend accepted no message")


def channel_for(identity: Identity | None) -> Channel:
    """The channel to reach a participant (email for now)."""
    return EmailChannel()
