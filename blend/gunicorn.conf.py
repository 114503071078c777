"""gunicorn settings of the project: ``gunicorn -c blend/gunicorn.conf.py blend.wsgi:application``.

- The access log never shows a secret: patient links (``/crf/q/<token>/``) appear as
  ``/crf/q/[redacted]/``, query-string values (a search may carry a hospital record
  number) as ``[redacted]`` (page numbers and status filters stay), and the referrer,
  ``Authorization`` and cookie headers are scrubbed or dropped whatever
  ``access_log_format`` says. The error log is scrubbed the same way (core.logging).
- No ``Server: gunicorn`` header.
- Everything else can be overridden on the command line or with ``GUNICORN_CMD_ARGS``.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger
from gunicorn.http import wsgi

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.logging import REDACTED, install_record_scrubber, scrub_path, scrub_text  # noqa: E402

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
accesslog = "-"
errorlog = "-"
# No control socket: gunicorn's default path is one per user ($HOME/.gunicorn), shared
# by every instance on the machine; production is managed by its process supervisor.
control_socket_disable = True
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'

_SECRET_HEADERS = {"authorization", "cookie", "set-cookie", "proxy-authorization"}


class ScrubbingLogger(Logger):
    """gunicorn's logger with every request-derived atom passed through core.logging."""

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta
    ) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        raw_uri = environ.get("RAW_URI") or environ.get("PATH_INFO") or ""
        atoms["r"] = "{} {} {}".format(
            environ.get("REQUEST_METHOD", "-"),
            scrub_path(raw_uri),
            environ.get("SERVER_PROTOCOL", "-"),
        )
        atoms["U"] = scrub_path(atoms.get("U") or "")
        query = atoms.get("q") or ""
        atoms["q"] = scrub_text("/?" + query)[2:] if query else ""
        atoms["f"] = scrub_text(atoms.get("f") or "-")
        for key, value in list(atoms.items()):
            if not (isinstance(key, str) and key.startswith("{")):
                continue
            name = key[1:].rsplit("}", 1)[0].lower().removeprefix("http_").replace("_", "-")
            if name in _SECRET_HEADERS:
                atoms[key] = REDACTED
            elif isinstance(value, str):
                atoms[key] = scrub_text(value)
        return atoms


logger_class = ScrubbingLogger

# Records made in the master (and inherited by workers) are scrubbed when made.
install_record_scrubber()

# No "Server: gunicorn" header (gunicorn has no setting for it).
_default_headers = wsgi.Response.default_headers


def _default_headers_without_server(self: wsgi.Response) -> list[str]:
    return [h for h in _default_headers(self) if not h.lower().startswith("server:")]


wsgi.Response.default_headers = _default_headers_without_server
