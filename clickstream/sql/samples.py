"""The sample queries shipped in ``queries/``: standard SQL that runs unchanged on Athena
(Trino) and on DuckDB over the same archive, against the table named ``events``."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files


@dataclass(frozen=True)
class SampleQuery:
    name: str
    description: str  # the file's leading comment
    sql: str


def sample_queries() -> dict[str, SampleQuery]:
    """Every sample, by file name without ``.sql``."""
    samples = {}
    for entry in sorted(files(__package__).joinpath("queries").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        sql = entry.read_text(encoding="utf-8")
        comment = []
        for line in sql.splitlines():
            if not line.startswith("--"):
                break
            comment.append(line.removeprefix("--").strip())
        name = entry.name.removesuffix(".sql")
        samples[name] = SampleQuery(name, " ".join(comment), sql)
    return samples
