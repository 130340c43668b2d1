"""The KCL record processor (consumers/kcl.py) and its daemon's settings
(consumers/kcl_daemon.py), without a JVM: the processor fed by hand and, once, as a child
process speaking the MultiLangDaemon's protocol on its stdin/stdout."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from amazon_kclpy.checkpoint_error import CheckpointError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.server import ThreadedMotoServer

from clickstream.settings import Settings, get_settings
from consumers.kcl import BatchRecordProcessor, batch_function, lambda_event
from consumers.kcl import main as kcl_main
from consumers.kcl_daemon import (
    daemon_properties,
    java_command,
    lease_tables,
    properties_text,
)
from consumers.kcl_daemon import main as daemon_main
from infra.template import table_arguments
from localdev.processes import free_port
from localdev.runner import StreamRecord, kinesis_event
from tests.factories import make_event

ROOT = Path(__file__).resolve().parents[2]
SHARD = "shardId-000000000003"
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/clickstream-events"


@dataclass(frozen=True)
class Record:
    """What amazon_kclpy.messages.Record gives the processor."""

    sequence_number: str
    partition_key: str = "p"
    data: str = base64.b64encode(b"{}").decode()
    timestamp_millis: int = 1_796_000_000_000


@dataclass
class Checkpoints:
    at: list[str | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # raised once each, in order

    def checkpoint(self, sequence_number: str | None = None, sub_sequence_number: Any = None):
        if self.errors:
            raise CheckpointError(self.errors.pop(0))
        self.at.append(sequence_number)


def records(count: int, start: int = 100) -> list[Record]:
    return [Record(str(start + i)) for i in range(count)]


def processor(batch_function) -> BatchRecordProcessor:
    made = BatchRecordProcessor(
        batch_function, stream_arn=ARN, region="us-east-1", sleep=lambda s: None
    )
    made.shard_id = SHARD
    return made


# One outcome per call of the batch function: written whole, the records from index k on
# reported failed (Lambda's partial batch response), or an exception (nothing written).
outcomes = st.lists(
    st.one_of(st.just("ok"), st.just("raise"), st.integers(min_value=0, max_value=30)),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(count=st.integers(min_value=1, max_value=20), script=outcomes)
def test_every_record_is_written_in_order_and_no_checkpoint_passes_an_unwritten_one(count, script):
    written: list[str] = []  # sequence numbers, in the order the store applied them
    calls = list(script)

    def batch_function(event: dict[str, Any]) -> dict[str, Any]:
        numbers = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        outcome = calls.pop(0) if calls else "ok"
        if outcome == "raise":
            raise RuntimeError("store unavailable")
        cut = len(numbers) if outcome == "ok" else min(int(outcome), len(numbers))
        written.extend(numbers[:cut])
        return {"batchItemFailures": [{"itemIdentifier": n} for n in numbers[cut:]]}

    checkpoints = Checkpoints()
    batch = records(count)
    processor(batch_function).write_then_checkpoint(batch, checkpoints)

    assert written == [r.sequence_number for r in batch]  # each once, in order, none skipped
    assert checkpoints.at and checkpoints.at[-1] == batch[-1].sequence_number
    assert [int(n) for n in checkpoints.at] == sorted({int(n) for n in checkpoints.at})
    for sequence_number in checkpoints.at:  # each checkpoint only after that record's write
        assert sequence_number in written


def test_a_lost_lease_stops_the_batch_and_the_next_owner_resumes_at_the_last_checkpoint():
    calls: list[list[str]] = []

    def batch_function(event):
        numbers = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        calls.append(numbers)
        return {"batchItemFailures": [{"itemIdentifier": n} for n in numbers[2:]]}

    checkpoints = Checkpoints(errors=["ShutdownException"])
    made = processor(batch_function)
    made.write_then_checkpoint(records(5), checkpoints)
    assert calls == [["100", "101", "102", "103", "104"]]  # no retry on a lease it lost
    assert checkpoints.at == [] and made.stopped


def test_a_checkpoint_that_keeps_failing_stops_the_worker_rather_than_pass_the_batch():
    # kclpy answers "done" for a processor that raises, and the daemon would go on to the
    # next batch: the worker must exit instead.
    made = processor(lambda event: {"batchItemFailures": []})
    checkpoints = Checkpoints(errors=["ThrottlingException"] * 10)
    message = type("ProcessRecords", (), {"records": records(2), "checkpointer": checkpoints})
    with pytest.raises(SystemExit):
        made.process_records(message)
    assert checkpoints.at == []


def test_a_throttled_checkpoint_is_tried_again():
    checkpoints = Checkpoints(errors=["ThrottlingException", "ThrottlingException"])
    processor(lambda event: {"batchItemFailures": []}).write_then_checkpoint(
        records(3), checkpoints
    )
    assert checkpoints.at == ["102"]


def test_the_event_is_the_one_lambdas_mapping_builds_from_the_same_records():
    batch = [
        Record("49650", "visitor-1", base64.b64encode(b'{"a":1}').decode(), 1_796_000_000_250),
        Record("49651", "visitor-2", base64.b64encode(b"\x00\xff").decode(), 1_796_000_001_000),
    ]
    ours = lambda_event(batch, shard_id=SHARD, stream_arn=ARN, region="eu-west-1")
    lambdas = kinesis_event(
        [
            StreamRecord(
                r.sequence_number,
                r.partition_key,
                base64.b64decode(r.data),
                r.timestamp_millis / 1000,
            )
            for r in batch
        ],
        shard_id=SHARD,
        stream_arn=ARN,
        region="eu-west-1",
    )
    for record in lambdas["Records"]:
        record.pop("invokeIdentityArn")  # Lambda's execution role; no Lambda here
    assert ours == lambdas


SETTINGS = Settings(
    region="eu-west-1",
    stream_name="clickstream-prod-events",
    aggregates_table="a",
    archive_bucket="b",
    dead_letter_queue="d",
    max_put_attempts=5,
)


@pytest.mark.parametrize(
    ("env", "kinesis", "dynamodb"),
    [
        ({}, None, None),  # AWS: the SDK's own endpoints
        (
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"},
            "http://127.0.0.1:4566",
            "http://127.0.0.1:4566",
        ),
        (
            {"AWS_ENDPOINT_URL": "http://e:1", "AWS_ENDPOINT_URL_KINESIS": "http://k:2"},
            "http://k:2",
            "http://e:1",
        ),
    ],
)
def test_daemon_endpoints_come_from_the_sdks_variables(env, kinesis, dynamodb):
    properties = daemon_properties("archiver", SETTINGS, env, python="/venv/python")
    assert properties.get("kinesisEndpoint") == kinesis
    assert properties.get("dynamoDBEndpoint") == dynamodb
    assert properties["executableName"] == "/venv/python -m consumers.kcl archiver"
    assert properties["applicationName"] == "clickstream-prod-events-archiver-kcl"
    assert properties["regionName"] == "eu-west-1"
    assert properties["retrievalMode"] == "POLLING" and properties["metricsLevel"] == "NONE"


def test_daemon_timings_can_be_overridden_and_a_bad_override_or_consumer_is_refused():
    env = {"CLICKSTREAM_KCL_PROPERTIES": json.dumps({"failoverTimeMillis": 4000})}
    properties = daemon_properties("aggregator", SETTINGS, env)
    assert properties["failoverTimeMillis"] == "4000"
    assert "failoverTimeMillis = 4000\n" in properties_text(properties)
    with pytest.raises(ValueError, match="JSON object"):
        daemon_properties("aggregator", SETTINGS, {"CLICKSTREAM_KCL_PROPERTIES": "[1]"})
    with pytest.raises(ValueError, match="unknown consumer"):
        daemon_properties("compactor", SETTINGS, {})


def test_the_daemons_jvm_has_cbor_off_and_the_jars_on_its_classpath(tmp_path):
    with pytest.raises(FileNotFoundError, match="make kcl-jars"):
        java_command(tmp_path / "p", tmp_path)
    (tmp_path / "amazon-kinesis-client-multilang-3.1.3.jar").write_bytes(b"")
    command = java_command(tmp_path / "p", tmp_path)
    assert "-Daws.cborEnabled=false" in command
    assert command[command.index("-cp") + 1] == f"{tmp_path}/*"


# --- the processor as the daemon runs it: a child process, the protocol on stdin/stdout ------


@pytest.fixture
def moto_server():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_the_archiver_child_writes_then_checkpoints_and_its_logs_stay_off_the_protocol(moto_server):
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_REGION": "us-east-1",
        "CLICKSTREAM_ARCHIVE_BUCKET": "kcl-archive",
        "CLICKSTREAM_AGGREGATES_TABLE": "kcl-aggregates",  # the archiver reads erasures there
        "CLICKSTREAM_STREAM_ARN": ARN,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Clickstream",
        "PYTHONPATH": str(ROOT),
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    s3.create_bucket(Bucket="kcl-archive")
    boto3.client(
        "dynamodb",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    ).create_table(**table_arguments("AggregatesTable", "kcl-aggregates"))
    events = [make_event(user_id=f"u{i}") for i in range(3)]
    delivered = [
        {
            "action": "record",
            "sequenceNumber": str(500 + i),
            "subSequenceNumber": 0,
            "approximateArrivalTimestamp": 1_796_000_000_000,
            "partitionKey": event.user_id,
            "data": base64.b64encode(event.model_dump_json().encode()).decode(),
        }
        for i, event in enumerate(events)
    ]
    child = subprocess.Popen(
        [sys.executable, "-m", "consumers.kcl", "archiver"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin and child.stdout
    try:

        def send(message: dict[str, Any]) -> None:
            child.stdin.write(json.dumps(message) + "\n")
            child.stdin.flush()

        def receive() -> dict[str, Any]:
            line = "\n"
            while line == "\n":  # kclpy frames its messages with blank lines
                line = child.stdout.readline()
            assert line, f"the child exited: {child.wait(10)}; {child.stderr.read()}"
            return json.loads(line)  # any other output on stdout would fail here

        send(
            {
                "action": "initialize",
                "shardId": SHARD,
                "sequenceNumber": "TRIM_HORIZON",
                "subSequenceNumber": 0,
            }
        )
        assert receive() == {"action": "status", "responseFor": "initialize"}
        send({"action": "processRecords", "records": delivered, "millisBehindLatest": 0})
        asked = receive()  # the write is done before the checkpoint is asked for
        assert asked["action"] == "checkpoint" and asked["sequenceNumber"] == "502"
        assert (
            len(s3.list_objects_v2(Bucket="kcl-archive", Prefix="events/").get("Contents", [])) >= 1
        )
        send(
            {"action": "checkpoint", "sequenceNumber": "502", "subSequenceNumber": 0, "error": None}
        )
        assert receive() == {"action": "status", "responseFor": "processRecords"}
        send({"action": "shutdownRequested"})
        assert receive()["responseFor"] == "shutdownRequested"
    finally:
        child.stdin.close()
        child.wait(timeout=30)
        stderr = child.stderr.read() if child.stderr else ""
        if child.stderr:
            child.stderr.close()
        child.stdout.close()
    assert "batch archived" in stderr and '"EventsArchived"' in stderr  # logs and EMF: on stderr


def test_an_empty_delivery_calls_nothing_and_a_failed_metrics_flush_keeps_the_batch():
    calls: list[Any] = []

    def batch_function(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(event)
        return {"batchItemFailures": []}

    made = processor(batch_function)
    made.process_records(type("Empty", (), {"records": [], "checkpointer": Checkpoints()}))
    assert calls == []

    def broken_flush() -> None:
        raise RuntimeError("metrics endpoint down")

    made.after_batch = broken_flush
    checkpoints = Checkpoints()
    made.process_records(type("Two", (), {"records": records(2), "checkpointer": checkpoints}))
    assert len(calls) == 1 and checkpoints.at == ["101"]


def test_a_shards_end_is_checkpointed_and_failing_to_stops_the_worker():
    made = processor(lambda event: {"batchItemFailures": []})
    ended = Checkpoints()
    made.shard_ended(type("Ended", (), {"checkpointer": ended}))
    assert ended.at == [None]  # (the end of the shard: the KCL starts its children after)
    made.lease_lost(object())  # (these two only log: every written batch is checkpointed)
    made.shutdown_requested(object())
    refusing = Checkpoints(errors=["ThrottlingException"] * 10)
    with pytest.raises(SystemExit) as stopped:
        made.shard_ended(type("Ended", (), {"checkpointer": refusing}))
    assert stopped.value.code == 1


def test_each_consumer_runs_its_own_lambda_handlers_batch_function_and_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (powertools reads the namespace when a handler's module is first imported)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ClickstreamTest")
    from consumers import aggregator, archiver

    assert batch_function("aggregator") == (
        aggregator.process_batch, aggregator.metrics.flush_metrics,
    )  # fmt: skip
    assert batch_function("archiver") == (archiver.process_batch, archiver.metrics.flush_metrics)
    for argv in ([], ["compactor"], ["aggregator", "archiver"]):
        with pytest.raises(SystemExit) as refused:
            kcl_main(argv)
        assert refused.value.code == "usage: python -m consumers.kcl {aggregator,archiver}"


def test_the_daemon_launcher_execs_java_with_the_consumers_properties_in_its_place(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "amazon-kinesis-client-multilang-3.0.0.jar").touch()
    monkeypatch.setenv("CLICKSTREAM_KCL_JARS", str(tmp_path))
    monkeypatch.setenv("CLICKSTREAM_STREAM_NAME", "site-events")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    execs: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr("consumers.kcl_daemon.os.execvpe", lambda *call: execs.append(call))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # (its properties file)
    get_settings.cache_clear()  # (read from this test's environment, and not kept after it)
    try:
        daemon_main(["archiver"])
        ((program, command, env),) = execs
        assert program == command[0] and env["AWS_CBOR_DISABLE"] == "true"
        written = Path(command[command.index("--properties-file") + 1]).read_text()
        assert "applicationName = site-events-archiver-kcl\n" in written
        assert "kinesisEndpoint = http://127.0.0.1:4566\n" in written
        with pytest.raises(SystemExit) as refused:
            daemon_main(["compactor"])
        assert refused.value.code == "usage: python -m consumers.kcl_daemon {aggregator,archiver}"
        monkeypatch.setenv("CLICKSTREAM_KCL_PROPERTIES", '["maxRecords", "5"]')
        with pytest.raises(ValueError, match="must be a JSON object of properties"):
            daemon_main(["archiver"])
    finally:
        get_settings.cache_clear()


def test_a_consumers_lease_tables_are_named_after_its_stream():
    assert lease_tables("archiver", SETTINGS) == (
        "clickstream-prod-events-archiver-kcl",
        "clickstream-prod-events-archiver-kcl-CoordinatorState",
        "clickstream-prod-events-archiver-kcl-WorkerMetricStats",
    )
