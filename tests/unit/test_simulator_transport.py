"""Delivery and the run loop: retries, Retry-After, partial failures, counting everything.
A fake requests.Session and fake senders: no network."""

from __future__ import annotations

import io
import itertools
import json
import os
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from simulator import cli
from simulator.config import SimulatorConfig
from simulator.journeys import Simulation
from simulator.ledger import Delivery, read_ledger
from simulator.runner import RunOptions, run, summary_table
from simulator.transport import HttpSender, KinesisSender, RetryPolicy, parse_retry_after

START = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def records(n: int) -> list[dict]:
    sim = Simulation(SimulatorConfig(), seed=5, start=START)
    return [event.record for event in itertools.islice(sim, n)]


class FakeResponse:
    def __init__(self, status: int, body=None, headers=None):
        self.status_code = status
        self._body = body
        self.headers = headers or {}

    def json(self):
        if self._body is None:
            raise ValueError("no JSON")
        return self._body


class FakeSession:
    """Answers POSTs from a script: a response, an exception, or a callable of the body."""

    def __init__(self, *script):
        self.script = list(script)
        self.bodies: list[dict] = []
        self.headers: dict[str, str] = {}

    def post(self, url, json=None, timeout=None):
        assert url.endswith("/events")
        self.bodies.append(json)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step(json) if callable(step) else step

    def close(self):
        pass


def accept_all(body):
    ids = [r["event_id"] for r in body["records"]]
    return FakeResponse(
        200,
        {"status": "accepted", "processed": len(ids), "failed": 0, "errors": [], "event_ids": ids},
    )


def sender(session, sleeps=None, attempts=4):
    sleeps = sleeps if sleeps is not None else []
    return HttpSender(
        "http://api",
        session=session,
        sleep=sleeps.append,
        policy=RetryPolicy(max_attempts=attempts, base=0.1, cap=1.0),
    )


def test_all_accepted():
    batch = records(5)
    delivery = sender(FakeSession(accept_all)).send(batch)
    assert delivery.accepted_ids == [r["event_id"] for r in batch]
    assert (delivery.rejected, delivery.undelivered, delivery.retries) == (0, 0, 0)


def test_per_record_errors_in_a_200_are_counted_as_not_accepted():
    batch = records(4)

    def partial(body):
        ids = [r["event_id"] for r in body["records"]]
        return FakeResponse(
            200,
            {
                "status": "accepted",
                "processed": 2,
                "failed": 2,
                "errors": [
                    {"index": 1, "field": "page", "message": "too long"},
                    {
                        "index": 3,
                        "field": "record",
                        "message": "not accepted: the stream refused it",
                    },
                ],
                "event_ids": [ids[0], ids[2]],
            },
        )

    delivery = sender(FakeSession(partial)).send(batch)
    assert delivery.accepted_ids == [batch[0]["event_id"], batch[2]["event_id"]]
    assert delivery.rejected == 2 and delivery.undelivered == 0
    assert delivery.errors == [
        "200 page: too long",
        "200 record: not accepted: the stream refused it",
    ]


def test_429_honours_retry_after_then_succeeds():
    sleeps: list[float] = []
    session = FakeSession(
        FakeResponse(429, {"message": "slow down"}, {"Retry-After": "3"}), accept_all
    )
    delivery = sender(session, sleeps).send(records(3))
    assert len(delivery.accepted_ids) == 3 and delivery.retries == 1
    assert 3.0 <= sleeps[0] <= 3.0 + 0.1
    assert delivery.possible_duplicates == 0


def test_503_until_the_attempts_run_out_is_undelivered_with_capped_backoff():
    sleeps: list[float] = []
    session = FakeSession(*[FakeResponse(503, {"status": "unavailable"})] * 4)
    delivery = sender(session, sleeps, attempts=4).send(records(7))
    assert delivery.undelivered == 7 and delivery.accepted_ids == []
    assert len(session.bodies) == 4 and delivery.retries == 3 and len(sleeps) == 3
    assert all(0 <= s <= 1.0 for s in sleeps)
    assert "undelivered after 4 attempts" in delivery.errors[-1]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_other_4xx_are_never_retried(status):
    session = FakeSession(
        FakeResponse(
            status,
            {"status": "rejected", "errors": [{"index": 0, "field": "records", "message": "nope"}]},
        )
    )
    delivery = sender(session).send(records(2))
    assert len(session.bodies) == 1
    assert delivery.rejected == 2 and delivery.retries == 0 and delivery.accepted_ids == []
    assert delivery.errors == [f"{status} records: nope"]


