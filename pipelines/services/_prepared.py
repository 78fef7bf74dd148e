"""Server-side prepared statements for the ingest path (PostgreSQL): the run's create statement
is planned once per connection and statement shape, then only executed (docs/benchmarks-ingest.md,
"The bare-app baseline and the machine path")."""

from __future__ import annotations

import threading

from django.conf import settings
from django.db import connection

_prepared: dict[tuple, tuple[str, str, int]] = {}
_prepared_lock = threading.Lock()


def execute_planned_once(cursor, shape: tuple, sql: str, params: list) -> None:
    """Run ``sql`` as a server-side prepared statement, prepared once per connection for its
    shape (the run's fields, the number of checks and of artefacts): planning the create
    statement took about as long as running it (docs/benchmarks-ingest.md). Off with
    ``INGEST_PREPARED_STATEMENTS=false``, for a pooler in transaction mode that cannot keep
    prepared statements."""
    if not settings.INGEST_PREPARED_STATEMENTS:
        cursor.execute(sql, params)
        return
    entry = _prepared.get(shape)
    if entry is None:
        with _prepared_lock:
            entry = _prepared.get(shape)
            if entry is None:
                name = f"releasegate_ingest_{len(_prepared)}"
                head, *rest = sql.split("%s")
                body = head + "".join(f"${i}{part}" for i, part in enumerate(rest, 1))
                entry = _prepared[shape] = (name, f"PREPARE {name} AS {body}", len(rest))
    name, prepare, count = entry
    raw = connection.connection
    known = getattr(connection, "releasegate_prepared", None)
    if known is None or known[0] is not raw:  # a new connection knows none of them
        known = connection.releasegate_prepared = (raw, set())
    if name not in known[1]:
        cursor.execute(prepare)
        known[1].add(name)
    cursor.execute(f"EXECUTE {name} ({', '.join(['%s'] * count)})", params)
