"""`make bench`: speed at scale (see bench/__main__.py)."""

from __future__ import annotations

from typing import Any


def admin_connection(cfg: dict[str, Any]) -> Any:
    """An autocommit connection to the server's ``postgres`` database (to create and drop
    the bench databases), with the user, password, host and port of ``cfg``."""
    import psycopg2

    conn = psycopg2.connect(
        dbname="postgres",
        user=cfg["USER"] or None,
        password=cfg["PASSWORD"] or None,
        host=cfg["HOST"] or None,
        port=cfg["PORT"] or None,
    )
    conn.autocommit = True
    return conn
