"""Fault injection for the local stack, switched on by ``CLICKSTREAM_FAULTS`` (comma-separated
``duplicate_batches``, ``fail_every=N``, ``crash_every=N``, ``throttle_put=FRACTION``; what each
does: docs/local-stack.md). Inert when the variable is unset."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse, HTTPHeaders

Handler = Callable[[dict[str, Any], Any], Any]
ENV = "CLICKSTREAM_FAULTS"


class InjectedFault(RuntimeError):
    """An error the fault injector raised on purpose."""


@dataclass(frozen=True)
class Faults:
    duplicate_batches: bool = False
    fail_every: int = 0
    crash_every: int = 0
    throttle_put: float = 0.0

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        values: dict[str, Any] = {}
        for part in filter(None, (piece.strip() for piece in (spec or "").split(","))):
            name, _, raw = part.partition("=")
            if name == "duplicate_batches":
                values[name] = True
            elif name in ("fail_every", "crash_every"):
                values[name] = int(raw)
            elif name == "throttle_put":
                values[name] = float(raw)
            else:
                raise ValueError(f"unknown fault '{name}' in {ENV}")
        return cls(**values)

    @classmethod
    def from_env(cls) -> Faults:
        return cls.parse(os.environ.get(ENV))

    @property
    def any_consumer_fault(self) -> bool:
        return self.duplicate_batches or bool(self.fail_every) or bool(self.crash_every)


def faulty_handler(handler: Handler, faults: Faults) -> Handler:
    """Wrap a consumer handler with the configured consumer faults."""
    calls = 0
    lock = threading.Lock()

    def invoke(event: dict[str, Any], context: Any) -> Any:
        nonlocal calls
        with lock:
            calls += 1
            call = calls
        response = handler(event, context)
        if faults.duplicate_batches:
            response = handler(event, context)  # the same batch, delivered again
        if faults.crash_every and call % faults.crash_every == 0:
            os._exit(137)  # as if the instance died: no checkpoint, no cleanup
        if faults.fail_every and call % faults.fail_every == 0:
            raise InjectedFault(f"injected failure on call {call}")
        return response

    return invoke


def install_client_faults() -> None:
    """The API process's faults (``throttle_put``), hooked onto the clients it makes."""
    faults = Faults.from_env()
    if not faults.throttle_put:
        return
    from clickstream import aws

    def throttle(service: str, made: Any) -> None:
        if service == "kinesis":
            install_put_throttling(made, faults.throttle_put)

    aws.CLIENT_HOOKS.append(throttle)


def install_put_throttling(kinesis: Any, fraction: float, seed: int | None = None) -> None:
    """Make ``fraction`` of each ``PutRecords`` call's entries come back throttled. The other
    entries really go to the stream (through a second, hook-free client) and the answer is
    merged in request order, as Kinesis answers a partially throttled call."""
    rng = random.Random(seed)
    meta = kinesis.meta
    passthrough = boto3.client(
        "kinesis",
        region_name=meta.region_name,
        endpoint_url=meta.endpoint_url,
        config=meta.config,
    )

    def remember_entries(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["put_records_params"] = dict(params)

    def before_call(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = context["put_records_params"]
        records = params["Records"]
        throttled = {index for index in range(len(records)) if rng.random() < fraction}
        sent = [record for index, record in enumerate(records) if index not in throttled]
        written = passthrough.put_records(**{**params, "Records": sent})["Records"] if sent else []
        results = iter(written)
        merged = [
            {
                "ErrorCode": "ProvisionedThroughputExceededException",
                "ErrorMessage": "Rate exceeded for shard (injected)",
            }
            if index in throttled
            else next(results)
            for index in range(len(records))
        ]
        ok = AWSResponse(meta.endpoint_url, 200, HTTPHeaders(), None)
        return ok, {"FailedRecordCount": len(throttled), "Records": merged}

    kinesis.meta.events.register("before-parameter-build.kinesis.PutRecords", remember_entries)
    kinesis.meta.events.register("before-call.kinesis.PutRecords", before_call)
