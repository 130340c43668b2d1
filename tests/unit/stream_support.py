"""An in-memory Kinesis for ingest's tests: answers ``PutRecords`` from a script and keeps
what it was sent."""

from __future__ import annotations

from typing import Any

import orjson


class ScriptedStream:
    """A Kinesis stand-in that answers each ``PutRecords`` from a script: an exception, or a
    per-entry list of error codes (None = stored)."""

    def __init__(self, *answers: Exception | list[str | None]) -> None:
        self.answers = list(answers)
        self.calls: list[list[dict[str, Any]]] = []

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Records)
        answer = self.answers.pop(0) if self.answers else [None] * len(Records)
        if isinstance(answer, Exception):
            raise answer
        return {
            "Records": [
                {"ErrorCode": code, "ErrorMessage": "no"} if code else {"SequenceNumber": "1"}
                for code in answer
            ]
        }

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every event the stream was sent, decoded, in order (retries included)."""
        return [orjson.loads(entry["Data"]) for call in self.calls for entry in call]
