"""Figures 5-7, each on a fresh local stack: the emulator slows down as its stream and table
fill (see figure 7), so no figure inherits another's data; '10^4 events ingested' means
exactly that. Every stack is stopped, whatever happens."""

from __future__ import annotations

import contextlib
import functools
import traceback
from collections.abc import Sequence

from rich.console import Console

from bench import fig_freshness, fig_reads, fig_throughput
from bench.config import RunConfig
from bench.report import FigureResult, guarded
from bench.stack import Stack, local_stack

# Figure 7 flushes the archiver's batches after 1 s instead of the template's 30 s, so the
# zero-loss check does not wait half a minute for the last partial batch (the sustained rate
# is measured while every stage has a backlog, where the window plays no part).
STACK_ENV: dict[int, dict[str, str]] = {7: {"CLICKSTREAM_ESM_BATCHING_WINDOW_S": "1"}}

TITLES = {
    5: "Freshness: POST -> counted in /stats (local stack)",
    6: "Read latency at 10^4 and 10^5 events (local stack)",
    7: "Local throughput with zero loss, and what bounds it",
}


def run_on_stack(
    config: RunConfig, figures: Sequence[int], console: Console, *, profile: bool
) -> list[FigureResult]:
    results: dict[int, FigureResult] = {}
    if 5 in figures:
        work = functools.partial(fig_freshness.run, local_stack, config)
        results[5] = guarded(5, TITLES[5], work, console)
    for number in (7, 6):
        if number not in figures:
            continue
        try:
            with contextlib.ExitStack() as stacks:
                started = [
                    stacks.enter_context(local_stack(STACK_ENV.get(number)))
                    for _ in range(2 if number == 6 else 1)
                ]
                work = functools.partial(_run, number, started, config, profile)
                results[number] = guarded(number, TITLES[number], work, console)
        except Exception as exc:  # the stack itself failed to start or stop
            traceback.print_exc()
            results.setdefault(number, FigureResult(number, TITLES[number], error=f"stack: {exc}"))
    return [results[number] for number in sorted(results)]


def _run(number: int, stacks: list[Stack], config: RunConfig, profile: bool) -> FigureResult:
    if number == 6:
        return fig_reads.run(stacks[0], stacks[1], config)
    return fig_throughput.run(stacks[0], config, profile=profile and not config.quick)
