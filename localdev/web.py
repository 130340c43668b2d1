"""The local stack's static web server: the dashboard in ``web/``, the tracker, the demo shop
and GraphiQL."""

from __future__ import annotations

import logging
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("localdev")

# GraphiQL at /graphiql/: its page, and the pinned UMD builds it loads (`make graphiql`).
GRAPHIQL_MODULES = ROOT / "tools" / "graphiql" / "node_modules"
GRAPHIQL_FILES = {
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "graphiql.min.css": "graphiql/graphiql.min.css",
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
}


class QuietStaticHandler(SimpleHTTPRequestHandler):
    # Served as /config.js when set: the deploy-time file's shape, for a stack whose reads
    # are on Cognito (the page then signs readers in to the emulator's user pool).
    config_js: bytes | None = None

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("web: " + format, *args)

    # The tracker at /cs.js, and the demo shop (a single-page app: every /demo/ path is its
    # page) with this stack's API and write key in its snippet.
    demo_values: dict[str, str] | None = None

    def _generated(self) -> tuple[bytes, str] | None:
        path = self.path.split("?", 1)[0]
        if self.config_js is not None and path == "/config.js":
            return self.config_js, "text/javascript; charset=utf-8"
        if path == "/cs.js":
            return (ROOT / "tracker" / "cs.js").read_bytes(), "text/javascript; charset=utf-8"
        if self.demo_values is not None and path in ("/graphiql", "/graphiql/"):
            return self._filled(ROOT / "tools" / "graphiql" / "index.html", self.demo_values)
        if path.startswith("/graphiql/") and path[len("/graphiql/") :] in GRAPHIQL_FILES:
            file = GRAPHIQL_MODULES / GRAPHIQL_FILES[path[len("/graphiql/") :]]
            kind = "text/css" if file.suffix == ".css" else "text/javascript"
            return file.read_bytes(), f"{kind}; charset=utf-8"
        if self.demo_values is not None and (path == "/demo" or path.startswith("/demo/")):
            return self._filled(ROOT / "tracker" / "demo" / "index.html", self.demo_values)
        return None

    @staticmethod
    def _filled(page: Path, values: dict[str, str]) -> tuple[bytes, str]:
        """A page with this stack's ``{{NAME}}`` values put in."""
        text = page.read_text()
        for name, value in values.items():
            text = text.replace("{{" + name + "}}", value)
        return text.encode(), "text/html; charset=utf-8"

    def _send_generated(self, body: bool) -> bool:
        generated = self._generated()
        if generated is None:
            return False
        content, content_type = generated
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if body:
            self.wfile.write(content)
        return True

    def do_GET(self) -> None:
        if not self._send_generated(body=True):
            super().do_GET()

    def do_HEAD(self) -> None:
        if not self._send_generated(body=False):
            super().do_HEAD()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()
