"""The ``--merge-template`` overlay that ``make package`` gives ``chalice package``: the
template's event source mappings (the two Kinesis consumers and the jobs queue), for
chalice's SAM template (docs/deploy.md).

    python -m infra.package_overlay out/chalice-overlay.json
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from infra.template import load_template

# template.yaml's mapping -> the function's logical id in chalice's SAM template
MAPPINGS = {
    "AggregatorEventSourceMapping": "Aggregator",
    "ArchiverEventSourceMapping": "Archiver",
    "JobsEventSourceMapping": "Jobs",
}
# the data stack's output each mapping reads from
SOURCES = {
    "AggregatorEventSourceMapping": "StreamArn",
    "ArchiverEventSourceMapping": "StreamArn",
    "JobsEventSourceMapping": "JobsQueueArn",
}


def package_overlay(template: dict[str, Any] | None = None) -> dict[str, Any]:
    resources = (template or load_template())["Resources"]
    overlay: dict[str, Any] = {
        "Parameters": {
            "StreamArn": {
                "Type": "String",
                "Description": "The data stack's StreamArn output (infra/template.yaml).",
            },
            "DeadLetterQueueArn": {
                "Type": "String",
                "Description": "The data stack's DeadLetterQueueArn output.",
            },
            "JobsQueueArn": {
                "Type": "String",
                "Description": "The data stack's JobsQueueArn output (the jobs function's queue).",
            },
        },
        "Resources": {},
    }
    for logical, function in MAPPINGS.items():
        properties = copy.deepcopy(resources[logical]["Properties"])
        properties["EventSourceArn"] = {"Ref": SOURCES[logical]}
        properties["FunctionName"] = {"Ref": function}
        if "DestinationConfig" in properties:  # the stream's mappings (SQS has a redrive)
            properties["DestinationConfig"] = {
                "OnFailure": {"Destination": {"Ref": "DeadLetterQueueArn"}}
            }
        overlay["Resources"][logical] = {
            "Type": resources[logical]["Type"],
            "Properties": properties,
        }
    return overlay


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m infra.package_overlay <overlay.json>", file=sys.stderr)
        return 2
    path = Path(arguments[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(package_overlay(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
