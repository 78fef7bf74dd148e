"""A persistent connection is probed only after it sat idle (core/dbhealth.py). Django's own
close_old_connections runs first on each signal and resets ``health_check_done``; these tests
play that part and check what the two receivers decide."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from core import dbhealth


class Connections:
    def __init__(self, *conns):
        self.conns = conns

    def all(self, initialized_only=False):
        return list(self.conns)


@pytest.fixture
def conn(monkeypatch, settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 5
    c = SimpleNamespace(
        connection=object(),
        health_check_enabled=True,
        health_check_done=False,
        errors_occurred=False,
    )
    monkeypatch.setattr(dbhealth, "connections", Connections(c))
    return c


def request_starts(c) -> bool:
    """Django resets the flag, then our receiver decides; True when the request will probe."""
    c.health_check_done = False
    dbhealth.skip_recent_health_checks()
    return not c.health_check_done


def test_a_connection_never_noted_is_probed(conn):
    assert request_starts(conn)


def test_a_connection_used_moments_ago_is_not_probed(conn):
    dbhealth.note_connection_use()
    assert not request_starts(conn)
    assert not request_starts(conn)


def test_an_idle_connection_is_probed(conn):
    dbhealth.note_connection_use()
    conn.releasegate_last_used = time.monotonic() - 6
    assert request_starts(conn)


def test_zero_restores_a_probe_before_every_request(conn, settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 0
    dbhealth.note_connection_use()
    assert request_starts(conn)


def test_a_failed_connection_is_not_noted_as_used(conn):
    # Django closes or clears a connection that raised at the end of the request; one it left
    # flagged (or closed: connection None) must not excuse the next request's probe.
    conn.errors_occurred = True
    dbhealth.note_connection_use()
    assert request_starts(conn)
    conn.errors_occurred, conn.connection = False, None
    dbhealth.note_connection_use()
    assert not hasattr(conn, "releasegate_last_used")


def test_checks_switched_off_are_left_alone(conn):
    conn.health_check_enabled = False
    dbhealth.note_connection_use()
    conn.health_check_done = False
    dbhealth.skip_recent_health_checks()
    assert conn.health_check_done is False
