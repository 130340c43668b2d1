"""Test data: the seed payloads as files, and a factory for canonical events."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickstream.aggregates import SequencedEvent
from clickstream.schema import Device, Event, Location

EVENTS_DIR = Path(__file__).parent / "events"


def load_event_file(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return data


def seed_payloads() -> dict[str, dict[str, Any]]:
    return load_event_file("seed_payloads.json")


def user_agents() -> dict[str, str]:
    return load_event_file("user_agents.json")


def make_event(**overrides: Any) -> Event:
    timestamp = overrides.pop("timestamp", datetime(2026, 11, 24, 10, 30, 15, tzinfo=UTC))
    fields: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "timestamp": timestamp,
        "received_at": timestamp,
        "user_id": "u1",
        "session_id": "s1",
        "page": "/home",
        "device": Device(device_type="desktop"),
        "location": Location(country="US"),
    }
    fields.update(overrides)
    return Event(**fields)


def sequenced(events: list[Event], start: int = 1000) -> list[SequencedEvent]:
    return [
        SequencedEvent(sequence_number=str(start + index), event=event)
        for index, event in enumerate(events)
    ]
