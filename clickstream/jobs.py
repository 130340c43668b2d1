"""Asynchronous jobs: exports and erasures share one mechanism.

- **Queue**: an SQS queue feeds the ``jobs`` Lambda (batch size 1, partial batch responses, a
  redrive to the jobs dead-letter queue after 5 receives). A message is one *step*; a step
  that cannot finish in its invocation sends its continuation as a new message. SQS delivers
  at least once, so every step is idempotent and each message names the position it
  continues from: a stale or duplicated message finds the job past it and is dropped.
- **State**: one DynamoDB item per job in the jobs table (status, progress, result; TTL 30
  days). DynamoDB, not S3, because a step advances the job with a conditional update (the
  position it started from), and a status read is one consistent GetItem.
- **Partition locks**: ``lock#<hour prefix>`` items in the same table, taken with a
  conditional put and a lease longer than any function can run (15 minutes), by the
  compactor and by an erasure's step on that hour: neither can rewrite an hour the other is
  rewriting.

Job items never hold a user id: an erasure's item has its SHA-256; the id travels only in the
(encrypted) queue messages, which SQS drops once handled.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from botocore.exceptions import ClientError

from clickstream.errors import conditional_check_failed

JOB_TTL_S = 30 * 24 * 3600
LOCK_LEASE_S = 15 * 60  # Lambda's longest timeout: a live holder never outlives its lease
MAX_DELAY_S = 900  # SQS's longest message delay


# ``withdrawn``: an export whose file an erasure deleted (it held the erased user's rows)
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "withdrawn")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job_id(kind: str) -> str:
    prefix = {"export": "exp", "erasure": "era"}[kind]
    return f"{prefix}-{uuid.uuid4().hex}"


@dataclass
class Job:
    job_id: str
    kind: str
    status: str
    created_at: str
    updated_at: str
    params: dict[str, Any]
    progress: dict[str, Any]
    result: dict[str, Any]
    error: str | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Job:
        return cls(
            job_id=item["pk"]["S"],
            kind=item["kind"]["S"],
            status=item["status"]["S"],
            created_at=item["created_at"]["S"],
            updated_at=item["updated_at"]["S"],
            params=orjson.loads(item["params"]["S"]),
            progress=orjson.loads(item["progress"]["S"]) if "progress" in item else {},
            result=orjson.loads(item["result"]["S"]) if "result" in item else {},
            error=item["error"]["S"] if "error" in item else None,
        )


class JobStore:
    """Job items and partition locks in the jobs table (``pk`` only)."""

    def __init__(self, dynamodb: Any, table: str, clock: Any = time.time) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.clock = clock

    # --- jobs -----------------------------------------------------------------------------

    def create(self, kind: str, params: Mapping[str, Any]) -> Job:
        at = now_iso()
        job = Job(new_job_id(kind), kind, "queued", at, at, dict(params), {}, {})
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": job.job_id},
                "kind": {"S": kind},
                "status": {"S": "queued"},
                "created_at": {"S": at},
                "updated_at": {"S": at},
                "params": {"S": orjson.dumps(job.params).decode()},
                "progress": {"S": "{}"},
                "expires_at": {"N": str(int(self.clock()) + JOB_TTL_S)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return job

    def get(self, job_id: str) -> Job | None:
        item = self.dynamodb.get_item(
            TableName=self.table, Key={"pk": {"S": job_id}}, ConsistentRead=True
        ).get("Item")
        if not item or "kind" not in item:
            return None
        return Job.from_item(item)

    def update(
        self,
        job_id: str,
        *,
        status: str | None = None,
        progress: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        expect_position: str | None = None,
    ) -> bool:
        """Set what is given. With ``expect_position``, only if the job's progress is still at
        that position (a stale step's update is refused: False)."""
        names = {"#u": "updated_at"}
        values: dict[str, Any] = {":u": {"S": now_iso()}}
        sets = ["#u = :u"]
        if status is not None:
            names["#s"] = "status"
            sets.append("#s = :s")
            values[":s"] = {"S": status}
        if progress is not None:
            sets.append("progress = :p")
            values[":p"] = {"S": orjson.dumps(dict(progress)).decode()}
            sets.append("#pos = :pos")
            names["#pos"] = "position"
            values[":pos"] = {"S": str(progress.get("position", ""))}
        if result is not None:
            sets.append("#r = :r")
            names["#r"] = "result"
            values[":r"] = {"S": orjson.dumps(dict(result)).decode()}
        if error is not None:
            sets.append("#e = :e")
            names["#e"] = "error"
            values[":e"] = {"S": error[:1000]}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": {"S": job_id}},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if expect_position is not None:
            names["#pos"] = "position"
            kwargs["ConditionExpression"] = (
                "attribute_not_exists(#pos) OR #pos = :expected"
                if expect_position == ""
                else "#pos = :expected"
            )
            values[":expected"] = {"S": expect_position}
        try:
            self.dynamodb.update_item(**kwargs)
        except ClientError as exc:
            if conditional_check_failed(exc):
                return False
            raise
        return True

    # --- partition locks ------------------------------------------------------------------

    def lock(self, prefix: str, owner: str) -> bool:
        """Take the hour's lock for ``owner`` (again, if it already holds it); False while
        another holder's lease runs."""
        now = int(self.clock())
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"lock#{prefix}"},
                    "owner": {"S": owner},
                    "lease_until": {"N": str(now + LOCK_LEASE_S)},
                    "expires_at": {"N": str(now + LOCK_LEASE_S + 3600)},
                },
                ConditionExpression=(
                    "attribute_not_exists(pk) OR lease_until < :now OR #o = :owner"
                ),
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":owner": {"S": owner}},
            )
        except ClientError as exc:
            if conditional_check_failed(exc):
                return False
            raise
        return True

    def unlock(self, prefix: str, owner: str) -> None:
        try:
            self.dynamodb.delete_item(
                TableName=self.table,
                Key={"pk": {"S": f"lock#{prefix}"}},
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if not conditional_check_failed(exc):
                raise


class JobQueue:
    """The jobs queue: each message is one step of one job."""

    def __init__(self, sqs: Any, queue_name: str) -> None:
        self.sqs = sqs
        self.queue_name = queue_name
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = str(self.sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"])
        return self._url

    def send(self, message: Mapping[str, Any], delay_s: float = 0) -> None:
        self.sqs.send_message(
            QueueUrl=self.url,
            MessageBody=orjson.dumps(dict(message)).decode(),
            DelaySeconds=max(0, min(MAX_DELAY_S, int(delay_s))),
        )


def public_view(job: Job) -> dict[str, Any]:
    """What the status routes answer: never a user id (the job holds none)."""
    view = {
        "job_id": job.job_id,
        "kind": job.kind,
        "status": job.status,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        **{k: v for k, v in job.params.items() if k != "requested_by"},
        "progress": {k: v for k, v in job.progress.items() if k != "position"},
    }
    if job.result:
        view["result"] = job.result
    if job.error:
        view["error"] = job.error
    return view
