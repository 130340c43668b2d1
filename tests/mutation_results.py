"""mutmut's results kept in the repository (tests/mutation-results.json), so a run goes on from
where the last one stopped on another machine: ``mutants/`` is not committed, and the store's
and the aggregation's mutants take hours of two cores.

``save`` reads each guarantee module's ``mutants/<path>.meta`` (mutmut's own record of every
mutant's exit code, with a hash of each function's source) and keeps the decided results.
``restore``, before ``mutmut run``, puts them back into a ``.meta`` that has none yet, for
functions whose hash is unchanged; mutmut then runs again every mutant of a function changed
since, as it does with its own results. Results saved under another ``[tool.mutmut]`` (another
test selection or arguments) are not restored: mutmut itself starts over when those change.

``python -m tests.mutation_results save|restore``"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "tests" / "mutation-results.json"
MUTANT = re.compile(r"^(?P<function>.+)__mutmut_(?P<number>\d+)$")


def mutmut_config(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, Any]:
    return dict(tomllib.loads(pyproject.read_text())["tool"]["mutmut"])


def config_digest(config: dict[str, Any]) -> str:
    """The settings a result depends on (what is mutated, which tests run, how)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def meta_path(mutants: Path, source: str) -> Path:
    return mutants / f"{source}.meta"


def results_of(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A ``.meta``'s decided results, by function: its hash and ``{number: exit code}``."""
    hashes: dict[str, str] = meta.get("hash_by_function_name", {})
    by_function: dict[str, dict[str, Any]] = {}
    for key, code in meta["exit_code_by_key"].items():
        match = MUTANT.match(key)
        if code is None or match is None:
            continue
        short = match["function"].rsplit(".", 1)[1]
        if short not in hashes:
            continue
        entry = by_function.setdefault(match["function"], {"hash": hashes[short], "exit_codes": {}})
        entry["exit_codes"][match["number"]] = code
    for entry in by_function.values():
        entry["exit_codes"] = dict(sorted(entry["exit_codes"].items(), key=lambda kv: int(kv[0])))
    return dict(sorted(by_function.items()))


def restored(meta: dict[str, Any], saved: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], int]:
    """``meta`` with the saved results of its unchanged functions filled in where it has none."""
    hashes: dict[str, str] = meta.get("hash_by_function_name", {})
    codes = dict(meta["exit_code_by_key"])
    count = 0
    for key, code in codes.items():
        match = MUTANT.match(key)
        if code is not None or match is None:
            continue
        entry = saved.get(match["function"])
        short = match["function"].rsplit(".", 1)[1]
        if entry is None or hashes.get(short) != entry["hash"]:
            continue
        if (saved_code := entry["exit_codes"].get(match["number"])) is not None:
            codes[key] = saved_code
            count += 1
    return {**meta, "exit_code_by_key": codes}, count


def save(mutants: Path = ROOT / "mutants", results: Path = RESULTS) -> int:
    config = mutmut_config()
    kept: dict[str, Any] = {"config": config_digest(config), "modules": {}}
    for source in config["only_mutate"]:
        path = meta_path(mutants, source)
        if path.exists():
            kept["modules"][source] = results_of(json.loads(path.read_text()))
    results.write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n")
    total = sum(len(e["exit_codes"]) for m in kept["modules"].values() for e in m.values())
    print(f"{total} mutants' results saved to {results.name}")
    return 0


def restore(mutants: Path = ROOT / "mutants", results: Path = RESULTS) -> int:
    """Fill the results into each existing ``.meta``; one not generated yet is written with
    the saved hashes, and mutmut keeps its results for the functions it finds unchanged."""
    if not results.exists():
        return 0
    kept = json.loads(results.read_text())
    config = mutmut_config()
    if kept["config"] != config_digest(config):
        print("saved mutation results are for another [tool.mutmut]; not restored")
        return 0
    total = 0
    for source, saved in kept["modules"].items():
        path = meta_path(mutants, source)
        if path.exists():
            meta = json.loads(path.read_text())
        else:
            meta = {
                "exit_code_by_key": {
                    f"{function}__mutmut_{number}": None
                    for function, entry in saved.items()
                    for number in entry["exit_codes"]
                },
                "hash_by_function_name": {
                    function.rsplit(".", 1)[1]: entry["hash"] for function, entry in saved.items()
                },
                "type_check_error_by_key": {},
                "durations_by_key": {},
                "estimated_durations_by_key": {},
            }
            path.parent.mkdir(parents=True, exist_ok=True)
        meta, count = restored(meta, saved)
        path.write_text(json.dumps(meta, indent=4))
        total += count
    print(f"{total} mutants' results restored from {results.name}")
    return 0


if __name__ == "__main__":
    commands = {"save": save, "restore": restore}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        raise SystemExit("usage: python -m tests.mutation_results save|restore")
    raise SystemExit(commands[sys.argv[1]]())