def test_connection_errors_and_timeouts_are_retried():
    sleeps: list[float] = []
    refused = requests.ConnectionError("NewConnectionError: [Errno 111] Connection refused")
    session = FakeSession(refused, requests.ReadTimeout("read timed out"), accept_all)
    delivery = sender(session, sleeps).send(records(2))
    assert len(delivery.accepted_ids) == 2 and delivery.retries == 2
    # the read timeout may have landed: its re-send is flagged as a possible duplicate
    assert delivery.possible_duplicates == 2


def test_retry_after_as_an_http_date():
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now) == 7
    assert parse_retry_after("2", now) == 2.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@given(attempt=st.integers(1, 60), retry_after=st.one_of(st.none(), st.floats(0, 10_000)))
def test_delays_are_bounded(attempt, retry_after):
    policy = RetryPolicy(base=0.2, cap=5.0, retry_after_cap=30.0)
    delay = policy.delay(attempt, retry_after)
    assert 0 <= delay <= 30.0 + 0.5
    if retry_after is None:
        assert delay <= 5.0


class FakeKinesis:
    """PutRecords that throttles the entries whose partition key ends in 'f', always."""

    def __init__(self):
        self.calls = 0

    def put_records(self, StreamName, Records):
        self.calls += 1
        return {
            "Records": [
                {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow"}
                if entry["PartitionKey"].endswith("f")
                else {"SequenceNumber": "1", "ShardId": "s"}
                for entry in Records
            ]
        }


def test_direct_kinesis_reuses_put_events(monkeypatch):
    from clickstream import aws, ingest

    fake = FakeKinesis()
    monkeypatch.setattr(aws, "client", lambda service: fake)
    monkeypatch.setattr(ingest.time, "sleep", lambda s: None)
    batch = [*records(60), {"event_type": "Bad Type!", "event_id": "x"}]
    delivery = KinesisSender("stream", max_attempts=2).send(batch)
    throttled = {r["event_id"] for r in batch[:60] if r["session_id"].endswith("f")}
    assert throttled, "the sample should include a throttled session"
    assert set(delivery.accepted_ids) == {r["event_id"] for r in batch[:60]} - throttled
    assert delivery.undelivered == len(throttled) and delivery.rejected == 1
    assert fake.calls == 2 and delivery.retries == 1


# --- the run loop ----------------------------------------------------------------------------


class ScriptedSender:
    """Accepts everything except event ids starting with '0' (rejected)."""

    def __init__(self, log):
        self.log = log

    def send(self, batch):
        self.log.append(len(batch))
        ok = [r["event_id"] for r in batch if not r["event_id"].startswith("0")]
        return Delivery(accepted_ids=ok, rejected=len(batch) - len(ok), requests=1)

    def close(self):
        pass


def quiet_console():
    return Console(file=io.StringIO(), width=120)


def test_flat_out_run_counts_everything_and_writes_the_ledger(tmp_path):
    log: list[int] = []
    options = RunOptions(
        seed=9,
        max_events=1234,
        rate=0,
        batch=100,
        workers=3,
        ledger=tmp_path / "ledger.json",
        baseline=False,
        show_progress=False,
        start=START,
    )
    result = run(
        options, SimulatorConfig(), console=quiet_console(), make_sender=lambda: ScriptedSender(log)
    )
    assert result.generated == 1234 and sum(log) == 1234 and max(log) == 100
    ledger = read_ledger(tmp_path / "ledger.json")
    rejected = ledger["not_accepted"]["rejected"]
    sent, accepted = ledger["sent"], ledger["accepted"]
    assert sent["events"] + sent["bots"] == 1234 and sent["bots"] > 0  # crawlers: bots
    assert accepted["events"] + accepted["bots"] + rejected == 1234 and rejected > 0
    assert len(ledger["accepted_event_ids"]) == accepted["events"] + accepted["bots"]
    assert ledger["meta"]["seed"] == 9 and ledger["meta"]["start"] == "2026-11-24T02:00:00.000Z"
    crawls = ledger["journeys"].get("crawler", 0)
    assert sum(ledger["journeys"].values()) - crawls == sent["sessions"] and crawls > 0
    console = quiet_console()
    console.print(summary_table(result, options))


def test_paced_run_follows_simulated_time():
    log: list[int] = []
    options = RunOptions(
        seed=1,
        duration=0.5,
        rate=20,
        speedup=200,
        batch=500,
        baseline=False,
        show_progress=False,
        max_batch_delay=0.05,
    )
    result = run(
        options, SimulatorConfig(), console=quiet_console(), make_sender=lambda: ScriptedSender(log)
    )
    # 0.5 s at 200x covers 100 simulated seconds: about 2,000 events at 20/s
    assert result.generated == pytest.approx(2000, rel=0.15)
    assert 0.4 <= result.wall_seconds < 3.0
    assert len(log) > 3  # partial batches were flushed on time, not held for 500 records
    assert result.simulated_seconds <= 100.0


def test_sender_crash_is_counted_as_undelivered():
    class Broken:
        def send(self, batch):
            raise RuntimeError("boom")

        def close(self):
            pass

    options = RunOptions(
        seed=2, max_events=50, rate=0, batch=10, baseline=False, show_progress=False
    )
    result = run(options, SimulatorConfig(), console=quiet_console(), make_sender=Broken)
    assert result.ledger.undelivered == 50 and result.ledger.accepted.events == 0


def test_cli_dry_run_is_deterministic(capsys):
    argv = ["--dry-run", "--seed", "7", "--start", "2026-11-24T00:00:00Z", "--max-events", "300"]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == first
    lines = [json.loads(line) for line in first.splitlines()]
    assert len(lines) == 300 and lines[0]["timestamp"].startswith("2026-11-24T00:00:0")


def test_cli_rejects_bad_arguments(capsys):
    assert cli.main(["--batch", "501", "--max-events", "1"]) == 2
    assert cli.main(["reconcile", "--ledger", "/nonexistent/ledger.json"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["--speedup", "0"])


def test_an_api_on_loopback_means_the_local_emulator(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        # set, then removed: monkeypatch records each, so what the CLI writes is undone after
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("CLICKSTREAM_USE_LOCALSTACK", "false")  # no probe of :4566
    monkeypatch.setenv("CLICKSTREAM_EMULATOR_PORT", "4999")
    console = quiet_console()
    assert (
        cli.use_local_emulator("https://abc.execute-api.us-east-1.amazonaws.com/api", console)
        is None
    )
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert cli.use_local_emulator("http://127.0.0.1:8000", console) == "http://127.0.0.1:4999"
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4999"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "test"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert cli.use_local_emulator("http://localhost:8000", console) is None  # explicit wins


def test_records_the_stream_refused_are_sent_again_and_counted_once():
    """A 200 naming some records ``retryable`` (the stream throttled them): the transport
    resends just those; one that never gets through is undelivered, not rejected."""
    from simulator.transport import HttpSender

    answers = iter([
        {"event_ids": ["a", "c"], "errors": [
            {"index": 1, "field": "record", "message": "throttled", "retryable": True},
            {"index": 3, "field": "event_type", "message": "bad"}]},
        {"event_ids": [], "errors": [{"index": 0, "field": "record", "message": "throttled", "retryable": True}]},
        {"event_ids": ["b"], "errors": []},
    ])  # fmt: skip
    sent: list[list[str]] = []

    class Response:
        status_code = 200
        headers: dict[str, str] = {}

        def __init__(self, body):
            self.body = body

        def json(self):
            return self.body

    class Session:
        headers: dict[str, str] = {}

        def post(self, url, json, timeout):
            sent.append([r["event_id"] for r in json["records"]])
            return Response(next(answers))

    sender = HttpSender("http://127.0.0.1:1", session=Session(), sleep=lambda s: None)
    delivery = sender.send([{"event_id": i} for i in "abcd"])
    assert sent == [list("abcd"), ["b"], ["b"]]
    assert sorted(delivery.accepted_ids) == ["a", "b", "c"]
    assert (delivery.rejected, delivery.undelivered, delivery.retries) == (1, 0, 2)
