"""No secret in a log line: questionnaire links carry a token, API requests an
``Authorization: Token``, and query strings may carry a hospital record number.

:func:`scrub_text` removes all three. It is applied when a log record is *made*
(:func:`install_record_scrubber`, installed by :func:`configure`, Django's
``LOGGING_CONFIG``), so no handler of any library sees the raw text: not our console
handler, not Django's DEBUG console handler, not gunicorn's error log, not pytest's
capture. The gunicorn access log has its own scrubbing logger class
(``blend/gunicorn.conf.py``) built on the same function.
"""

from __future__ import annotations

import logging
import logging.config
import re
from typing import Any

REDACTED = "[redacted]"

# /q/<token> (patient links); the thank-you page /q/done/ holds no token.
_LINK_RE = re.compile(r"(/q/)(?!done(?![A-Za-z0-9_\-]))[A-Za-z0-9_\-:.%~]+")
_AUTH_RE = re.compile(r"((?:Token|Bearer|Basic)\s+)[A-Za-z0-9+/=_\-.:~]{8,}")
# A query string right after a path or URL: keep the keys, drop the values except a few
# that can never identify anyone (page numbers, a status filter, the language).
_QUERY_RE = re.compile(r"(?<=[\w/])\?([^\s\"'<>]+)")
_SAFE_QUERY_KEYS = frozenset({"page", "page_size", "status", "model", "format", "lang"})


def _scrub_query(match: re.Match[str]) -> str:
    parts = []
    for pair in match.group(1).split("&"):
        key, sep, value = pair.partition("=")
        safe = key in _SAFE_QUERY_KEYS and re.fullmatch(r"[\w\-]{0,20}", value)
        if sep and value and not safe:
            value = REDACTED
        elif not sep and key:
            key = REDACTED
        parts.append(f"{key}{sep}{value}")
    return "?" + "&".join(parts)


def scrub_text(text: str) -> str:
    """``text`` without questionnaire tokens, credentials or query-string values."""
    if not text or ("/q/" not in text and "?" not in text and not _AUTH_RE.search(text)):
        return text
    text = _LINK_RE.sub(r"\1" + REDACTED, text)
    text = _AUTH_RE.sub(r"\1" + REDACTED, text)
    return _QUERY_RE.sub(_scrub_query, text)


def scrub_path(path: str) -> str:
    """A request path (with or without its query string), scrubbed for an access log."""
    return scrub_text(path or "")


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Replace the message (and a traceback) of ``record`` by their scrubbed text."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record stays as it is; logging reports it
        return record
    scrubbed = scrub_text(message)
    if scrubbed != message:
        record.msg, record.args = scrubbed, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = scrub_text(record.stack_info)
    return record


def install_record_scrubber() -> None:
    """Scrub every log record of this process when it is made (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "blend_scrubs", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(previous(*args, **kwargs))

    factory.blend_scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def configure(config: dict) -> None:
    """Django's ``LOGGING_CONFIG``: the record scrubber, then the ``LOGGING`` dict."""
    install_record_scrubber()
    logging.config.dictConfig(config)


class ScrubTokenFilter(logging.Filter):
    """Handler filter: a second line of defence for records made before the scrubber
    was installed (e.g. during start-up)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True
