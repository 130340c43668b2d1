"""Key administration: ``python -m localdev.keys create|list|revoke`` (against the local
stack's emulator when ``AWS_ENDPOINT_URL`` points there, or against AWS with your own
credentials; the table from ``CLICKSTREAM_KEYS_TABLE`` or ``--table``).

    python -m localdev.keys create --role write --site shop.example --name "web beacon"
    python -m localdev.keys list [--site shop.example] [--json]
    python -m localdev.keys revoke <key id or key>

A key is printed once, at creation; the table stores only its SHA-256. Listing and revoking
scan the (small) keys table, which is why they live here and not in the deployed package:
the API's IAM policy needs no ``Scan``. A revoked key stops working within the API's key
cache time (``CLICKSTREAM_KEY_CACHE_S``, 60 s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from clickstream.errors import conditional_check_failed
from clickstream.keys import (
    KEY_ID_LENGTH,
    KEY_ITEM_PREFIX,
    ROLES,
    KeyAdminError,
    KeyRecord,
    create_key,
    hash_key,
    item_key,
    record_from_item,
    timestamp,
    well_formed,
)


def create_stack_keys(dynamodb: Any, table: str) -> dict[str, str]:
    """A write, a read and an admin key for the local stack (printed in the banner). Fixed
    ones come from ``CLICKSTREAM_LOCAL_WRITE_KEY`` / ``_READ_KEY`` / ``_ADMIN_KEY``."""
    from clickstream.keys import get_key

    keys: dict[str, str] = {}
    for role in ("write", "read", "admin"):
        wanted = os.environ.get(f"CLICKSTREAM_LOCAL_{role.upper()}_KEY") or None
        if wanted and get_key(dynamodb, table, wanted) is not None:
            keys[role] = wanted
            continue
        keys[role], _ = create_key(
            dynamodb, table, role=role, site="localhost", name="make local", key=wanted
        )
    return keys


def list_keys(dynamodb: Any, table: str, site: str | None = None) -> list[KeyRecord]:
    """Every key (administration only: a Scan of a small table, never on a request path)."""
    records: list[KeyRecord] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(pk, :prefix)",
        "ExpressionAttributeValues": {":prefix": {"S": KEY_ITEM_PREFIX}},
    }
    while True:
        page = dynamodb.scan(**kwargs)
        records.extend(record_from_item(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    if site is not None:
        records = [record for record in records if record.site == site]
    return sorted(records, key=lambda record: (record.site, record.created_at, record.key_id))


def revoke_key(dynamodb: Any, table: str, key_or_id: str, now: datetime | None = None) -> KeyRecord:
    """Revoke by the key itself or by its 12-digit key id (as ``list`` shows it)."""
    if well_formed(key_or_id):
        key_hash = hash_key(key_or_id)
    else:
        hashes = _hashes_starting_with(dynamodb, table, key_or_id.lower())
        if len(hashes) != 1 or len(key_or_id) < KEY_ID_LENGTH:
            raise KeyAdminError(f"no key with id {key_or_id!r}")
        key_hash = hashes[0]
    try:
        item = dynamodb.update_item(
            TableName=table,
            Key=item_key(key_hash),
            UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":now": {"S": timestamp(now)}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except ClientError as exc:
        if conditional_check_failed(exc):
            raise KeyAdminError("no such key") from None
        raise
    return record_from_item(item)


def _hashes_starting_with(dynamodb: Any, table: str, key_id: str) -> list[str]:
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(pk, :prefix)",
        "ExpressionAttributeValues": {":prefix": {"S": KEY_ITEM_PREFIX + key_id}},
        "ProjectionExpression": "pk",
    }
    hashes: list[str] = []
    while True:
        page = dynamodb.scan(**kwargs)
        hashes.extend(item["pk"]["S"][len(KEY_ITEM_PREFIX) :] for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return hashes
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.keys",
        description="Create, list and revoke API keys (only their SHA-256 is stored).",
    )
    parser.add_argument("--table", help="keys table (default: $CLICKSTREAM_KEYS_TABLE)")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a key and print it (shown only once)")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--site", required=True, help="the site or app the key belongs to")
    create.add_argument("--name", default="", help="what the key is for, e.g. 'web beacon'")
    create.add_argument("--json", action="store_true", help="print JSON")
    listing = commands.add_parser("list", help="list keys (ids, roles, sites; never the keys)")
    listing.add_argument("--site")
    listing.add_argument("--json", action="store_true", help="print JSON")
    revoke = commands.add_parser("revoke", help="revoke a key by its id or the key itself")
    revoke.add_argument("key", help="the 12-digit key id from 'list', or the key")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from clickstream.aws import client
    from clickstream.settings import get_settings

    args = _parser().parse_args(argv)
    table = args.table or get_settings().keys_table
    dynamodb = client("dynamodb")
    try:
        if args.command == "create":
            key, record = create_key(
                dynamodb, table, role=args.role, site=args.site, name=args.name
            )
            if args.json:
                print(json.dumps({"key": key, **asdict(record)}))
            else:
                print(key)
                print(
                    f"key id {record.key_id}, role {record.role}, site {record.site} "
                    "(store the key now: it is not shown again)",
                    file=sys.stderr,
                )
        elif args.command == "list":
            records = list_keys(dynamodb, table, args.site)
            if args.json:
                print(json.dumps([asdict(record) for record in records]))
            for record in [] if args.json else records:
                state = f"revoked {record.revoked_at}" if record.revoked_at else "active"
                print(
                    f"{record.key_id}  {record.role:<5}  {record.site}  {state}  "
                    f"{record.created_at}  {record.name}"
                )
        else:
            record = revoke_key(dynamodb, table, args.key)
            print(f"revoked {record.key_id} ({record.role}, {record.site}) at {record.revoked_at}")
    except KeyAdminError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
