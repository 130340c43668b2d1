"""SQL over the Parquet archive with DuckDB: ``python -m clickstream.sql "SELECT ..."``.

A user tool, not deployed code: duckdb is not in the Lambda package, so nothing the
functions import may import this package (tests/packaging checks the deployment zip).
"""

from clickstream.sql.samples import SampleQuery, sample_queries
from clickstream.sql.view import (
    DEFAULT_DATABASE,
    DEFAULT_TABLE,
    ArchiveLocation,
    ArchiveObjects,
    SqlError,
    archive_objects,
    connect,
    open_archive,
    query,
    s3_endpoint,
)

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_TABLE",
    "ArchiveLocation",
    "ArchiveObjects",
    "SampleQuery",
    "SqlError",
    "archive_objects",
    "connect",
    "open_archive",
    "query",
    "s3_endpoint",
    "sample_queries",
]
