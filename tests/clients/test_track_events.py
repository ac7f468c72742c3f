"""A tracked event's row, its batch's table, and which failed puts are sent again."""

from __future__ import annotations

import datetime as dt
import json

import flightdeck
import pytest
from flightdeck.track_events import check_event_type, event_row, rows_table
from flightdeck.track_put import GIVE_UP, RETRY, RETRY_SOME, verdict


def test_core_fields_are_columns_and_the_rest_goes_into_properties():
    row = event_row(
        {"session_id": "s", "user_id": 42, "properties": {"a": 1}, "plan": "pro", "a": 2}
    )
    assert (row["session_id"], row["user_id"]) == ("s", "42")
    assert json.loads(row["properties"]) == {"a": 2, "plan": "pro"}  # a keyword wins
    assert len(row["event_id"]) == 32 and row["recorded_at"].tzinfo is not None


def test_properties_take_json_object_text_and_odd_values_as_text():
    when = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    row = event_row({"properties": '{"k": [1]}', "at": when})
    assert json.loads(row["properties"]) == {"k": [1], "at": "2024-01-02 00:00:00+00:00"}
    with pytest.raises(TypeError, match="properties"):
        event_row({"properties": "[1, 2]"})


def test_recorded_at_is_utc_and_naive_times_are_taken_as_utc():
    naive = event_row({"recorded_at": dt.datetime(2024, 5, 1, 12)})["recorded_at"]
    assert naive == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    text = event_row({"recorded_at": "2024-05-01T14:00:00+02:00"})["recorded_at"]
    assert text == naive
    with pytest.raises(ValueError, match="recorded_at"):
        event_row({"recorded_at": "yesterday"})
    with pytest.raises(TypeError, match="duration_s"):
        event_row({"duration_s": "3"})


@pytest.mark.parametrize("name", ["pageview", "user.login", "api_request", "task-created"])
def test_type_names_of_the_issue_are_accepted(name):
    assert check_event_type(name) == name


@pytest.mark.parametrize("name", ["", "User.Login", "a b", "1st", "x" * 65, None])
def test_other_type_names_are_refused(name):
    with pytest.raises(ValueError, match="event type"):
        check_event_type(name)


def test_a_batch_leaves_out_the_columns_no_event_sets():
    rows = [event_row({"session_id": "s", "page_url": "/"}), event_row({"session_id": "t"})]
    table = rows_table(rows)
    assert table.column_names == ["event_id", "session_id", "recorded_at", "page_url"]
    assert table.column("page_url").to_pylist() == ["/", None]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (flightdeck.ServerUnavailable("down"), RETRY),
        (flightdeck.TimedOut("slow"), RETRY),
        (flightdeck.Error("cancelled", code="CANCELLED"), RETRY),
        (flightdeck.ServerError("boom", code="INTERNAL"), RETRY_SOME),
        (flightdeck.ServerError("no", code="UNIMPLEMENTED"), GIVE_UP),
        (flightdeck.LoadError("bad row", code="INVALID_ARGUMENT"), GIVE_UP),
        (flightdeck.Unauthorized("who", code="UNAUTHENTICATED"), GIVE_UP),
        (flightdeck.NotFoundError("none", code="NOT_FOUND"), GIVE_UP),
    ],
)
def test_only_failures_resending_can_cure_are_retried(error, expected):
    assert verdict(error) == expected
