"""A customer's site for the browser tests: its own origin on loopback (a page served by a
Playwright route counts as a public address, and Chromium's local-network checks would then
refuse its requests to the loopback API)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from localdev.processes import LOOPBACK

# (path, query, the site's own URL) -> (body, content type), or None for a 404.
Render = Callable[[str, dict[str, str], str], tuple[bytes, str] | None]


@contextmanager
def customer_site(render: Render) -> Iterator[str]:
    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            answer = render(path, dict(parse_qsl(query)), base)
            if answer is None:
                self.send_error(404)
                return
            body, content_type = answer
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Pages)
    base = f"http://{LOOPBACK}:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
