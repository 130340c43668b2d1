"""Fixtures of the unit tier: the aggregate store on two DynamoDB engines, moto in-process
and dynalite (an independent implementation that enforces DynamoDB's item size limit and
bills capacity by size) on loopback, installed by ``make test`` from the npm registry."""

from __future__ import annotations

import functools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from clickstream.store import DynamoAggregateStore
from infra.template import table_arguments
from tests import dynalite
from tests.unit.route_support import in_process_api

# ``make mutants`` runs the store's tests on moto alone (each mutant's tests then take half
# the time); every other run, ``make test`` included, runs them on both engines.
ENGINES_VARIABLE = "AGGREGATE_STORE_ENGINES"
ENGINES = ("moto", "dynalite")


def _client(endpoint: str | None = None) -> Any:
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


class OneCallAtATime:
    """A client whose calls are made one at a time. moto in process is not thread-safe (a
    query iterating a table while a fold's writer thread added to it raised "dictionary
    changed size during iteration"); the store's threads still run, and dynalite, a server,
    takes their calls concurrently as DynamoDB does."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return one_at_a_time


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    """The server ``python -m tests.dynalite`` started for the whole run, else one of its own."""
    if shared := os.environ.get(dynalite.ENDPOINT_VARIABLE):
        yield shared
        return
    try:
        with dynalite.running() as endpoint:
            yield endpoint
    except dynalite.NotInstalled as missing:
        pytest.fail(str(missing))


@pytest.fixture(params=ENGINES)
def aggregates_table(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, str]]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    engines = os.environ.get(ENGINES_VARIABLE, ",".join(ENGINES)).split(",")
    if unknown := set(engines) - set(ENGINES):  # a typo would otherwise skip every store test
        pytest.fail(f"{ENGINES_VARIABLE}: unknown engines {sorted(unknown)}; known: {ENGINES}")
    if request.param not in engines:
        pytest.skip(f"{request.param} is left out of this run ({ENGINES_VARIABLE})")
    if request.param == "moto":
        with mock_aws():
            dynamodb = _client()
            dynamodb.create_table(**table_arguments("AggregatesTable", "aggregates"))
            yield OneCallAtATime(dynamodb), "aggregates"
        return
    dynamodb = _client(request.getfixturevalue("dynalite_endpoint"))
    table = f"aggregates-{uuid.uuid4().hex[:12]}"
    dynamodb.create_table(**table_arguments("AggregatesTable", table))
    while dynamodb.describe_table(TableName=table)["Table"]["TableStatus"] != "ACTIVE":
        time.sleep(0.01)
    yield dynamodb, table
    dynamodb.delete_table(TableName=table)


@pytest.fixture
def store_with(aggregates_table: tuple[Any, str]) -> Callable[..., DynamoAggregateStore]:
    """A store on the table (each call: another process, with its own memory); ``client``
    wraps the table's client (a test double answering some calls its own way)."""
    dynamodb, table = aggregates_table

    def make(
        client: Callable[[Any], Any] = lambda real: real, **options: Any
    ) -> DynamoAggregateStore:
        return DynamoAggregateStore(client(dynamodb), table, **{"stream_name": "stream", **options})

    return make


@pytest.fixture
def new_store(
    store_with: Callable[..., DynamoAggregateStore],
) -> Callable[[], DynamoAggregateStore]:
    return lambda: store_with()


@pytest.fixture
def store(store_with: Callable[..., DynamoAggregateStore]) -> DynamoAggregateStore:
    return store_with()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The API in process over moto's mock of every resource (``route_support``); a module
    that needs other settings defines its own."""
    yield from in_process_api(monkeypatch)
