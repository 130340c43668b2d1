"""API keys: the format and its checksum, what the table stores (only the hash), creation's
refusals at their bounds, and the lookup cache's TTL and LRU bound, with an injected clock."""

from __future__ import annotations

import hashlib
import re
import zlib
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from clickstream.keys import (
    KeyAdminError,
    KeyCache,
    KeyRecord,
    create_key,
    generate_key,
    get_key,
    hash_key,
    record_from_item,
    timestamp,
    well_formed,
)

TABLE = "keys"
CREATED = datetime(2026, 11, 24, 12, 30, 45, 123456, tzinfo=UTC)


@pytest.fixture
def dynamodb():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def with_checksum(body: str) -> str:
    return body + f"{zlib.crc32(body.encode()):08x}"


@pytest.mark.parametrize(
    ("role", "prefix"), [("write", "csw_"), ("read", "csr_"), ("admin", "csa_")]
)
def test_a_key_is_its_role_prefix_48_hex_digits_and_a_crc32_of_the_rest(role, prefix):
    key = generate_key(role)
    assert re.fullmatch(prefix + "[0-9a-f]{48}", key)
    assert key == with_checksum(key[:-8])
    assert generate_key(role) != key


def test_only_the_three_roles_have_keys():
    with pytest.raises(KeyAdminError, match=r"^role must be one of write, read, admin$"):
        generate_key("owner")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (with_checksum("csw_" + "0" * 40), True),
        (with_checksum("csr_" + "ab" * 20), True),
        (with_checksum("csa_" + "9" * 40), True),
        (with_checksum("csx_" + "0" * 40), False),  # no such role
        (with_checksum("csw_" + "A" * 40), False),  # upper-case hex
        (with_checksum("csw_" + "0" * 39), False),  # one digit short
        (with_checksum("csw_" + "0" * 41), False),
        (with_checksum("csw_" + "0" * 40)[:-1] + "z", False),
        ("csw_" + "0" * 48, False),  # the checksum of nothing it matches
        (" " + with_checksum("csw_" + "0" * 40), False),
        (with_checksum("csw_" + "0" * 40) + "\n", False),
    ],
)
def test_well_formed_checks_shape_and_checksum(key, expected):
    assert well_formed(key) is expected


def test_a_keys_hash_is_its_sha256_in_hex():
    assert hash_key("csw_abc") == hashlib.sha256(b"csw_abc").hexdigest()
    assert (
        hash_key("\udcff") == hashlib.sha256("\udcff".encode("utf-8", "surrogatepass")).hexdigest()
    )


def test_creation_stores_the_hash_never_the_key(dynamodb):
    key, record = create_key(
        dynamodb, TABLE, role="read", site="shop.example", name="ci", now=CREATED
    )
    assert key.startswith("csr_") and well_formed(key)
    digest = hashlib.sha256(key.encode()).hexdigest()
    expected = KeyRecord(digest[:12], "read", "shop.example", "ci", "2026-11-24T12:30:45Z")
    assert record == expected
    (item,) = dynamodb.scan(TableName=TABLE)["Items"]
    assert item == {
        "pk": {"S": "key#" + digest},
        "role": {"S": "read"},
        "site": {"S": "shop.example"},
        "name": {"S": "ci"},
        "created_at": {"S": "2026-11-24T12:30:45Z"},
    }
    assert get_key(dynamodb, TABLE, key) == expected
    assert get_key(dynamodb, TABLE, generate_key("read")) is None


def test_a_given_key_is_stored_once(dynamodb):
    key = with_checksum("csw_" + "1" * 40)
    assert create_key(dynamodb, TABLE, role="write", site="s", key=key)[0] == key
    with pytest.raises(KeyAdminError, match=r"^that key exists already$"):
        create_key(dynamodb, TABLE, role="write", site="s", key=key)


