"""Query results written as a rich table, CSV or JSON, a batch at a time."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, TextIO

import orjson
import pyarrow as pa
from rich.console import Console
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "csv", "json")
DEFAULT_TABLE_ROWS = 200  # a terminal's worth; csv and json write every row


def _rows(reader: pa.RecordBatchReader) -> Iterator[dict[str, Any]]:
    for batch in reader:
        yield from batch.to_pylist()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # JSON numbers are read as doubles anyway
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON")


_JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z  # the view's times are UTC


def cell_text(value: Any) -> str:
    """One value as text for CSV and the table: ISO times, JSON for nested values."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | dict):
        return orjson.dumps(value, default=_json_default, option=_JSON_OPTIONS).decode()
    return str(value)


def write_csv(reader: pa.RecordBatchReader, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(reader.schema.names)
    count = 0
    for row in _rows(reader):
        writer.writerow([cell_text(value) for value in row.values()])
        count += 1
    return count


def write_json(reader: pa.RecordBatchReader, out: TextIO) -> int:
    """A JSON array of objects, one row per line."""
    count = 0
    out.write("[")
    for row in _rows(reader):
        out.write(",\n" if count else "\n")
        out.write(orjson.dumps(row, default=_json_default, option=_JSON_OPTIONS).decode())
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def _numeric(field: pa.Field) -> bool:
    kind = field.type
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def print_table(
    reader: pa.RecordBatchReader, console: Console, max_rows: int = DEFAULT_TABLE_ROWS
) -> int:
    """The first ``max_rows`` rows as a table; the rest are counted, not drawn."""
    table = Table(show_lines=False, header_style="bold")
    for field in reader.schema:
        table.add_column(field.name, justify="right" if _numeric(field) else "left")
    count = 0
    for row in _rows(reader):
        if count < max_rows:
            table.add_row(
                *(
                    Text("NULL", style="dim") if v is None else Text(cell_text(v))
                    for v in row.values()
                )
            )
        count += 1
    shown = min(count, max_rows)
    rows = "row" if count == 1 else "rows"
    table.caption = (
        f"{count} {rows}"
        if count == shown
        else f"first {shown} of {count} rows (--format csv for all)"
    )
    console.print(table)
    return count
