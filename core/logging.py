"""Log filters: questionnaire links carry secrets and must never reach a log line."""

import logging
import re

_TOKEN_RE = re.compile(r"(/q/)[A-Za-z0-9_\-:.]+")
_AUTH_RE = re.compile(r"(Token\s+)[A-Za-z0-9]+")


class ScrubTokenFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            try:
                record.msg = record.getMessage()
                record.args = ()
            except Exception:  # pragma: no cover - keep logging alive
                return True
        if isinstance(record.msg, str):
            record.msg = _AUTH_RE.sub(r"\1[redacted]", _TOKEN_RE.sub(r"\1[redacted]", record.msg))
        return True
