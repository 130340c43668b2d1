"""AWS clients, created once and lazily. The endpoint comes from the SDK's own
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` variables, so the same code talks to
AWS, LocalStack or moto's server."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from clickstream.jobs import JobStore
from clickstream.settings import get_settings
from clickstream.store import DynamoAggregateStore

_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=32,
)


# Called with (service, client) for each client made: empty in the deployed code; the local
# stack's launcher adds its fault injection here (localdev.faults), botocore event hooks.
CLIENT_HOOKS: list[Callable[[str, Any], None]] = []


@cache
def client(service: str) -> Any:
    """One shared client per service (boto3 clients are thread-safe)."""
    session: Any = boto3.session.Session()  # a service name chosen at run time
    made = session.client(service, region_name=get_settings().region, config=_CONFIG)
    for hook in CLIENT_HOOKS:
        hook(service, made)
    return made


@cache
def aggregate_store() -> DynamoAggregateStore:
    """The aggregates table, one per process: a warm consumer keeps its sessions cached."""
    settings = get_settings()
    return DynamoAggregateStore(
        client("dynamodb"),
        settings.aggregates_table,
        stream_name=settings.stream_name,
        visitor_secret=settings.visitor_salt_secret,
        goals=settings.goals,
    )


def job_store() -> JobStore:
    """The jobs table (exports, erasures, the hours' locks)."""
    return JobStore(client("dynamodb"), get_settings().jobs_table)


def reset_clients() -> None:
    """Forget cached clients and settings (tests that change the environment)."""
    client.cache_clear()
    aggregate_store.cache_clear()
    get_settings.cache_clear()
