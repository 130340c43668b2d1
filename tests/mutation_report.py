"""The table of ``make mutants``: mutmut's result for every mutant of the chosen modules,
counted per module (killed, survived, timeout, other), printed and written into
tests/mutation.md between its markers. ``python -m tests.mutation_report MODULE ...``;
``--to-run MODULE ...`` lists what ``make mutants`` gives ``mutmut run``."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "tests" / "mutation.md"
LINE = re.compile(r"^\s*(?P<mutant>(?P<name>\S+)__mutmut_\d+): (?P<status>.+)$")
NOT_RUN = "not checked"


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


def statuses() -> dict[str, tuple[str, str]]:
    """Every mutant mutmut has generated: its module and its status."""
    output = subprocess.run(
        [str(Path(sys.executable).with_name("mutmut")), "results", "--all", "true"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {
        match["mutant"]: (module_of(match["name"]), match["status"].strip())
        for line in output.splitlines()
        if (match := LINE.match(line))
    }


def results() -> dict[str, Counter[str]]:
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for module, status in statuses().values():
        by_module[module][status] += 1
    return by_module


def to_run(modules: list[str]) -> list[str]:
    """What ``mutmut run`` is to be given: a module never generated as a whole
    (``module.*``), and of the others only their mutants not run yet. Named mutants are run
    again whatever their result, so naming a module would rerun every one of its mutants."""
    if not (ROOT / "mutants").is_dir():
        return [f"{module}.*" for module in modules]
    known = statuses()
    generated = {module for module, _ in known.values()}
    return [f"{module}.*" for module in modules if module not in generated] + [
        mutant for mutant, (module, status) in known.items()
        if module in modules and status == NOT_RUN
    ]  # fmt: skip


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
    if modules[:1] == ["--to-run"]:
        print("\n".join(to_run(modules[1:])))
        return 0
    by_module = results()
    text = table(modules or sorted(by_module), by_module)
    print(text)
    replace_section("mutmut", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
