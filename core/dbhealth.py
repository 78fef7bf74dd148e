"""Database health checks without a round trip per request on a busy connection.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first query of every request
on a persistent connection, to find one the server dropped while it sat idle. On the machine
path that probe is a second round trip for a one-statement request (the ingest endpoint's
single INSERT). A connection that answered a query moments ago was not dropped "while idle":
this module skips the probe when the connection finished a request less than
``DB_HEALTH_CHECK_IDLE_SECONDS`` ago (default 5; 0 restores Django's probe on every request).

Recovery from a dropped connection stays: a connection that raised a database error is
checked and closed by Django at the end of that request (``errors_occurred``), so the next
request opens a new one; and an idle one is still probed before it is reused. Imports no
project app.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connections


def skip_recent_health_checks(**kwargs) -> None:
    """request_started, after Django's close_old_connections: a connection used within the
    idle window counts as checked for this request."""
    window = getattr(settings, "DB_HEALTH_CHECK_IDLE_SECONDS", 0)
    if window <= 0:
        return
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        if (
            conn.connection is not None
            and conn.health_check_enabled
            and not conn.health_check_done
            and now - getattr(conn, "releasegate_last_used", float("-inf")) < window
        ):
            conn.health_check_done = True


def note_connection_use(**kwargs) -> None:
    """request_finished, after Django's close_old_connections: remember when each open, healthy
    connection last served a request."""
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.errors_occurred:
            conn.releasegate_last_used = now
