"""``make local``: start the local stack, print its summary, run until Ctrl-C."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from localdev.stack import LoopbackStack, StackConfig, log
from localdev.state import clear_state, write_state


def print_banner(info: dict[str, Any], state: Path) -> None:
    keys = info.get("keys") or {}
    lines = [
        "",
        "clickstream local stack is up",
        f"  API        {info['api_url']}",
        f"  dashboard  {info['dashboard_url']}",
        f"  demo shop  {info['demo_url']}   (instrumented with the tracker, /cs.js)",
        f"  graphiql   {info['graphiql_url']}   (POST {info['api_url']}/graphql)",
        f"  emulator   {info['endpoint_url']} ({info['emulator']})",
        f"  consumers  {info['consumers']}"
        + (
            "   (the KCL's MultiLangDaemon, one per consumer)" if info["consumers"] == "kcl" else ""
        ),
        f"  metrics    {info['metrics_urls']['api']}   (Prometheus: the API)",
        f"             {info['metrics_urls']['consumers']}   (the consumers, the DLQ)",
        f"  logs       {info['logs']}/",
        f"  state      {state}   (JSON: URLs, keys, pids, resources, environment)",
        f"  write key  {keys.get('write', '')}   (X-Write-Key, or ?key= for beacons)",
        f"  read key   {keys.get('read', '')}   (X-Api-Key)",
        f"  admin key  {keys.get('admin', '')}   (X-Api-Key; DELETE /users/{{user_id}})",
        "",
        f"  try: curl -s -X POST {info['api_url']}/track -H 'Content-Type: application/json' \\",
        f"         -H 'X-Write-Key: {keys.get('write', '')}' \\",
        '         -d \'{"event_type":"page_view","user_id":"u1","page_url":"/home"}\'',
        f"       curl -s -H 'X-Api-Key: {keys.get('read', '')}' {info['api_url']}/stats",
        f"       curl -s -X POST {info['api_url']}/graphql -H 'Content-Type: application/json' \\",
        f"         -H 'X-Api-Key: {keys.get('read', '')}' \\",
        '         -d \'{ "query": "{ pageViews(pageURL: \\"/home\\") }" }\'',
        "",
        "Ctrl-C stops everything.",
    ]
    resources = info.get("resources") or {}
    if resources.get("ReadAuth") == "cognito":  # reads need a user of the emulator's pool
        pool_id = str(resources.get("UserPoolArn", "")).rsplit("/", 1)[-1]
        lines[-2:-2] = [
            f"  reads: Cognito user pool {pool_id} (the read key above is not accepted)",
            f"  a reader: aws --endpoint-url {info['endpoint_url']} \\",
            "         cognito-idp admin-create-user \\",
            f"         --user-pool-id {pool_id} --username you@example.com \\",
            "         --temporary-password 'Temporary-Passw0rd'   (then sign in on the dashboard)",
            "",
        ]
    print("\n".join(lines), flush=True)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = StackConfig.from_env()
    stack = LoopbackStack(config)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    clear_state(config.state_dir)  # a file left by a stack that died is not this one's
    try:
        info = stack.start()
        print_banner(info, write_state(config.state_dir, info))
        while not stopped.wait(0.5):
            if not stack.supervise():
                stopped.set()
    except Exception as exc:
        log.error("local stack failed: %s", exc)
        clear_state(config.state_dir)
        stack.stop()
        sys.exit(1)
    clear_state(config.state_dir)
    stack.stop()
    log.info("local stack stopped")


if __name__ == "__main__":
    main()
