"""Pure cohort rules: study number format, participant status, free-text checks.

No ORM, no I/O: plain values in, plain values out (table tests + Hypothesis in
tests/cohort/test_rules.py). The validators raise Django's ``ValidationError`` so
forms, serializers and ``full_clean`` report them next to the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

STUDY_NUMBER_PREFIX = "PRE-"
STUDY_NUMBER_RE = re.compile(r"^PRE-(\d{5,})$")

# --- study numbers -------------------------------------------------------------------------


def format_study_number(n: int) -> str:
    """``42`` -> ``PRE-00042``; numbers past 99999 keep growing (``PRE-100000``)."""
    if n < 1:
        raise ValueError("study numbers start at 1")
    return f"{STUDY_NUMBER_PREFIX}{n:05d}"


def parse_study_number(text: str) -> int | None:
    """The number inside a study number (``pre-00042`` and ``42`` both give 42), else None."""
    text = (text or "").strip().upper()
    if text.isdigit() and 0 < len(text) <= 9:
        return int(text) or None
    m = STUDY_NUMBER_RE.match(text)
    return int(m.group(1)) if m else None


# --- status ---------------------------------------------------------------------------------


class Status:
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    DECEASED = "deceased"

    ALL = (ACTIVE, WITHDRAWN, DECEASED)


@dataclass(frozen=True)
class ParticipantStatus:
    code: str
    withdrawn_scopes: tuple[str, ...] = ()
    died_on: date | None = None


def search_safe_in_url(value: str) -> bool:
    """A participant search that may appear in a URL (and so in access logs): a study
    number (``PRE-00042``) or up to five digits of one. Anything else may be a hospital
    record number, and is only ever sent in a POST body."""
    value = (value or "").strip().upper()
    return not value or value.startswith("PRE") or (value.isdigit() and len(value) <= 5)


def participant_status(
    *, died_on: date | None, withdrawn_scopes: Iterable[str] | None, on: date
) -> ParticipantStatus:
    """Deceased wins over withdrawn, withdrawn (any scope effective by ``on``) over active."""
    scopes = tuple(sorted(set(withdrawn_scopes or ())))
    if died_on is not None and died_on <= on:
        return ParticipantStatus(Status.DECEASED, scopes, died_on)
    if scopes:
        return ParticipantStatus(Status.WITHDRAWN, scopes, None)
    return ParticipantStatus(Status.ACTIVE, (), None)


# --- consent ----------------------------------------------------------------------------------


class ConsentedRecord(Protocol):
    element: str
    answer: bool
    given_on: date
    recorded_at: datetime
    pk: Any


R = TypeVar("R", bound=ConsentedRecord)


def latest_by_element(records: Iterable[R]) -> dict[str, R]:
    """The answer in force per consent element: of the (not superseded) records given, the
    latest by date given, then by when it was recorded."""
    latest: dict[str, R] = {}
    for record in records:
        current = latest.get(record.element)
        if current is None or (record.given_on, record.recorded_at, record.pk) > (
            current.given_on,
            current.recorded_at,
            current.pk,
        ):
            latest[record.element] = record
    return latest


@dataclass(frozen=True)
class ConsentRule:
    """What an activity needs: these consent elements answered yes, no withdrawal of one of
    the ``stopped_by`` scopes, and the participant alive."""

    elements: tuple[str, ...]
    stopped_by: frozenset[str]
    withdrawn_reason: str


def consent_reasons(
    rule: ConsentRule, *, answers: Mapping[str, bool], withdrawn_scopes: Iterable[str], dead: bool
) -> list[str]:
    """Why (not) the activity of ``rule`` is allowed: reason codes, empty when it is."""
    reasons = [f"consent_{e}_missing" for e in rule.elements if not answers.get(e)]
    if set(withdrawn_scopes) & rule.stopped_by:
        reasons.append(rule.withdrawn_reason)
    if dead:
        reasons.append("deceased")
    return reasons


# --- free-text validators ---------------------------------------------------------------------

_MARKUP_RE = re.compile(r"<[a-zA-Z/!?]|&[a-zA-Z#][a-zA-Z0-9]*;|javascript:", re.IGNORECASE)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NAME_RE = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ '’.\-])*$")
_HOSPITAL_NUMBER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-]{2,19}$")
_PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()\-]{5,19}$")


def contains_markup(text: str) -> bool:
    return bool(_MARKUP_RE.search(text or "")) or bool(_CONTROL_RE.search(text or ""))


def validate_no_markup(value: str) -> None:
    """Refuse HTML tags, entities, script URLs and control characters in free text."""
    if contains_markup(value):
        raise ValidationError(
            _("HTML, script or control characters are not allowed here."), code="markup"
        )


def validate_person_name(value: str) -> None:
    validate_no_markup(value)
    text = (value or "").strip()
    # \w also matches numeric letters such as '²' or '½'; names never contain them.
    if not _NAME_RE.match(text) or any(c.isnumeric() for c in text):
        raise ValidationError(
            _("Use letters, spaces, apostrophes, dots and hyphens only."), code="name"
        )


def validate_hospital_number(value: str) -> None:
    if not _HOSPITAL_NUMBER_RE.match(value or ""):
        raise ValidationError(
            _("A hospital record number has 3 to 20 letters, digits or hyphens."),
            code="hospital_number",
        )


def validate_phone(value: str) -> None:
    if value and not _PHONE_RE.match(value):
        raise ValidationError(
            _("Enter a phone number of digits, spaces and an optional leading +."), code="phone"
        )


def normalise_hospital_number(value: str) -> str:
    return (value or "").strip().upper()


def free_text_mentions(text: str, identifiers: Iterable[str]) -> bool:
    """True when ``text`` contains one of ``identifiers`` as a whole word (case-insensitive;
    identifiers shorter than 3 characters are ignored)."""
    haystack = (text or "").casefold()
    for ident in identifiers:
        needle = (ident or "").strip().casefold()
        if len(needle) < 3:
            continue
        if re.search(r"(?<!\w)" + re.escape(needle) + r"(?!\w)", haystack):
            return True
    return False


# --- day 0 ----------------------------------------------------------------------------------

# A planned start of treatment further ahead than this is probably a typing error (a year
# or a month off): the participant page flags it.
DAY0_PLANNED_WARN_DAYS = 90


def day0_planned_too_far(*, planned: date | None, actual: date | None, today: date) -> bool:
    """True when only a planned day 0 is known and it lies more than
    ``DAY0_PLANNED_WARN_DAYS`` days after ``today``."""
    if planned is None or actual is not None:
        return False
    return (planned - today).days > DAY0_PLANNED_WARN_DAYS
