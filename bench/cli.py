"""``python -m bench [--quick] [--figures 1,2,...]``: run the figures, print the table, write
``bench/results.md``."""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from bench.config import RunConfig
from bench.machine import describe
from bench.report import FigureResult, guarded, markdown, print_console, write_markdown

RESULTS = Path(__file__).resolve().parent / "results.md"
IN_PROCESS = {
    1: "bench.fig_ingest",
    2: "bench.fig_writes",
    3: "bench.fig_consumers",
    4: "bench.fig_archive",
}
ON_STACK = (5, 6, 7)  # need the local stack (started once, stopped at the end)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="~2-minute version, smaller samples")
    parser.add_argument(
        "--figures",
        default="1,2,3,4,5,6,7",
        help="comma-separated figure numbers to run (default: all)",
    )
    parser.add_argument("--seed", type=int, default=RunConfig.seed)
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"markdown output (default {RESULTS})"
    )
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="sample the stack's processes with py-spy in figure 7 when py-spy is installed",
    )
    return parser.parse_args(argv)


TITLES = {
    1: "ingest hot path",
    2: "aggregator DynamoDB writes",
    3: "consumer CPU",
    4: "archive size",
    5: "freshness on the local stack",
    6: "read latency",
    7: "local throughput and its bound",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    if not console.is_terminal:
        console = Console(width=170)
    config = RunConfig(quick=args.quick, seed=args.seed)
    wanted = sorted({int(part) for part in args.figures.split(",") if part.strip()})
    started = time.monotonic()
    results: list[FigureResult] = []
    for number in wanted:
        if number in IN_PROCESS:
            module = importlib.import_module(IN_PROCESS[number])
            work = functools.partial(module.run, config)
            results.append(guarded(number, TITLES[number], work, console))
    on_stack = [number for number in wanted if number in ON_STACK]
    if on_stack:
        from bench.stack_figures import run_on_stack

        results.extend(run_on_stack(config, on_stack, console, profile=args.profile))
    elapsed = time.monotonic() - started
    mode = "--quick" if args.quick else "full run"
    title = f"clickstream bench ({mode}, {elapsed:.0f} s)"
    print_console(console, results, title)
    command = "python -m bench" + (" --quick" if args.quick else "")
    if args.figures != "1,2,3,4,5,6,7":
        command += f" --figures {args.figures}"
    text = markdown(results, describe(), mode=mode, command=command, seconds=elapsed)
    write_markdown(args.out, text)
    console.print(f"written to {args.out}")
    return 1 if any(result.error for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
