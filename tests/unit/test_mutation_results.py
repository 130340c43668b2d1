"""mutmut's results kept in the repository come back only for functions unchanged since."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import mutation_results

SOURCE = "clickstream/store.py"


def _meta(codes: dict[str, int | None], hashes: dict[str, str]) -> dict[str, Any]:
    return {
        "exit_code_by_key": codes,
        "hash_by_function_name": hashes,
        "type_check_error_by_key": {},
        "durations_by_key": {},
        "estimated_durations_by_key": {},
    }


@pytest.fixture
def mutants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(mutation_results, "mutmut_config", lambda: {"only_mutate": [SOURCE]})
    (tmp_path / "mutants" / "clickstream").mkdir(parents=True)
    return tmp_path / "mutants"


def test_results_come_back_for_unchanged_functions_and_only_where_none_is_known(
    mutants: Path, tmp_path: Path
) -> None:
    run = _meta(
        {
            "clickstream.store.x_top__mutmut_1": 1,
            "clickstream.store.x_top__mutmut_2": 0,
            "clickstream.store.x_top__mutmut_10": None,
            "clickstream.store.xǁDynamoAggregateStoreǁ_put__mutmut_1": 0,
            "clickstream.store.xǁDynamoAggregateStoreǁ_put__mutmut_2": 36,  # a timeout
            "clickstream.store.x_apply__mutmut_1": 1,
        },
        {"x_top": "h-top", "xǁDynamoAggregateStoreǁ_put": "h-put", "x_apply": "h-apply"},
    )
    (mutants / f"{SOURCE}.meta").write_text(json.dumps(run))
    results = tmp_path / "results.json"
    mutation_results.save(mutants, results)

    # a new machine: mutmut has generated the mutants again; `apply` has changed since
    fresh = _meta(
        dict.fromkeys(run["exit_code_by_key"]) | {"clickstream.store.x_top__mutmut_2": -9},
        {"x_top": "h-top", "xǁDynamoAggregateStoreǁ_put": "h-put", "x_apply": "changed"},
    )
    (mutants / f"{SOURCE}.meta").write_text(json.dumps(fresh))
    mutation_results.restore(mutants, results)
    codes = json.loads((mutants / f"{SOURCE}.meta").read_text())["exit_code_by_key"]
    assert codes == {
        "clickstream.store.x_top__mutmut_1": 1,
        "clickstream.store.x_top__mutmut_2": -9,  # the new run's own result stands
        "clickstream.store.x_top__mutmut_10": None,  # never decided
        "clickstream.store.xǁDynamoAggregateStoreǁ_put__mutmut_1": 0,
        "clickstream.store.xǁDynamoAggregateStoreǁ_put__mutmut_2": None,  # (this machine's own)
        "clickstream.store.x_apply__mutmut_1": None,  # its function changed: run again
    }


def _saved_then_gone(mutants: Path, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """One result saved, then the machine's ``mutants/`` lost."""
    run = _meta({"clickstream.store.x_top__mutmut_3": 1}, {"x_top": "h-top"})
    (mutants / f"{SOURCE}.meta").write_text(json.dumps(run))
    results = tmp_path / "results.json"
    mutation_results.save(mutants, results)
    (mutants / f"{SOURCE}.meta").unlink()
    return run, results


def test_a_machine_without_mutants_gets_a_meta_mutmut_merges_into_its_own(
    mutants: Path, tmp_path: Path
) -> None:
    run, results = _saved_then_gone(mutants, tmp_path)
    mutation_results.restore(mutants, results)
    assert json.loads((mutants / f"{SOURCE}.meta").read_text()) == run


def test_results_of_another_test_selection_are_not_restored(
    mutants: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, results = _saved_then_gone(mutants, tmp_path)
    monkeypatch.setattr(
        mutation_results, "mutmut_config", lambda: {"only_mutate": [SOURCE], "other": True}
    )
    mutation_results.restore(mutants, results)
    assert not (mutants / f"{SOURCE}.meta").exists()


def test_a_save_keeps_what_was_saved_before_for_functions_this_machine_has_not_run(
    mutants: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results.json"
    first = _meta(
        {"clickstream.store.x_top__mutmut_1": 1, "clickstream.store.x_apply__mutmut_1": 0},
        {"x_top": "h-top", "x_apply": "h-apply"},
    )
    (mutants / f"{SOURCE}.meta").write_text(json.dumps(first))
    mutation_results.save(mutants, results)
    # another machine: `top` not run yet, `apply` changed and run, `fold` new
    second = _meta(
        {
            "clickstream.store.x_top__mutmut_1": None,
            "clickstream.store.x_apply__mutmut_1": 1,
            "clickstream.store.x_fold__mutmut_1": 0,
        },
        {"x_top": "h-top", "x_apply": "changed", "x_fold": "h-fold"},
    )
    (mutants / f"{SOURCE}.meta").write_text(json.dumps(second))
    mutation_results.save(mutants, results)
    kept = json.loads(results.read_text())["modules"][SOURCE]
    assert {f: (e["hash"], e["exit_codes"]) for f, e in kept.items()} == {
        "clickstream.store.x_top": ("h-top", {"1": 1}),
        "clickstream.store.x_apply": ("changed", {"1": 1}),
        "clickstream.store.x_fold": ("h-fold", {"1": 0}),
    }


def test_a_mutated_file_left_without_its_meta_is_made_again_by_mutmut(
    mutants: Path, tmp_path: Path
) -> None:
    """mutmut would trust a meta beside a mutated file newer than its source; the saved
    hashes may be older than that file."""
    _, results = _saved_then_gone(mutants, tmp_path)
    (mutants / SOURCE).write_text("# mutated since\n")
    mutation_results.restore(mutants, results)
    assert not (mutants / SOURCE).exists() and (mutants / f"{SOURCE}.meta").exists()
