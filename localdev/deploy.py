"""``make deploy`` / ``make destroy`` onto an emulator (``--endpoint-url`` or
``AWS_ENDPOINT_URL``): ``infra.deploy``'s steps, with the stack provisioned by
``localdev.provision`` (its fallbacks make what the emulator's CloudFormation lacks)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

import boto3

from infra.deploy import STACK_TIMEOUT_S, Target, argument_parser, run
from localdev.provision import provision_stack, stack_outputs, teardown_stack


@dataclass
class EmulatorStacks:
    endpoint_url: str
    region: str
    stack_name: str

    def deploy(self, parameters: dict[str, str]) -> dict[str, str]:
        result = provision_stack(
            self.endpoint_url, self.region, parameters, self.stack_name, timeout=STACK_TIMEOUT_S
        )
        if result.fallback_resources:
            made = ", ".join(result.fallback_resources)
            print(f"    made directly (the emulator's CloudFormation lacks them): {made}")
        return result.outputs

    def outputs(self) -> dict[str, str]:
        return stack_outputs(self.endpoint_url, self.region, self.stack_name)

    def owned_buckets(self) -> list[str]:
        try:
            outputs = self.outputs()
        except RuntimeError:  # no stack: nothing to empty
            return []
        return [outputs[o] for o in ("ArchiveBucketName", "DashboardBucketName") if o in outputs]

    def delete(self) -> None:
        leftovers = teardown_stack(
            self.endpoint_url, self.region, self.stack_name, timeout=STACK_TIMEOUT_S
        )
        if leftovers:
            print(f"    removed directly (made outside CloudFormation): {', '.join(leftovers)}")


def emulator_target(args: argparse.Namespace) -> Target:
    session = boto3.session.Session(region_name=args.region)
    region = str(session.region_name)
    stacks = EmulatorStacks(args.endpoint_url, region, args.stack)
    return Target(session, stacks, endpoint_url=args.endpoint_url)


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser()
    parser.description = __doc__
    parser.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL") or None,
        help="the emulator (default: $AWS_ENDPOINT_URL)",
    )
    args = parser.parse_args(argv)
    if not args.endpoint_url:
        parser.error("no emulator endpoint: give --endpoint-url (AWS itself: infra.deploy)")
    run(parser, args, emulator_target)


if __name__ == "__main__":
    main()
