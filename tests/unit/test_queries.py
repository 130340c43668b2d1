"""The read answers over the store: the dashboard's one-request snapshot and its limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from clickstream import queries
from tests.factories import make_event, sequenced

NOW = datetime(2026, 11, 24, 10, 31, tzinfo=UTC)


def test_the_dashboard_answers_every_section_from_one_read_of_the_pending_deltas(store):
    store.apply("shardId-000000000000", sequenced([make_event(session_id=f"s{i}") for i in range(12)]))
    before = store.reads.requests
    answer = queries.dashboard(store, 5, now=NOW)
    assert set(answer) == {"stats", "timeseries", "funnel", "pages"}
    assert answer["stats"]["total_events"] == 12
    assert sum(point["events"] for point in answer["timeseries"]["points"]) == 12
    assert answer["funnel"]["sessions"] == 12
    assert answer["pages"]["pages"] == [{"page": "/home", "views": 12}]
    # one query of the cursors and one of the shard's deltas, shared by the four sections
    pending_reads = 2
    per_section_reads = {"stats": 5, "timeseries": 1, "funnel": 1, "pages": 1}
    assert store.reads.requests - before <= pending_reads + sum(per_section_reads.values())


def test_a_section_whose_reads_fail_says_so_and_the_others_stand(store, monkeypatch):
    store.apply("shardId-000000000000", sequenced([make_event()]))

    def throttled(*_args, **_kwargs):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "Query")

    monkeypatch.setattr(type(store), "top", throttled)
    answer = queries.dashboard(store, 5, now=NOW)
    assert answer["pages"]["status"] == 503
    assert "could not be read" in answer["pages"]["error"]
    assert answer["stats"]["status"] == 503  # its event types come from the same summaries
    assert answer["funnel"]["sessions"] == 1
    assert sum(point["events"] for point in answer["timeseries"]["points"]) == 1


@pytest.mark.parametrize("limit", [0, 101])
def test_the_dashboards_page_limit_is_bounded(store, limit):
    with pytest.raises(queries.QueryError) as error:
        queries.dashboard(store, limit, now=NOW)
    assert (error.value.field, error.value.message) == ("limit", "must be between 1 and 100")
