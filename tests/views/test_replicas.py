"""The replica choice's arithmetic and URLs (the behaviour on real standbys is in
tests/faults/test_read_replicas.py)."""

from __future__ import annotations

from flightdeck.views.replicas import LagClock, parse_lsn, replica_login


def test_lag_is_how_long_ago_the_primary_first_wrote_past_the_replayed_position():
    clock = LagClock(window_s=10, interval_s=1)
    assert clock.lag(0, now=0) is None  # nothing known yet: not a replica to trust
    for at, lsn in ((0, 100), (1, 100), (2, 150), (3, 200)):
        clock.note(lsn, at=at)
    assert clock.lag(200, now=5) == 0.0  # has all the primary had
    assert clock.lag(150, now=5) == 2.0  # behind since the primary wrote 200 at t=3
    assert clock.lag(120, now=5) == 3.0  # behind since t=2
    assert clock.lag(50, now=5) == 5.0  # behind even the oldest sample


def test_lsn_text_is_a_number():
    assert parse_lsn("0/16B3748") == 0x16B3748
    assert parse_lsn("1/0") == 1 << 32


def test_replica_login_is_the_reader_on_the_replicas_host():
    reader = (
        "postgresql://flightdeck_reader_app:secret@h1:5432,h2:5433/app?"
        "target_session_attrs=primary&options=-c%20statement_timeout%3D1000"
    )
    login = replica_login(reader, "postgresql://r1:6432/app?sslmode=require")
    assert login.startswith("postgresql://flightdeck_reader_app:secret@r1:6432/app?")
    assert "target_session_attrs" not in login  # a standby would be refused
    assert "options=-c%20statement_timeout%3D1000" in login
    assert "sslmode=require" in login and "connect_timeout=5" in login
    # A replica URL's own login is not used: queries always log in as the reader role.
    assert replica_login(reader, "postgresql://someone:pw@r2/app").startswith(
        "postgresql://flightdeck_reader_app:secret@r2/app?"
    )
