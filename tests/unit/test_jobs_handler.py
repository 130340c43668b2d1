"""The jobs function's handler (consumers/jobs.py) over moto, fed SQS events as its event
source mapping builds them: what it drops, what it fails, and what it hands back to SQS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clickstream.aws import job_store
from localdev.runner import LambdaContext

CONTEXT = LambdaContext("jobs", "arn:aws:lambda:us-east-1:123456789012:function:jobs")


def sqs_event(*bodies: str, received: int = 1) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": str(received)},
            }
            for index, body in enumerate(bodies)
        ]
    }


def handle(event: dict[str, Any]) -> dict[str, Any]:
    from consumers.jobs import handler

    return handler(event, CONTEXT)


def test_a_message_that_is_no_job_is_dropped_and_counted_and_one_of_no_known_kind_fails_its_job(
    api, capsys: pytest.CaptureFixture[str]
) -> None:
    job = job_store().create("export", {"from": "x", "to": "y"})
    capsys.readouterr()
    no_job = ("{not json", '["export"]', '"export"')
    other_job = job_store().create("export", {"from": "x", "to": "y"})
    no_kind = json.dumps({"kind": ["export"], "job": other_job.job_id})  # not even a string
    answer = handle(sqs_event(*no_job, json.dumps({"kind": "reindex", "job": job.job_id}), no_kind))
    assert answer == {"batchItemFailures": []}  # none can ever succeed: not redelivered
    failed = job_store().get(job.job_id)
    assert failed is not None and (failed.status, failed.error) == ("failed", "unknown job kind")
    failed = job_store().get(other_job.job_id)
    assert failed is not None and (failed.status, failed.error) == ("failed", "unknown job kind")
    (flushed,) = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    assert flushed["JobMessagesDropped"] == [1.0] * 5
    (declared,) = flushed["_aws"]["CloudWatchMetrics"]
    assert {"Name": "JobMessagesDropped", "Unit": "Count"} in declared["Metrics"]


def test_a_failing_step_goes_back_to_sqs_and_fails_its_job_at_the_last_receive(
    api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consumers import jobs

    def broken(message: dict[str, Any], context: Any) -> None:
        raise TimeoutError("the archive did not answer")

    monkeypatch.setitem(jobs.RUNNERS, "export", broken)
    job = job_store().create("export", {"from": "x", "to": "y"})
    body = json.dumps({"kind": "export", "job": job.job_id})
    # five receives: the jobs queue's redrive policy (maxReceiveCount in infra/template.yaml)
    for received in range(1, 5):
        assert handle(sqs_event(body, received=received)) == {
            "batchItemFailures": [{"itemIdentifier": "m0"}]
        }
        again = job_store().get(job.job_id)
        assert again is not None and again.status == "queued", received
    assert handle(sqs_event(body, received=5)) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}]
    }  # (the queue's redrive takes it to the jobs DLQ)
    failed = job_store().get(job.job_id)
    assert failed is not None
    assert (failed.status, failed.error) == ("failed", "TimeoutError after 5 attempts")


def test_an_export_message_for_a_job_already_done_changes_nothing(api):
    job = job_store().create("export", {"from": "x", "to": "y"})
    job_store().update(job.job_id, status="succeeded")
    answer = handle(sqs_event(json.dumps({"kind": "export", "job": job.job_id})))
    assert answer == {"batchItemFailures": []}
    done = job_store().get(job.job_id)
    assert done is not None and done.status == "succeeded"
