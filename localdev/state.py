"""The running local stack's state in a file (``.local/state.json``): URLs, keys, pids,
resources and environment for programs to read; the console shows people a summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def write_state(state_dir: Path, info: dict[str, Any]) -> Path:
    """Written whole or not at all (a reader polling for it never sees half); readable by its
    owner only, since it holds the stack's keys."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(state_dir)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    partial.chmod(0o600)
    partial.replace(path)
    return path


def read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(state_path(state_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return state


def clear_state(state_dir: Path) -> None:
    state_path(state_dir).unlink(missing_ok=True)
