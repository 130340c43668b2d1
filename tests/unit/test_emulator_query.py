"""The emulator's partition-only Query (localdev.emulator.query_by_partition) answers exactly
what moto's whole-table Query answers."""

from __future__ import annotations

import random

import boto3
from moto import mock_aws

from localdev.emulator import query_by_partition

QUERIES = [
    {"KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b", "Limit": 7},
    {"KeyConditionExpression": "pk = :p AND begins_with(sk, :c)", "ScanIndexForward": False},
    {"KeyConditionExpression": "pk = :p", "FilterExpression": "v > :z", "Limit": 11},
]


def answers() -> list[list[dict]]:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )
    rng = random.Random(7)
    for i in range(400):
        item = {"pk": {"S": f"p{rng.randrange(6)}"}, "sk": {"S": f"{rng.randrange(999):03d}"}}
        dynamodb.put_item(TableName="t", Item={**item, "v": {"N": str(i)}})
    found = []
    for partition in range(7):  # p6 is empty
        values = {":p": {"S": f"p{partition}"}, ":a": {"S": "100"}, ":b": {"S": "700"}}
        values |= {":c": {"S": "2"}, ":z": {"N": "200"}}
        for query in QUERIES:
            used = {k: v for k, v in values.items() if k in str(query)}
            page = dynamodb.query(TableName="t", ExpressionAttributeValues=used, **query)
            found.append(page["Items"])
            if "LastEvaluatedKey" in page:
                more = dynamodb.query(
                    TableName="t",
                    ExpressionAttributeValues=used,
                    ExclusiveStartKey=page["LastEvaluatedKey"],
                    **query,
                )
                found.append(more["Items"])
    return found


def test_a_partition_query_answers_what_a_table_scan_answers(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # mock_aws, not a stack's emulator
    with mock_aws():
        expected = answers()
    from moto.dynamodb.models import table

    monkeypatch.setattr(table.Table, "query", table.Table.query)
    monkeypatch.setattr(table.Table, "all_items", table.Table.all_items)
    monkeypatch.delattr(table.Table, "_clickstream_partitioned", raising=False)
    with mock_aws():
        query_by_partition()
        assert answers() == expected
    assert sum(map(len, expected)) > 100
