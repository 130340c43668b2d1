"""The API as the local stack runs it: ``chalice local``, in this process, after what only a
local run needs is put in place, so the deployed package carries none of it:

- chalice local's server made to behave like API Gateway (``localdev.chalice_local``);
- fault injection on the API's AWS clients when ``CLICKSTREAM_FAULTS`` asks for it
  (``localdev.faults``, through ``clickstream.aws.CLIENT_HOOKS``).

``python -m localdev.api_server --port 8000`` takes ``chalice local``'s own options.
"""

from __future__ import annotations

import sys

from localdev.chalice_local import harden_chalice_local
from localdev.faults import install_client_faults


def main(argv: list[str] | None = None) -> int:
    harden_chalice_local()
    install_client_faults()
    from chalice.cli import main as chalice_main

    sys.argv = ["chalice", "local", *(sys.argv[1:] if argv is None else argv)]
    return int(chalice_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
