"""API keys: *write* keys for ingest, *read* and *admin* keys for the read side.

A key is shown once, when it is created; the keys table stores only its SHA-256 (item
``pk = "key#<sha256 hex>"``), so a leaked table does not leak usable keys. A site may have
several keys (one per sender, rotated independently); a key is revoked by setting
``revoked_at``, never deleted, so the listing keeps its history.

Key format: ``csw_`` (write), ``csr_`` (read) or ``csa_`` (admin), 40 random hex digits and an
8-digit CRC-32 of the rest. The checksum lets the API turn away typos and junk without a
DynamoDB read; it is not a secret and proves nothing.

This module is what the API needs (format, hash, lookup, cache) plus ``create_key``; listing
and revoking, which scan the table, live with the command line in ``localdev/keys.py``
(``python -m localdev.keys create|list|revoke``), outside the deployed code, so the API's
IAM policy needs no ``Scan``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from clickstream.errors import conditional_check_failed

ROLES = ("write", "read", "admin")
ROLE_PREFIX = {"write": "csw_", "read": "csr_", "admin": "csa_"}
KEY_PATTERN = re.compile(r"^cs[wra]_[0-9a-f]{48}$")
KEY_ITEM_PREFIX = "key#"
KEY_ID_LENGTH = 12
MAX_SITE_LENGTH = 253
MAX_NAME_LENGTH = 128


class KeyAdminError(Exception):
    """A key operation that cannot be done (unknown key, duplicate, bad role)."""


@dataclass(frozen=True)
class KeyRecord:
    """What the table knows about a key; never the key itself."""

    key_id: str  # the first 12 hex digits of the hash: names a key without revealing it
    role: str
    site: str
    name: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _checksum(text: str) -> str:
    return f"{zlib.crc32(text.encode()):08x}"


def generate_key(role: str) -> str:
    if role not in ROLES:
        raise KeyAdminError(f"role must be one of {', '.join(ROLES)}")
    body = ROLE_PREFIX[role] + secrets.token_hex(20)
    return body + _checksum(body)


def well_formed(key: str) -> bool:
    """Shape and checksum only: a cheap filter before any lookup."""
    return bool(KEY_PATTERN.match(key)) and _checksum(key[:-8]) == key[-8:]


def item_key(key_hash: str) -> dict[str, Any]:
    return {"pk": {"S": KEY_ITEM_PREFIX + key_hash}}


def record_from_item(item: dict[str, Any]) -> KeyRecord:
    return KeyRecord(
        key_id=item["pk"]["S"][len(KEY_ITEM_PREFIX) :][:KEY_ID_LENGTH],
        role=item["role"]["S"],
        site=item.get("site", {}).get("S", ""),
        name=item.get("name", {}).get("S", ""),
        created_at=item.get("created_at", {}).get("S", ""),
        revoked_at=item.get("revoked_at", {}).get("S"),
    )


def timestamp(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")


def create_key(
    dynamodb: Any,
    table: str,
    *,
    role: str,
    site: str,
    name: str = "",
    key: str | None = None,
    now: datetime | None = None,
) -> tuple[str, KeyRecord]:
    """Store a new key (generated unless ``key`` is given) and return it with its record.
    The plain key is returned here and nowhere else."""
    if role not in ROLES:
        raise KeyAdminError(f"role must be one of {', '.join(ROLES)}")
    if not site or len(site) > MAX_SITE_LENGTH or len(name) > MAX_NAME_LENGTH:
        raise KeyAdminError(
            f"site is required (at most {MAX_SITE_LENGTH} characters); "
            f"name at most {MAX_NAME_LENGTH}"
        )
    key = key or generate_key(role)
    if not well_formed(key) or not key.startswith(ROLE_PREFIX[role]):
        raise KeyAdminError(f"not a well-formed {role} key (make one with generate_key)")
    key_hash = hash_key(key)
    item = {
        **item_key(key_hash),
        "role": {"S": role},
        "site": {"S": site},
        "name": {"S": name},
        "created_at": {"S": timestamp(now)},
    }
    try:
        dynamodb.put_item(
            TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)"
        )
    except ClientError as exc:
        if conditional_check_failed(exc):
            raise KeyAdminError("that key exists already") from None
        raise
    return key, record_from_item(item)


def get_key(dynamodb: Any, table: str, key: str) -> KeyRecord | None:
    item = dynamodb.get_item(TableName=table, Key=item_key(hash_key(key))).get("Item")
    return record_from_item(item) if item else None


class KeyCache:
    """Key lookups remembered for ``ttl`` seconds per warm Lambda (found *and* not found),
    so ingest does not pay a DynamoDB read per request. Bounded: the least recently used
    entries go first. Thread-safe (``chalice local`` serves on threads)."""

    def __init__(
        self,
        ttl: float = 60.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self.lookups = 0  # reads that went to the table (tests and metrics)
        self._entries: OrderedDict[str, tuple[float, KeyRecord | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, fetch: Callable[[str], KeyRecord | None]) -> KeyRecord | None:
        key_hash = hash_key(key)
        now = self.clock()
        with self._lock:
            cached = self._entries.get(key_hash)
            if cached is not None and cached[0] > now:
                self._entries.move_to_end(key_hash)
                return cached[1]
        record = fetch(key)
        with self._lock:
            self.lookups += 1
            self._entries[key_hash] = (now + self.ttl, record)
            self._entries.move_to_end(key_hash)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return record

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
