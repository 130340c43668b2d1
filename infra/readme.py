"""The README's figures, generated: the cost table from ``infra.cost`` (recorded in
``infra/cost-figures.json``), the consumers priced on Lambda and under the KCL (the cost
model's formulas, computed here), and the benchmark table from ``bench/results.md``.

``python -m infra.readme`` rewrites them; ``--measure-cost`` runs the cost model first;
``--check`` exits 1 when the README differs from what the recorded figures give."""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BENCH_RESULTS = ROOT / "bench" / "results.md"
COST_FIGURES = ROOT / "infra" / "cost-figures.json"
# The README's cost runs: a batching SDK (10 events a request), one dashboard open all day.
COST_COMMAND = "python -m infra.cost --events-per-request 10"
COST_RUNS = {"template default (1 shard)": None, "`--shards 2`": 2}
EVENTS_PER_REQUEST = 10.0
# The aggregate store's item kinds (clickstream/store.py's meter), as a reader knows them.
ITEM_KINDS = {
    "delta": "deltas",
    "session": "sessions",
    "k": "exact counts per value and day (pages, event types, entry and exit pages)",
    "kh": "exact exit-page counts per hour",
    "top": "top-N summaries per day and all time",
    "toph": "top-N summaries per hour",
    "hll": "visitor sketches",
    "c": "bucket counters",
    "recent": "feed",
    "cursor": "cursors",
}


def _block(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- generated: {name} \(python -m infra\.readme\) -->\n)(.*?)(<!-- end: {name} -->)",
        re.DOTALL,
    )


def _cost_run(shards: int | None) -> dict[str, Any]:
    from infra.cost import daily_cost, measure

    counts, used = measure(1_000_000, 7, EVENTS_PER_REQUEST, shards=shards)
    rows = daily_cost(counts, used, dashboards=1)
    return {
        "rows": [[name, volume, round(usd, 2)] for name, volume, usd in rows],
        "total": round(sum(usd for *_, usd in rows), 2),
        "write_units_per_1000_by_kind": {
            kind: round(units * 1000 / max(1, counts.events))
            for kind, units in counts.write_units_by_kind.most_common()
        },
    }


def measure_cost() -> dict[str, Any]:
    """Run the cost model for each of the README's runs, each in a fresh process (the model
    starts an in-process moto of its own); the figures as JSON data."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1) as pool:
        runs = dict(zip(COST_RUNS, pool.map(_cost_run, COST_RUNS.values()), strict=True))
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    return {"command": COST_COMMAND, "date": date, "runs": runs}


def cost_block(figures: dict[str, Any]) -> str:
    labels = list(figures["runs"])
    header = "| item | " + " | ".join(f"{label} | USD/day" for label in labels) + " |"
    lines = [
        f"`{figures['command']}` ({figures['date']}):",
        "",
        header,
        "| --- |" + " --- | --- |" * len(labels),
    ]
    runs = [figures["runs"][label] for label in labels]
    for index, (name, *_) in enumerate(runs[0]["rows"]):
        cells = " | ".join(f"{run['rows'][index][1]} | {run['rows'][index][2]:.2f}" for run in runs)
        lines.append(f"| {name} | {cells} |")
    totals = " | ".join(f" | **{run['total']:.2f}**" for run in runs)
    lines.append(f"| **total** | {totals} |")
    kinds = ", ".join(
        f"{ITEM_KINDS.get(kind, kind)} {units:,}"
        for kind, units in runs[0]["write_units_per_1000_by_kind"].items()
    )
    lines += ["", f"Write units per 1,000 events by item kind, {labels[0]}: {kinds}."]
    return "\n".join(lines) + "\n"


def short_volume(events: int) -> str:
    for unit, size in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if events >= size and events % size == 0:
            return f"{events // size}{unit}"
    return f"{events:,}"


@functools.cache  # the same for one template and one price list: computed once a process
def consumers_block() -> str:
    """``python -m infra.cost --compare-consumers``: the consumers per day on Lambda or under
    the KCL on Fargate, at the README's volumes."""
    from infra.cost import CONSUMER_VOLUMES, consumer_comparison

    lines = [
        "`python -m infra.cost --compare-consumers`:",
        "",
        "| events/day | shards | Lambda consumers | USD/day | KCL on Fargate | USD/day |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in consumer_comparison(CONSUMER_VOLUMES):
        on_lambda = "; ".join(text for _, text, _ in row["lambda"]["rows"])
        on_kcl = "; ".join(text for _, text, _ in row["kcl"]["rows"])
        lines.append(
            f"| {short_volume(row['events_per_day'])} | {row['shards']} | {on_lambda} | "
            f"{row['lambda']['total']:.2f} | {on_kcl} | {row['kcl']['total']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def bench_block(results: str) -> str:
    """``bench/results.md``'s summary table and the run it comes from."""
    date = re.search(r"^- \*\*date\*\*: (.+)$", results, re.MULTILINE)
    commit = re.search(r"^- \*\*git commit\*\*: (\w+)", results, re.MULTILINE)
    summary = re.search(r"^## Summary\n\n(.*?)\n\n", results, re.MULTILINE | re.DOTALL)
    if summary is None or date is None:
        raise ValueError("bench/results.md has no summary table or date")
    run = f"{date.group(1)}, commit {commit.group(1)[:12]}" if commit else date.group(1)
    return f"From `bench/results.md` ({run}):\n\n{summary.group(1)}\n"


def render(readme: str, cost: dict[str, Any], bench_results: str) -> str:
    blocks = (
        ("cost", cost_block(cost)),
        ("consumers", consumers_block()),
        ("benchmarks", bench_block(bench_results)),
    )
    for name, body in blocks:
        found = _block(name).search(readme)
        if found is None:
            raise ValueError(f"the README has no generated block '{name}'")
        readme = readme[: found.start(2)] + body + readme[found.end(2) :]
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--measure-cost", action="store_true", help="run infra.cost first")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is stale")
    args = parser.parse_args(argv)
    if args.measure_cost:
        COST_FIGURES.write_text(json.dumps(measure_cost(), indent=2) + "\n")
    current = README.read_text(encoding="utf-8")
    cost = json.loads(COST_FIGURES.read_text(encoding="utf-8"))
    wanted = render(current, cost, BENCH_RESULTS.read_text(encoding="utf-8"))
    if args.check:
        if wanted != current:
            print("README.md's figures are stale: run python -m infra.readme", file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
