"""The API as the local stack runs it: ``chalice local``, in this process, after what only a
local run needs is put in place, so the deployed package carries none of it:

- chalice local's server made to behave like API Gateway (``localdev.chalice_local``);
- fault injection on the API's AWS clients when ``CLICKSTREAM_FAULTS`` asks for it
  (``localdev.faults``, through ``clickstream.aws.CLIENT_HOOKS``);
- ``GET /metrics``: the EMF metrics this process prints, in Prometheus' text format
  (``localdev.prometheus``).

``python -m localdev.api_server --port 8000`` takes ``chalice local``'s own options.
"""

from __future__ import annotations

import sys
from typing import TextIO, cast

from localdev.chalice_local import harden_chalice_local, serve_prometheus_metrics
from localdev.faults import install_client_faults
from localdev.prometheus import EmfTee, PrometheusMetrics


def main(argv: list[str] | None = None) -> int:
    harden_chalice_local()
    install_client_faults()
    prometheus = PrometheusMetrics()
    # Powertools prints EMF to stdout; the lines still go there (the stack forwards them to
    # CloudWatch) and are counted here on the way.
    sys.stdout = cast(TextIO, EmfTee(sys.stdout, prometheus.record_line))
    serve_prometheus_metrics(prometheus.registry)
    from chalice.cli import main as chalice_main

    sys.argv = ["chalice", "local", *(sys.argv[1:] if argv is None else argv)]
    return int(chalice_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
