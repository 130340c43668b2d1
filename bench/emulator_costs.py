"""What the local emulator (moto) costs per operation as its state grows — the local stack's
scaling limits, measured on moto's own objects in this process (no server, no network).

* Kinesis: ``Shard.put_record`` finds the last sequence number with
  ``list(self.records.keys())[-1]`` and ``Shard.get_records`` walks the shard from its first
  record, so both grow with the number of records the shard holds (moto keeps them all).
* DynamoDB: ``transact_write_items`` backs up the whole table with ``copy.deepcopy`` once per
  action, so one aggregator transaction grows with the table.

Each is also measured with a candidate fix applied to the object in this process only."""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from typing import Any

from moto.kinesis.models import Record, Shard

PAYLOAD = "x" * 600  # about one event's JSON


def _filled_shard(records: int) -> Shard:
    shard = Shard(0, 0, 2**128 - 1)
    for sequence in range(1, records + 1):
        shard.records[sequence] = Record("pk", PAYLOAD, sequence, "1")
    return shard


def _o1_max(shard: Shard) -> int:
    return next(reversed(shard.records)) if shard.records else 0


def _direct_get_records(
    shard: Shard, last_sequence_id: str, limit: int | None
) -> tuple[list[Record], int, int]:
    """moto assigns consecutive sequence numbers per shard, so the records after
    ``last`` can be looked up by key instead of walking the shard from its start."""
    last = int(last_sequence_id)
    results: list[Record] = []
    newest = shard.records[next(reversed(shard.records))] if shard.records else None
    behind = 0.0
    sequence = last + 1
    while sequence in shard.records and (limit is None or len(results) < limit):
        record = shard.records[sequence]
        results.append(record)
        if newest is not None:
            behind = newest.created_at - record.created_at
        last = sequence
        sequence += 1
    return results, last, int(behind * 1000)


def _shape(answer: tuple[list[Record], int, int]) -> tuple[list[int], int]:
    return [record.sequence_number for record in answer[0]], answer[1]


def _fixed(shard: Shard) -> Shard:
    setattr(shard, "get_max_sequence_number", types.MethodType(_o1_max, shard))  # noqa: B010
    setattr(shard, "get_records", types.MethodType(_direct_get_records, shard))  # noqa: B010
    return shard


def _per_call_ms(call: Callable[[], Any], repeats: int) -> float:
    started = time.process_time()
    for _ in range(repeats):
        call()
    return (time.process_time() - started) * 1000 / repeats


def kinesis_costs(sizes: tuple[int, ...]) -> list[tuple[int, float, float, float, float]]:
    """Per shard size: ms CPU for a 500-record PutRecords' worth of ``put_record`` and for a
    ``GetRecords`` of the newest 500, today and with the fixes (O(1) last sequence number,
    direct lookup of the next records)."""
    rows = []
    for size in sizes:
        shard = _filled_shard(size)
        fixed = _fixed(_filled_shard(size))
        last = str(max(0, size - 500))
        if _shape(shard.get_records(last, 500)) != _shape(fixed.get_records(last, 500)):
            raise RuntimeError("the direct get_records disagrees with moto's")

        def put_500(target: Shard = shard) -> None:
            for _ in range(500):
                target.put_record("pk", PAYLOAD, "1")

        def get_500(target: Shard = shard, after: str = last) -> None:
            target.get_records(after, 500)

        put_today = _per_call_ms(put_500, 3)
        get_today = _per_call_ms(get_500, 5)

        def put_500_fixed(target: Shard = fixed) -> None:
            for _ in range(500):
                target.put_record("pk", PAYLOAD, "1")

        def get_500_fixed(target: Shard = fixed, after: str = last) -> None:
            target.get_records(after, 500)

        rows.append(
            (
                size,
                put_today,
                _per_call_ms(put_500_fixed, 3),
                get_today,
                _per_call_ms(get_500_fixed, 5),
            )
        )
    return rows
