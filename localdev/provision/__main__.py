"""``python -m localdev.provision``: provision the template on an emulator; print the outputs."""

from __future__ import annotations

import argparse
import json
import logging

from localdev.provision import provision


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url", default="http://127.0.0.1:4567")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--stack-name", default="clickstream-local")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    params = dict(p.split("=", 1) for p in args.parameter)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(json.dumps(provision(args.endpoint_url, args.region, params, args.stack_name), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
