"""The session store's bounds: owners kept apart, least recently used evicted, idle expiry."""

from __future__ import annotations

from flightdeck.flight_server.session import SessionStore


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sessions_are_kept_apart_by_owner_and_id():
    store = SessionStore(10, 60)
    store.update(("alice", "s1"), {"schema": "main"})
    assert store.options(("alice", "s1")) == {"schema": "main"}
    assert store.options(("bob", "s1")) == {}  # the same id from another user
    assert store.options(("alice", "s2")) == {}


def test_unset_value_resets_an_option():
    store = SessionStore(10, 60)
    store.update(("a", "s"), {"schema": "main", "catalog": ""})
    store.update(("a", "s"), {"schema": None})
    assert store.options(("a", "s")) == {"catalog": ""}


def test_the_least_recently_used_session_goes_first():
    store = SessionStore(2, 60)
    store.update(("a", "1"), {"schema": "x"})
    store.update(("a", "2"), {"schema": "x"})
    store.options(("a", "1"))  # used: now "2" is the oldest
    store.update(("a", "3"), {"schema": "x"})
    assert len(store) == 2
    assert store.options(("a", "2")) == {}
    assert store.options(("a", "1")) == {"schema": "x"}


def test_an_idle_session_expires_and_use_keeps_it():
    clock = _Clock()
    store = SessionStore(10, 60, clock=clock)
    store.update(("a", "busy"), {"schema": "x"})
    store.update(("a", "idle"), {"schema": "x"})
    clock.now = 50
    store.options(("a", "busy"))
    clock.now = 100
    assert store.options(("a", "busy")) == {"schema": "x"}
    assert store.options(("a", "idle")) == {}
    assert len(store) == 1


def test_close_forgets_the_session():
    store = SessionStore(10, 60)
    store.update(("a", "s"), {"schema": "x"})
    store.close(("a", "s"))
    store.close(("a", "never"))  # closing an unknown session is not an error
    assert len(store) == 0
