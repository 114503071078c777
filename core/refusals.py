"""One refusal type for every service (ENGINEERING §2): a message for people, reason codes
for machines, and field errors for forms and the API.

A :class:`Refusal` carries

- ``message``: what to tell the person (on top of a form; the API's ``detail``);
- ``reasons``: machine-readable codes, by default ``[cls.code]`` (a 409 answer carries
  them in ``errors.reasons``);
- ``field_errors``: ``{field: [messages]}`` (or nested, ``{field: {item: [messages]}}``);
  a refusal raised with a ``field`` (argument or class attribute) puts its message there;
- ``non_field_errors``: messages about the input as a whole (the message itself when the
  refusal names no field and no field errors).

``status_code`` decides the API answer in the one handler branch
(``core.apis.exception_handler``): 400 for input a person can correct (:class:`Invalid`),
409 for a conflict with the current state (the default), 403 for access
(:class:`NotAllowed`, also a Django ``PermissionDenied`` so that screens answer 403).
One adapter shows a refusal on an HTML form (``core.forms.add_refusal``).

Domain refusals stay in their app and derive from these (``cohort.services.
DuplicateHospitalNumber``, ``randomization.services.NotEligible``,
``crf.services.EntryRefused``, ...). The one "not in the future" rule is here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:  # pragma: no cover - django-stubs-ext is a development dependency
    from django_stubs_ext import StrOrPromise

# The keys under which messages about the input as a whole arrive (Django's and DRF's).
NON_FIELD_KEYS = frozenset({NON_FIELD_ERRORS, "non_field_errors"})


def _messages(value: Any) -> Any:
    """``{field: [messages]}`` values as lists of strings; nested objects stay nested."""
    if isinstance(value, Mapping):
        return {str(k): _messages(v) for k, v in value.items()}
    if isinstance(value, ValidationError):
        return [str(m) for m in value.messages]
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for item in value:
            out.extend(_messages(item) if isinstance(item, ValidationError) else [str(item)])
        return out
    return [str(value)]


def flat_messages(errors: Any) -> list[str]:
    """The messages of field errors (a list, or nested objects of lists) in one list."""
    if isinstance(errors, Mapping):
        return [m for value in errors.values() for m in flat_messages(value)]
    if isinstance(errors, (list, tuple)):
        return [str(m) for m in errors]
    return [str(errors)]


class Refusal(Exception):
    """A service refused; nothing was written."""

    code = "refused"
    default_message: StrOrPromise = _("This cannot be done.")
    field: str | None = None
    status_code = 409

    def __init__(
        self,
        message: Any = None,
        *,
        reasons: Iterable[str] | None = None,
        field: str | None = None,
        errors: Mapping[str, Any] | None = None,
    ):
        self.message = message or self.default_message
        self.reasons = list(reasons or [self.code])
        self.field = field or type(self).field
        if self.field in NON_FIELD_KEYS:
            self.field = None
        self.field_errors: dict[str, Any] = {}
        self.non_field_errors: list[str] = []
        for key, value in (errors or {}).items():
            if key in NON_FIELD_KEYS:
                self.non_field_errors.extend(_messages(value))
            else:
                self.field_errors[key] = _messages(value)
        if self.field:
            self.field_errors.setdefault(self.field, []).append(str(self.message))
        elif not self.field_errors and not self.non_field_errors:
            self.non_field_errors.append(str(self.message))
        super().__init__(str(self.message))

    def __str__(self) -> str:
        return str(self.message)

    @property
    def messages(self) -> list[str]:
        """Every message, those about the whole input first (for a one-line notice)."""
        return [*self.non_field_errors, *flat_messages(self.field_errors)]

    @classmethod
    def from_validation_error(cls, exc: ValidationError, **kwargs: Any) -> Refusal:
        """A model ``full_clean`` error as a refusal (field errors kept by field)."""
        errors: Mapping[str, Any] = (
            exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc}
        )
        return cls(errors=errors, **kwargs)

    def nested(self, *, fields: Iterable[str], under: str) -> Refusal:
        """The same refusal with the errors of ``fields`` moved under ``under`` (an input
        that nests them, e.g. the API's ``identity`` object)."""
        names = set(fields)
        moved = {k: v for k, v in self.field_errors.items() if k in names}
        if not moved:
            return self
        clone = type(self).__new__(type(self))  # same class and attributes, not re-initialised
        clone.__dict__.update(self.__dict__)
        clone.args = self.args
        clone.field_errors = {k: v for k, v in self.field_errors.items() if k not in names}
        clone.field_errors[under] = moved
        return clone


class Invalid(Refusal):
    """Input a person can correct: API 400 with the field errors."""

    code = "invalid"
    default_message: StrOrPromise = _("Invalid input.")
    status_code = 400


class NotAllowed(Refusal, PermissionDenied):
    """The user's role or site does not allow this write: 403 on screens and in the API."""

    code = "not_allowed"
    default_message: StrOrPromise = _("Your role does not allow this.")
    status_code = 403


# --- the one "not in the future" rule ---------------------------------------------------------
class DateInFuture(Invalid):
    code = "date_in_future"
    default_message: StrOrPromise = _("This date is in the future.")


def date_in_future(
    value: date | None, *, field: str, today: date | None = None
) -> DateInFuture | None:
    """The refusal of a date after today (Europe/Amsterdam) under ``field``, or None: for
    checks that collect refusals before they write."""
    if value is not None and value > (today or timezone.localdate()):
        return DateInFuture(field=field)
    return None


def not_future(value: date | None, *, field: str, today: date | None = None) -> None:
    """Refuse a date after today: raises :func:`date_in_future`'s refusal."""
    refusal = date_in_future(value, field=field, today=today)
    if refusal is not None:
        raise refusal
