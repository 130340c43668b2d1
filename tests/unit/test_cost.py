from __future__ import annotations

import ast
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

from infra.cost import CUSTOM_METRICS, batches, shard_of
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


ROOT = Path(__file__).parents[2]
# Each service's modules; consumers/common.py's metrics are the record consumers'.
SERVICE_MODULES = {
    "clickstream-api": ["api/app.py"],
    "clickstream-aggregator": ["consumers/aggregator.py", "consumers/common.py"],
    "clickstream-archiver": ["consumers/archiver.py", "consumers/common.py"],
    "clickstream-jobs": ["consumers/jobs.py"],
}


def emitted_metrics(module: str) -> set[str]:
    """The names of every ``add_metric`` call in a module, each a literal."""
    names = set()
    for node in ast.walk(ast.parse((ROOT / module).read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_metric":
            (name,) = [keyword.value for keyword in node.keywords if keyword.arg == "name"]
            assert isinstance(name, ast.Constant), f"{module}: a metric name that is not literal"
            names.add(name.value)
    return names


def test_the_contract_lists_and_the_cost_model_bills_every_metric_the_code_emits():
    """The code's ``add_metric`` calls, per service, are what docs/CONTRACT.md lists (one line
    a service, its names before the ';' that starts its properties) and what the cost model
    bills, one custom metric each."""
    emitting = {
        path.relative_to(ROOT).as_posix()
        for package in ("api", "consumers", "clickstream")
        for path in (ROOT / package).rglob("*.py")
        if "add_metric(" in path.read_text()
    }
    assert emitting == {module for modules in SERVICE_MODULES.values() for module in modules}
    emitted = {
        service: set().union(*map(emitted_metrics, modules))
        for service, modules in SERVICE_MODULES.items()
    }
    contract = (ROOT / "docs" / "CONTRACT.md").read_text()
    listed = {
        line.split("`")[1]: set(re.findall(r"`([A-Z]\w+)`", line.split(":", 1)[1].split(";")[0]))
        for line in contract.splitlines()
        if line.startswith("- service `")
    }
    assert listed == emitted
    assert sum(map(len, emitted.values())) == CUSTOM_METRICS
