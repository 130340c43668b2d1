"""The deliberate bugs issue 19 names, each applied to the source by hand and run against the
fast-tier tests meant to kill it: every one must make those tests fail. ``make mutants`` runs
this after mutmut; ``python -m tests.named_mutants [NAME ...]`` runs some. The source is
restored after each mutant (and checked: the script refuses to start on a file it cannot
find its original text in)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    original: str
    mutated: str
    tests: tuple[str, ...]


STORE = "tests/unit/test_store.py::"
CONSUMERS = "tests/unit/test_consumers.py::"
COMPACTION = "tests/unit/test_compaction.py::"
UNITS = "tests/security/test_units.py::"

MUTANTS = (
    Mutant(
        "the condition on the shard's watermark (delta ordinal) put removed",
        "clickstream/store.py",
        'if not self._put(item, "attribute_not_exists(pk)", {}):\n            raise StoreConflict(shard)',
        'if not self._put(item, "attribute_not_exists(pk) OR attribute_exists(pk)", {}):\n            raise StoreConflict(shard)',
        (
            STORE + "test_a_writer_with_a_stale_head_rereads_it_and_appends_only_what_is_new",
            STORE + "test_concurrent_writers_of_one_shard_count_every_event_once",
        ),
    ),
    Mutant(
        "the conflict retry removed (a refused append raises at once)",
        "clickstream/store.py",
        "                if attempt == max_conflict_retries:\n                    raise",
        "                if attempt >= 0:\n                    raise",
        (STORE + "test_a_writer_with_a_stale_head_rereads_it_and_appends_only_what_is_new",),
    ),
    Mutant(
        "applicable_prefix: break -> continue",
        "consumers/common.py",
        'if status != "success":\n            break',
        'if status != "success":\n            continue',
        (
            CONSUMERS + "test_only_the_events_before_the_first_failed_record_may_be_applied",
            CONSUMERS
            + "test_nothing_after_a_failed_record_is_applied_and_the_retry_counts_each_event_once",
        ),
    ),
    Mutant(
        "compaction deletes what it just wrote (stale = keys)",
        "clickstream/compaction.py",
        "stale = [key for key in keys if key != target]",
        "stale = keys",
        (
            COMPACTION + "test_a_late_event_in_a_compacted_hour_is_merged_into_it",
            COMPACTION + "test_a_second_compaction_of_an_hour_keeps_every_event",
        ),
    ),
    Mutant(
        "compaction of the open hour (the closed-hour bound dropped)",
        "clickstream/compaction.py",
        "return sorted(prefix for prefix in touched if prefix <= last_closed)",
        "return sorted(prefix for prefix in touched)",
        (
            COMPACTION + "test_an_hour_is_closed_ten_minutes_after_its_end",
            COMPACTION
            + "test_a_back_fill_three_days_old_with_redeliveries_ends_once_in_one_file_per_hour",
        ),
    ),
    Mutant(
        "sequence positions compared as strings in compaction",
        "clickstream/compaction.py",
        '            ("_digits", "ascending"),\n',
        "",
        (COMPACTION + "test_the_earliest_position_wins_when_sequence_numbers_differ_in_length",),
    ),
    Mutant(
        "a revoked read or admin key accepted",
        "clickstream/auth.py",
        "    if not record.active:\n",
        '    if not record.active and record.role == "write":\n',
        (UNITS + "test_key_rules",),
    ),
    Mutant(
        "an admin key allowed to write",
        "clickstream/auth.py",
        '"admin": frozenset({"read", "admin"}),',
        '"admin": frozenset({"read", "admin", "write"}),',
        (UNITS + "test_key_rules",),
    ),
    Mutant(
        "conversion_rate from checkout instead of purchase",
        "clickstream/queries.py",
        'purchases = steps[-1]["sessions"]',
        'purchases = steps[-2]["sessions"]',
        (
            "tests/unit/test_queries.py::"
            "test_the_funnels_rates_are_the_shares_of_visits_the_test_sent",
        ),
    ),
    Mutant(
        "the session timeout 30 -> 25 minutes",
        "clickstream/aggregates.py",
        "SESSION_TIMEOUT = timedelta(minutes=30)",
        "SESSION_TIMEOUT = timedelta(minutes=25)",
        (
            "tests/unit/test_aggregates.py::"
            "test_a_visit_lasts_thirty_minutes_of_idleness_by_the_clock_the_events_carry",
        ),
    ),
    Mutant(
        "the session timeout's boundary: > -> >=",
        "clickstream/aggregates.py",
        "if state.steps and ts - state.last_seen > SESSION_TIMEOUT.total_seconds():",
        "if state.steps and ts - state.last_seen >= SESSION_TIMEOUT.total_seconds():",
        (
            "tests/unit/test_aggregates.py::"
            "test_a_visit_lasts_thirty_minutes_of_idleness_by_the_clock_the_events_carry",
        ),
    ),
    Mutant(
        "backoff without exponential growth",
        "clickstream/ingest.py",
        "return random.uniform(0, min(cap, base * (2**attempt)))",
        "return random.uniform(0, min(cap, base))",
        ("tests/unit/test_ingest.py::test_backoff_doubles_with_each_attempt_up_to_its_cap",),
    ),
    Mutant(
        "the oversize-poison check removed",
        "clickstream/records.py",
        "    if len(data) > MAX_RECORD_BYTES:\n",
        "    if False:\n",
        (CONSUMERS + "test_an_oversize_record_is_poison_whatever_it_holds",),
    ),
    Mutant(
        "the delta's size limit (a batch's increments cut into chunks) removed",
        "clickstream/store.py",
        "if len(body) > MAX_DELTA_BYTES and len(chunk) > 1:",
        "if False:",
        (STORE + "test_a_batch_too_large_for_one_item_is_cut_into_deltas_under_the_limit",),
    ),
)


def run(mutant: Mutant) -> tuple[bool, float]:
    """Apply, run its tests, restore. True when the tests failed (the mutant is killed)."""
    path = ROOT / mutant.path
    source = path.read_text()
    if source.count(mutant.original) != 1:
        raise SystemExit(f"{mutant.name}: the original text is not found once in {mutant.path}")
    started = time.monotonic()
    try:
        path.write_text(source.replace(mutant.original, mutant.mutated))
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly",
             "-p", "no:cacheprovider", *mutant.tests],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        path.write_text(source)
    return completed.returncode == 1, time.monotonic() - started


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv or any(word in m.name for word in argv)]
    lines = ["| named mutant | module | killed by | result |", "|---|---|---|---|"]
    survived = 0
    for mutant in chosen:
        killed, seconds = run(mutant)
        survived += not killed
        tests = "<br>".join(f"`{t.split('::')[-1]}`" for t in mutant.tests)
        verdict = f"killed ({seconds:.0f} s)" if killed else "**SURVIVED**"
        lines.append(f"| {mutant.name} | `{mutant.path}` | {tests} | {verdict} |")
        print(lines[-1], flush=True)
    print("\n".join(lines))
    if not argv:  # the whole list: the report's table
        from tests.mutation_report import replace_section

        replace_section("named", "\n".join(lines))
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
