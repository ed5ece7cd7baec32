"""Shared field types: a date-time argument reaches its operation as one UTC instant, or is a
bad_request naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tools.core.fields import IsoDatetime
from tools.core.models import InputModel
from tools.core.runner import parse_arguments


class _Window(InputModel):
    since: IsoDatetime


def test_a_date_time_argument_reaches_the_operation_in_utc():
    since = parse_arguments(_Window, {"since": "2026-05-01T10:30:00+02:00"}).since
    assert since == datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    assert since.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:00:00-14:00",
        "9999-12-31T23:59:59.999999-00:01",
    ],
)
def test_a_date_time_outside_the_calendar_once_in_utc_is_its_first_or_last_instant(value):
    """The document allows any date-time (schemathesis: updatedAfter=0001-01-01T00:19:21+04:19 was
    a 400); as a filter's bound, the calendar's first or last instant selects the same rows."""
    since = parse_arguments(_Window, {"since": value}).since
    assert since == (datetime.min if value.startswith("0001") else datetime.max).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00-14:00", "9999-12-31T23:59:59+14:00"]
)
def test_the_first_and_last_days_of_the_calendar_are_accepted_where_they_stay_inside_it_in_utc(value):
    since = parse_arguments(_Window, {"since": value}).since
    assert since.tzinfo is UTC and since == datetime.fromisoformat(value)
