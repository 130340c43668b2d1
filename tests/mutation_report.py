"""The table of ``make mutants``: mutmut's result for every mutant of the chosen modules,
counted per module (killed, survived, timeout, other), printed and written into
tests/mutation.md between its markers. ``python -m tests.mutation_report MODULE ...``"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "tests" / "mutation.md"
LINE = re.compile(r"^\s*(?P<name>\S+)__mutmut_\d+: (?P<status>.+)$")


def replace_section(marker: str, body: str, path: Path = REPORT) -> None:
    """Put ``body`` between ``<!-- marker -->`` and ``<!-- /marker -->`` in the report."""
    text = path.read_text() if path.exists() else ""
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def module_of(name: str) -> str:
    """``clickstream.store.xǁDynamoAggregateStoreǁ_put`` -> ``clickstream.store``."""
    return name.rsplit(".", 1)[0]


def results() -> dict[str, Counter[str]]:
    output = subprocess.run(
        [str(Path(sys.executable).with_name("mutmut")), "results", "--all", "true"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for line in output.splitlines():
        if match := LINE.match(line):
            by_module[module_of(match["name"])][match["status"].strip()] += 1
    return by_module


def table(modules: list[str], by_module: dict[str, Counter[str]]) -> str:
    lines = [
        "| module | mutants | killed | survived | timeout | not run / other | score |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for module in modules:
        counts = by_module.get(module, Counter())
        total = sum(counts.values())
        killed, survived, timeout = counts["killed"], counts["survived"], counts["timeout"]
        other = total - killed - survived - timeout
        tested = killed + survived + timeout
        score = f"{100 * (killed + timeout) / tested:.1f} %" if tested else "not run"
        lines.append(
            f"| `{module}` | {total} | {killed} | {survived} | {timeout} | {other} | {score} |"
        )
    return "\n".join(lines)


def main(modules: list[str]) -> int:
    by_module = results()
    text = table(modules or sorted(by_module), by_module)
    print(text)
    replace_section("mutmut", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
