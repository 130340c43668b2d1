"""Privacy on the live local stack: a user's erasure request removes their events from the
Parquet archive and the recent-events feeds (other users' events stay, counters stay), is
audited, and nothing the stack writes or logs holds a raw IP address or a key."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests

from tests.integration.consumers_idle import settled

pytestmark = pytest.mark.integration

CLIENT_IP = "203.0.113.77"
FORWARDED_IP = "198.51.100.23"
IPV6 = "2001:db8:85a3:8d3:1319:8a2e:370:7348"


def archived_user_ids(stack) -> list[str | None]:
    s3 = stack.client("s3")
    ids: list[str | None] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack.archive_bucket, Prefix="events/"
    ):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=stack.archive_bucket, Key=obj["Key"])["Body"].read()
            ids += pq.read_table(io.BytesIO(body), columns=["user_id"])["user_id"].to_pylist()
    return ids


def feed(stack) -> list[dict]:
    return stack.get("/stats")["recent_events"]


def erase(stack, user_id: str) -> dict:
    """DELETE /users/{id} (202, a job), then its status until the jobs function finished it."""
    response = requests.delete(
        f"{stack.api_url}/users/{user_id}", headers=stack.admin_headers, timeout=60
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert user_id not in response.text
    assert response.headers["Location"] == accepted["status_url"]

    def finished() -> dict | None:
        status = requests.get(
            stack.api_url + accepted["status_url"], headers=stack.admin_headers, timeout=30
        ).json()
        assert status["status"] != "failed", status
        return status if status["status"] == "succeeded" else None

    status = stack.wait_until(finished, timeout=120)
    return {**status["result"], "job_id": accepted["job_id"]}


def test_erasing_a_user_removes_their_events_and_keeps_everyone_elses(secure_stack):
    tag = uuid.uuid4().hex[:8]
    erased, kept = f"erase-me-{tag}", f"keep-me-{tag}"
    sent = secure_stack.post_events(
        [
            {"event_type": kind, "user_id": erased, "session_id": f"{tag}-a"}
            for kind in ("page_view", "add_to_cart", "purchase")
        ]
        + [
            {"event_type": "page_view", "user_id": kept, "session_id": f"{tag}-b"},
            {"event_type": "search", "user_id": kept, "session_id": f"{tag}-b"},
        ]
    )
    assert sent["processed"] == 5
    ours = set(sent["event_ids"])
    secure_stack.wait_until(
        lambda: (
            archived_user_ids(secure_stack).count(erased) == 3
            and archived_user_ids(secure_stack).count(kept) == 2
        ),
        timeout=90,
    )
    secure_stack.wait_until(lambda: ours <= {e["event_id"] for e in feed(secure_stack)}, 60)
    settled(secure_stack.metrics_urls["consumers"], secure_stack)  # nothing else still to count
    total_before = secure_stack.get("/stats")["total_events"]

    result = erase(secure_stack, erased)
    assert result["archive_rows_removed"] == 3
    assert result["feed_events_removed"] == 3
    assert result["user_hash"] == hashlib.sha256(erased.encode()).hexdigest()
    ids = archived_user_ids(secure_stack)
    assert erased not in ids
    assert ids.count(kept) == 2
    shown = [e for e in feed(secure_stack) if e["event_id"] in ours]
    assert {e["user_id"] for e in shown} == {kept}
    # aggregated counters are anonymous and stay
    assert secure_stack.get("/stats")["total_events"] == total_before
    # audited: an item with the user id's hash (never the id) and who asked
    audit = secure_stack.client("dynamodb").get_item(
        TableName=secure_stack.resources["KeysTableName"], Key={"pk": {"S": result["audit_id"]}}
    )["Item"]
    assert audit["action"]["S"] == "delete_user"
    assert audit["user_hash"]["S"] == result["user_hash"]
    assert json.loads(audit["requested_by"]["S"])["role"] == "admin"
    assert erased not in json.dumps(audit)
    log = (secure_stack.state_dir / "logs" / "api.log").read_text()
    asked = [json.loads(line) for line in log.splitlines() if '"user erasure requested"' in line]
    assert result["user_hash"] in [line["user_hash"] for line in asked]
    jobs_log = (secure_stack.state_dir / "logs" / "jobs.log").read_text()
    assert result["job_id"] in jobs_log
    assert not any(erased in line for line in log.splitlines() if '"user erasure' in line)
    assert erased not in jobs_log  # the jobs function logs the job, never the user id
    # a second request finds nothing more to erase
    again = erase(secure_stack, erased)
    assert again["archive_rows_removed"] == 0 and again["feed_events_removed"] == 0


def test_no_raw_ip_address_or_key_is_stored_or_logged(secure_stack):
    tag = uuid.uuid4().hex[:8]
    records = [
        {"event_type": "click", "session_id": f"ip-{tag}", "ip_address": CLIENT_IP},
        {"event_type": "click", "session_id": f"ip-{tag}", "ipAddress": IPV6},
        {"event_type": "click", "session_id": f"ip-{tag}"},  # from X-Forwarded-For
    ]
    posted = requests.post(
        f"{secure_stack.api_url}/events",
        json={"records": records},
        # A client's own entry first (spoofed), then the one its (trusted) proxy appended.
        headers={"X-Forwarded-For": f"10.0.0.1, {FORWARDED_IP}", **secure_stack.write_headers},
        timeout=30,
    ).json()
    beacon = requests.post(  # a beacon: the write key in the query string
        f"{secure_stack.api_url}/track",
        params={"key": secure_stack.write_key},
        data=json.dumps({"event_type": "click", "session_id": f"ip-{tag}", "ip": CLIENT_IP}),
        headers={"Content-Type": "text/plain"},
        timeout=30,
    )
    assert posted["processed"] == 3 and beacon.status_code == 200
    ids = set(posted["event_ids"]) | {beacon.json()["event_id"]}

    def exported() -> list[dict]:
        """Our rows among every page of the export (other tests' events may come first)."""
        rows: list[dict] = []
        params: dict[str, str] = {}
        while True:
            page = requests.get(
                f"{secure_stack.api_url}/export",
                params=params,
                headers=secure_stack.read_headers,
                timeout=60,
            ).json()
            rows += [row for row in page["events"] if row["event_id"] in ids]
            if not page.get("cursor"):
                return rows
            params = {"cursor": page["cursor"]}

    rows = secure_stack.wait_until(lambda: len(found := exported()) == 4 and found, 90)
    assert sorted(row["ip_truncated"] for row in rows) == sorted(
        ["203.0.113.0", "2001:db8:85a3::", "198.51.100.0", "203.0.113.0"]
    )
    stored = json.dumps(rows)
    for raw in (CLIENT_IP, IPV6, FORWARDED_IP):
        assert raw not in stored
    # nothing the stack logged holds them, nor any key (chalice local's access log included)
    logs = {
        path.name: path.read_text() for path in Path(secure_stack.state_dir, "logs").glob("*.log")
    }
    assert "api.log" in logs
    for name, text in logs.items():
        for secret in (CLIENT_IP, IPV6, FORWARDED_IP, *secure_stack.keys.values()):
            assert secret not in text, f"{secret} in {name}"
    assert "127.0.0.1 - -" not in logs["api.log"]  # the access log names no client address
