"""Database hygiene for the benchmarks: statistics and vacuum after seeding.

PostgreSQL on the development machines runs with autovacuum off; production does not. A
freshly seeded database without statistics or a visibility map gets plans and heap fetches no
production database would, so every benchmark runs ``VACUUM ANALYZE`` (``ANALYZE`` on SQLite)
after seeding and before measuring.
"""

from __future__ import annotations

import sqlite3
import time


def vacuum_analyze(database_url: str | None, sqlite_path: str | None = None) -> float:
    """VACUUM ANALYZE the PostgreSQL database at ``database_url`` (or ANALYZE the SQLite file
    at ``sqlite_path``); returns the seconds it took."""
    began = time.perf_counter()
    if database_url and database_url.startswith(("postgres://", "postgresql://")):
        import psycopg2

        conn = psycopg2.connect(database_url)
        conn.autocommit = True  # VACUUM cannot run in a transaction
        with conn.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        conn.close()
    elif sqlite_path:
        conn = sqlite3.connect(sqlite_path)
        conn.execute("ANALYZE")
        conn.close()
    return time.perf_counter() - began