SITE_OR_NAME = r"^site is required \(at most 253 characters\); name at most 128$"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"role": "owner", "site": "s"}, r"^role must be one of write, read, admin$"),
        ({"role": "write", "site": ""}, SITE_OR_NAME),
        ({"role": "write", "site": "s" * 254}, SITE_OR_NAME),
        ({"role": "write", "site": "s", "name": "n" * 129}, SITE_OR_NAME),
        (
            {"role": "write", "site": "s", "key": with_checksum("csr_" + "0" * 40)},
            r"^not a well-formed write key \(make one with generate_key\)$",
        ),
        (
            {"role": "read", "site": "s", "key": "csr_" + "0" * 48},
            r"^not a well-formed read key \(make one with generate_key\)$",
        ),
    ],
)
def test_creation_refuses_what_it_cannot_store(dynamodb, options, message):
    with pytest.raises(KeyAdminError, match=message):
        create_key(dynamodb, TABLE, **options)
    assert dynamodb.scan(TableName=TABLE)["Items"] == []


def test_a_key_may_be_created_without_a_name(dynamodb):
    key, record = create_key(dynamodb, TABLE, role="write", site="s")
    assert record.name == ""
    assert get_key(dynamodb, TABLE, key) == record


def test_the_longest_site_and_name_are_taken(dynamodb):
    _, record = create_key(dynamodb, TABLE, role="admin", site="s" * 253, name="n" * 128)
    assert (record.site, record.name) == ("s" * 253, "n" * 128)


def test_a_record_reads_an_item_without_its_optional_attributes():
    digest = "f" * 64
    assert record_from_item({"pk": {"S": "key#" + digest}, "role": {"S": "write"}}) == KeyRecord(
        "f" * 12, "write", "", "", "", None
    )
    revoked = record_from_item(
        {
            "pk": {"S": "key#" + digest},
            "role": {"S": "read"},
            "revoked_at": {"S": "2026-11-25T00:00:00Z"},
        }
    )
    assert revoked.revoked_at == "2026-11-25T00:00:00Z" and not revoked.active


def test_times_are_utc_seconds_with_a_z():
    assert timestamp(CREATED) == "2026-11-24T12:30:45Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", timestamp(None))


def found(name: str) -> KeyRecord:
    return KeyRecord(name, "write", "s", "", "")


def test_a_lookup_is_trusted_for_its_ttl_and_read_again_at_its_end():
    clock = [100.0]
    cache = KeyCache(clock=lambda: clock[0])  # the default TTL: 60 s
    calls: list[str] = []

    def fetch(key: str) -> KeyRecord | None:
        calls.append(key)
        return found(key) if key != "missing" else None

    assert cache.get("k", fetch) == found("k") and cache.get("missing", fetch) is None
    clock[0] = 159.999
    assert cache.get("k", fetch) == found("k") and cache.get("missing", fetch) is None
    assert calls == ["k", "missing"] and cache.lookups == 2
    clock[0] = 160.0
    cache.get("k", fetch)
    assert calls == ["k", "missing", "k"] and cache.lookups == 3


def test_the_cache_forgets_the_least_recently_used_key_first():
    cache = KeyCache(ttl=60, max_entries=2, clock=lambda: 0.0)
    calls: list[str] = []

    def fetch(key: str) -> KeyRecord:
        calls.append(key)
        return found(key)

    cache.get("a", fetch)
    cache.get("b", fetch)
    cache.get("a", fetch)  # a is now the most recently used
    cache.get("c", fetch)  # so b goes
    cache.get("a", fetch)
    assert calls == ["a", "b", "c"]
    cache.get("b", fetch)
    assert calls == ["a", "b", "c", "b"]


def test_the_default_bound_is_4096_keys():
    cache = KeyCache(clock=lambda: 0.0)
    for index in range(4097):
        cache.get(f"k{index}", found)
    assert cache.lookups == 4097
    cache.get("k1", found)  # still held
    assert cache.lookups == 4097
    cache.get("k0", found)  # the first one went
    assert cache.lookups == 4098


def test_clearing_forgets_everything():
    cache = KeyCache(clock=lambda: 0.0)
    cache.get("k", found)
    cache.clear()
    cache.get("k", found)
    assert cache.lookups == 2
