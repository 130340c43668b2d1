"""The benchmark's pure helpers (bench/): percentiles, the freshness and throughput
arithmetic, DynamoDB item sizing, py-spy summaries and the report table. No timing."""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.awsmock import attribute_value_size, item_size, write_units
from bench.fig_throughput import _pace
from bench.profiling import package_of, summarise
from bench.report import Row, md_table
from bench.stack import Stack
from bench.stats import (
    counter_catch_up,
    crossing,
    fmt_number,
    median,
    paired_ratios,
    per_thousand,
    percentile,
    ratio,
    slope_rate,
    weighted_expand,
)


def test_percentile_interpolates_between_ranks_like_numpy():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 99) == pytest.approx(3.97)
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 50))
    assert percentile([3.0, 1.0, 2.0], 50) == median([2.0, 3.0, 1.0]) == 2.0


def test_percentile_rejects_out_of_range():
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_percentile_of_a_list_with_infinity_keeps_it_at_the_top():
    assert percentile([1.0, 2.0, math.inf], 50) == 2.0
    assert math.isinf(percentile([1.0, 2.0, math.inf], 100))


def test_ratio_and_per_thousand():
    assert ratio(50.0, 100.0) == 0.5
    assert math.isnan(ratio(1.0, 0.0))
    assert per_thousand(9, 1000) == 9.0
    assert math.isnan(per_thousand(1, 0))


def test_paired_ratios_divide_each_value_by_the_baseline_of_its_own_round():
    # The machine at 1.0, 0.6 and 1.4 times its speed in three rounds; the work half as fast
    # as its floor in each.
    floor = [100.0, 60.0, 140.0]
    assert paired_ratios([50.0, 30.0, 70.0], floor) == [0.5, 0.5, 0.5]
    assert paired_ratios([50.0, 0.0], [0.0, 10.0])[1] == 0.0
    assert math.isnan(paired_ratios([50.0], [0.0])[0])
    with pytest.raises(ValueError, match="2 values against 1 baselines"):
        paired_ratios([1.0, 2.0], [1.0])


def test_weighted_expand_repeats_each_value_by_its_weight():
    assert weighted_expand([(0.5, 2), (1.0, 1), (9.0, 0)]) == [0.5, 0.5, 1.0]


def test_counter_catch_up_orders_batches_by_ack_and_finds_the_first_covering_poll():
    acks = [(0.0, 0.2, 10), (0.1, 0.15, 5), (0.3, 0.4, 0)]  # (sent, acked, accepted)
    polls = [(0.5, 0.0), (1.0, 5.0), (1.4, 12.0), (2.0, 15.0)]
    # by ack: the 5-event batch (sent 0.1) then the 10-event one (sent 0.0)
    assert counter_catch_up(acks, polls) == [(pytest.approx(0.9), 5), (pytest.approx(2.0), 10)]


def test_counter_catch_up_reports_never_visible_as_infinite():
    assert counter_catch_up([(0.0, 0.1, 3)], [(1.0, 2.0)]) == [(math.inf, 3)]


def test_crossing_and_slope_rate():
    series = [(0.0, 0), (1.0, 100), (2.0, 300), (3.0, 1000)]
    assert crossing(series, 200) == pytest.approx(1.5)
    assert crossing(series, 2000) is None
    # 10% (100) at t=1.0, 90% (900) at t=2 + 600/700
    assert slope_rate(series, 1000) == pytest.approx(800 / (1.0 + 600 / 700))
    assert slope_rate([(0.0, 0)], 1000) is None


def test_fmt_number():
    assert fmt_number(12345.6) == "12,346"
    assert fmt_number(123.4) == "123"
    assert fmt_number(1.234) == "1.23"
    assert fmt_number(0.001234) == "0.00123"
    assert fmt_number(None) == "-"
    assert fmt_number(math.nan) == "-"
    assert fmt_number(math.inf) == "inf"
    assert fmt_number(0.0) == "0"


def test_dynamodb_item_size_follows_the_documented_rules():
    assert attribute_value_size({"S": "héllo"}) == 6
    assert attribute_value_size({"N": "123"}) == 3  # 2 digits per byte, rounded up, + 1
    assert attribute_value_size({"B": b"\x00" * 10}) == 10
    assert attribute_value_size({"BOOL": True}) == 1
    assert attribute_value_size({"M": {"a": {"S": "xy"}}}) == 3 + 1 + 1 + 2
    assert attribute_value_size({"L": [{"S": "x"}, {"N": "1"}]}) == 3 + (1 + 1) + (1 + 2)
    assert item_size({"pk": {"S": "total"}, "sk": {"S": "all"}}) == 2 + 5 + 2 + 3


def test_write_units_round_up_per_kilobyte_and_double_in_transactions():
    assert write_units(10, transactional=False) == 1
    assert write_units(1024, transactional=False) == 1
    assert write_units(1025, transactional=False) == 2
    assert write_units(1025, transactional=True) == 4


def test_py_spy_frames_are_grouped_by_package():
    assert package_of("dispatch (moto/core/responses.py:183)") == "moto"
    assert package_of("loads (json/__init__.py:359)") == "json"
    assert package_of("readinto (socket.py:706)") == "socket"
    assert package_of("_find_and_load (<frozen importlib._bootstrap>:1176)") == "python internals"
    assert package_of("f (/x/.venv/lib/python3.11/site-packages/pydantic/main.py:1)") == "pydantic"


def test_py_spy_raw_output_is_summarised_by_leaf_frame():
    raw = "a (x/m.py:1);b (moto/r.py:2) 3\na (x/m.py:1);c (json/d.py:4) 1\n\nnot a sample line\n"
    profile = summarise("emulator", raw)
    assert profile.samples == 4
    assert profile.by_package == {"moto": 3, "json": 1}
    assert profile.by_function.most_common(1) == [("b (moto/r.py:2)", 3)]


def test_report_rows_and_markdown_tables():
    row = Row("m", 25.0, "ev/s", 100.0, "floor", target=">= 50%", holds=False)
    assert row.ratio_text() == "0.25x"
    assert row.holds_text() == "NO"
    assert row.baseline_text() == "100 (floor)"
    assert Row("n", 1.0, "s").ratio_text() == "-"
    assert md_table(("a", "b"), [(1.5, "x|y")]) == [
        "| a | b |",
        "| --- | --- |",
        "| 1.50 | x\\|y |",
    ]


def test_the_emulator_is_called_the_common_bound_only_when_the_stages_keep_pace():
    close = _pace({"ingest": 2000.0, "aggregator": 1900.0, "archiver": 2375.0})
    assert close == ", the stages run at about the same rate, and it is their common bound"
    apart = _pace({"ingest": 3983.0, "aggregator": 1907.0, "archiver": 2241.0})
    assert apart == (
        ", but the stages' rates differ (1,907 to 3,983 ev/s), so it is not their only bound"
    )
    assert _pace({"ingest": 10.0}) == ""


def test_each_process_of_the_stack_is_listed_once():
    class Handle:
        process = SimpleNamespace(pid=101)
        info = {"pids": {"supervisor": 101, "api": 102}}

    listed = Stack(Handle(), Path())
    assert sorted(listed.pids.values()) == sorted([101, 102, os.getpid()])
