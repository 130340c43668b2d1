from __future__ import annotations

from collections import Counter
from datetime import timedelta

from infra.cost import batches, shard_of
from tests.factories import make_event, sequenced


def test_batches_close_on_the_window_or_the_size():
    events = [
        make_event(timestamp=make_event().timestamp + timedelta(seconds=i * 0.4)) for i in range(10)
    ]
    cut = batches(sequenced(events), window_s=1.0, size=100)
    assert [len(batch) for batch in cut] == [3, 3, 3, 1]
    assert [len(batch) for batch in batches(sequenced(events), window_s=60, size=4)] == [4, 4, 2]


def test_partition_keys_spread_evenly_over_shards_like_kinesis_md5_ranges():
    spread = Counter(shard_of(f"session-{i}", 4) for i in range(4000))
    assert set(spread) == {0, 1, 2, 3}
    assert all(800 < count < 1200 for count in spread.values())
