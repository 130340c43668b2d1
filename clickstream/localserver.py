"""``chalice local`` only (the local stack's API server; never imported on Lambda): its access
log and the HTTP methods its server does not know, made to behave like API Gateway."""

from __future__ import annotations

import sys
from typing import Any


def harden_chalice_local() -> None:
    """1. The access log names no client: chalice local logs each request as
    ``<client ip> - - [date] "<request line>"``, a raw IP address and a query string that may
    carry a beacon's write key; it now logs the method, the path without its query, and the
    status. 2. Methods no route serves (``TRACE``, ``CONNECT``, ``QUERY``, ...) get a 405, as
    API Gateway answers them with a 4xx, instead of the 501 of Python's HTTP server."""
    try:
        from chalice.local import ChaliceRequestHandler
    except ImportError:  # pragma: no cover - chalice is always there locally
        return

    def log_message(self: Any, format: str, *args: Any) -> None:
        request_line = str(getattr(self, "requestline", ""))
        method, _, rest = request_line.partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        status = args[1] if len(args) > 1 and format.startswith('"%s"') else "-"
        sys.stderr.write(f"- - [{self.log_date_time_string()}] {method} {path} {status}\n")

    def method_not_allowed(self: Any) -> None:
        self.send_error(405, "Method Not Allowed")

    def unknown_attribute(self: Any, name: str) -> Any:
        if name.startswith("do_"):  # BaseHTTPRequestHandler looks up do_<METHOD>
            return lambda: method_not_allowed(self)
        raise AttributeError(name)

    ChaliceRequestHandler.log_message = log_message
    ChaliceRequestHandler.__getattr__ = unknown_attribute
