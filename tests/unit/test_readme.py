"""The README's cost and benchmark tables are what ``python -m infra.readme`` makes of the
recorded figures (infra/cost-figures.json, bench/results.md), never copied by hand."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra import readme


def test_the_readme_is_generated_from_the_recorded_figures() -> None:
    current = readme.README.read_text(encoding="utf-8")
    cost = json.loads(readme.COST_FIGURES.read_text(encoding="utf-8"))
    bench = readme.BENCH_RESULTS.read_text(encoding="utf-8")
    assert readme.render(current, cost, bench) == current, "run python -m infra.readme"


@given(value=st.integers(min_value=0, max_value=10**9))
def test_any_changed_figure_reaches_the_readme(value: int) -> None:
    # GIVEN a benchmark result and a cost figure that differ from what the README shows
    current = readme.README.read_text(encoding="utf-8")
    cost = json.loads(readme.COST_FIGURES.read_text(encoding="utf-8"))
    label = next(iter(cost["runs"]))
    cost["runs"][label]["total"] = value + 0.25
    bench = readme.BENCH_RESULTS.read_text(encoding="utf-8")
    first_value = re.compile(r"^(\| 1 \| [^|]+\| )[^|]+( \|)", re.MULTILINE)
    bench = first_value.sub(rf"\g<1>{value:,} zz/s\2", bench, count=1)
    # WHEN the README is rendered from them
    rendered = readme.render(current, cost, bench)
    # THEN both appear, and the README on disk is stale
    assert f"**{value + 0.25:.2f}**" in rendered
    assert f"| {value:,} zz/s |" in rendered
    assert rendered != current


def test_a_readme_without_its_markers_is_refused() -> None:
    cost = json.loads(readme.COST_FIGURES.read_text(encoding="utf-8"))
    bench = readme.BENCH_RESULTS.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="no generated block"):
        readme.render("# a README without figures\n", cost, bench)
