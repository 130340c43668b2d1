"""``make rehearse``: ``make deploy`` and ``make destroy`` end to end on an emulator, without
an AWS account; one row per check, exit 1 when any fails."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from localdev.rehearse.rehearsal import Check, rehearse


def print_checks(checks: list[Check]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="make rehearse: make deploy + make destroy on the emulator")
    for column in ("step", "check", "", "detail"):
        table.add_column(column, overflow="fold")
    for check in checks:
        mark = "[green]ok[/green]" if check.ok else "[red]FAIL[/red]"
        table.add_row(check.step, check.name, mark, check.detail)
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--endpoint-url", help="an emulator already running (e.g. LocalStack)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    args = parser.parse_args(argv)
    checks = rehearse(args.endpoint_url)
    if args.json:
        print(json.dumps([asdict(check) for check in checks], indent=2))
    else:
        print_checks(checks)
    failed = [check for check in checks if not check.ok]
    print(f"{len(checks) - len(failed)}/{len(checks)} checks passed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
