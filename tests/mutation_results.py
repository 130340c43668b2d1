"""mutmut's results kept in the repository (tests/mutation-results.json), so a run goes on from
where the last one stopped on another machine: ``mutants/`` is not committed, and the store's
and the aggregation's mutants take hours of two cores.

``save`` reads each guarantee module's ``mutants/<path>.meta`` (mutmut's own record of every
mutant's exit code, with a hash of each function's source) and keeps the verdicts, killed or
survived (not a timeout, a crash or an interruption, which depend on the machine and the
moment: another machine runs those again), merged into those saved before for functions
unchanged.
``restore``, before ``mutmut run``, puts them back where mutmut has none, for functions whose
hash is unchanged; mutmut then runs every mutant of a function changed since, as it does with
its own results. Results saved under another ``[tool.mutmut]`` or another mutmut or libcst
(which number the mutants) are not restored. As with mutmut's own results, a changed test
does not make them run again.

``python -m tests.mutation_results save|restore``"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "tests" / "mutation-results.json"
MUTANT = re.compile(r"^(?P<function>.+)__mutmut_(?P<number>\d+)$")
VERDICTS = {0, 1, 3}  # mutmut's survived and killed (3: pytest's internal error, a kill)


def mutmut_config(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, Any]:
    return dict(tomllib.loads(pyproject.read_text())["tool"]["mutmut"])


def config_digest(config: dict[str, Any]) -> str:
    """What a result depends on: what is mutated, which tests run and how, and the tools
    that make and number the mutants."""
    tools = {name: version(name) for name in ("mutmut", "libcst")}
    return hashlib.sha256(json.dumps([config, tools], sort_keys=True).encode()).hexdigest()[:16]


def meta_path(mutants: Path, source: str) -> Path:
    return mutants / f"{source}.meta"


def mutant_of(key: str, hashes: dict[str, str]) -> tuple[str, str | None, str] | None:
    """A mutant's key as its function's full name, that function's hash in the ``.meta``
    (``hashes`` are by short name), and the mutant's number; None for another key."""
    match = MUTANT.match(key)
    if match is None:
        return None
    function = match["function"]
    return function, hashes.get(function.rsplit(".", 1)[1]), match["number"]


def results_of(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A ``.meta``'s decided results, by function: its hash and ``{number: exit code}``."""
    hashes: dict[str, str] = meta.get("hash_by_function_name", {})
    by_function: dict[str, dict[str, Any]] = {}
    for key, code in meta["exit_code_by_key"].items():
        mutant = mutant_of(key, hashes)
        if code not in VERDICTS or mutant is None or mutant[1] is None:
            continue
        function, digest, number = mutant
        entry = by_function.setdefault(function, {"hash": digest, "exit_codes": {}})
        entry["exit_codes"][number] = code
    return by_function


def merged(
    saved: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]], hashes: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """``current``'s results, with those saved before for each function still of that hash
    (``hashes``: every function of the module now, by its full name)."""
    result = {f: entry for f, entry in saved.items() if hashes.get(f) == entry["hash"]}
    for function, entry in current.items():
        earlier = result.get(function, {}).get("exit_codes", {})
        result[function] = {**entry, "exit_codes": {**earlier, **entry["exit_codes"]}}
    return result


def restored(meta: dict[str, Any], saved: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], int]:
    """``meta`` with the saved results of its unchanged functions filled in where it has none."""
    hashes: dict[str, str] = meta.get("hash_by_function_name", {})
    codes = dict(meta["exit_code_by_key"])
    count = 0
    for key, code in codes.items():
        mutant = mutant_of(key, hashes)
        if code is not None or mutant is None:
            continue
        function, digest, number = mutant
        entry = saved.get(function)
        if entry is None or digest != entry["hash"]:
            continue
        if (saved_code := entry["exit_codes"].get(number)) is not None:
            codes[key] = saved_code
            count += 1
    return {**meta, "exit_code_by_key": codes}, count


def save(mutants: Path = ROOT / "mutants", results: Path = RESULTS) -> int:
    config = mutmut_config()
    digest = config_digest(config)
    before = json.loads(results.read_text()) if results.exists() else {}
    earlier = before.get("modules", {}) if before.get("config") == digest else {}
    kept: dict[str, Any] = {"config": digest, "modules": {}}
    for source in config["only_mutate"]:
        path = meta_path(mutants, source)
        if not path.exists():  # (not generated on this machine yet)
            kept["modules"][source] = earlier.get(source, {})
            continue
        meta = json.loads(path.read_text())
        module = source.removesuffix(".py").replace("/", ".")
        hashes = {f"{module}.{name}": h for name, h in meta["hash_by_function_name"].items()}
        kept["modules"][source] = merged(earlier.get(source, {}), results_of(meta), hashes)
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
            # mutmut trusts a meta beside a mutated file newer than its source: make it
            # mutate the source again, and compare each function's hash with this meta's.
            meta_path(mutants, source).with_suffix("").unlink(missing_ok=True)
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
