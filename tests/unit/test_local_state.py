"""``make local``'s state file: what programs read instead of the console."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from localdev.state import clear_state, read_state, state_path, write_state

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(info=st.dictionaries(st.text(), JSON, max_size=5))
def test_the_state_reads_back_as_written(info: dict) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        check_round_trip(Path(scratch) / ".local", info)


def check_round_trip(state_dir: Path, info: dict) -> None:
    assert read_state(state_dir) is None
    path = write_state(state_dir, info)
    assert read_state(state_dir) == info
    # the keys are in it: only its owner may read it; no partial file is left beside it
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in state_dir.iterdir()] == [state_path(state_dir).name]
    clear_state(state_dir)
    assert read_state(state_dir) is None
