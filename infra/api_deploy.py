"""``chalice deploy`` of a stage, with an unknown route's 404 and CORS headers on API Gateway's
own 4XX/5XX answers put in the API definition that chalice uploads
(``x-amazon-apigateway-gateway-responses``): API Gateway makes them in chalice's own
``PutRestApi``, so nothing but chalice touches the API.

``python -m infra.api_deploy --project-dir api --stage dev`` (``infra.deploy`` runs it)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from botocore.session import Session
from chalice.app import Chalice
from chalice.awsclient import TypedAWSClient
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.deploy.deployer import (
    ApplicationGraphBuilder,
    DependencyBuilder,
    Deployer,
    Executor,
    PlanStage,
    RemoteState,
    ResourceSweeper,
    ResultsRecorder,
    create_build_stage,
)
from chalice.deploy.models import RestAPI
from chalice.deploy.swagger import TemplatedSwaggerGenerator
from chalice.utils import UI, OSUtils

from clickstream.settings import parse_origins

GATEWAY_RESPONSES = "x-amazon-apigateway-gateway-responses"
# A path no route serves (or a method none of its routes takes): API Gateway answers it as
# MISSING_AUTHENTICATION_TOKEN, a 403 saying "Missing Authentication Token", which sends a user
# looking for a credential no route takes. The definition makes it the 404 it is.
NO_ROUTE_RESPONSE = "MISSING_AUTHENTICATION_TOKEN"
NO_ROUTE_BODY = '{"message": "Not Found: no route takes this method and path"}'
ORIGINS_VARIABLE = "CLICKSTREAM_CORS_ORIGINS"


def gateway_error_headers(origins: list[str]) -> dict[str, str]:
    """``responseParameters`` for API Gateway's own 4XX/5XX answers: the Cognito authorizer's
    401, throttling's 429, an unknown route's 403. They never reach the function, so they lack
    its CORS headers and a browser reports only a network error. One allowed origin is named;
    with several, the request's Origin is echoed (these answers carry no data)."""
    if not origins:
        return {}
    if "*" in origins:
        allow = "'*'"
    elif len(origins) == 1:
        allow = f"'{origins[0]}'"
    else:
        allow = "method.request.header.Origin"
    return {
        "gatewayresponse.header.Access-Control-Allow-Origin": allow,
        "gatewayresponse.header.Vary": "'Origin'",
    }


def gateway_responses(origins: list[str]) -> dict[str, Any]:
    """The API definition's gateway responses: an unknown route's 404, and with allowed
    origins, their CORS headers on each of API Gateway's own answers."""
    headers = gateway_error_headers(origins)
    with_headers = {"responseParameters": headers} if headers else {}
    no_route = {
        "statusCode": "404",
        "responseTemplates": {"application/json": NO_ROUTE_BODY},
        **with_headers,
    }
    defaults = {kind: with_headers for kind in ("DEFAULT_4XX", "DEFAULT_5XX") if headers}
    return {NO_ROUTE_RESPONSE: no_route, **defaults}


def allowed_origins(config: Config) -> list[str]:
    """The stage's allowed browser origins, read as the API reads them (none when unset)."""
    variables: dict[str, str] = config.environment_variables
    raw = variables.get(ORIGINS_VARIABLE, "")
    return list(parse_origins(raw)) if raw.strip(", ") else []


class GatewayResponsesSwagger(TemplatedSwaggerGenerator):
    """chalice's API definition, plus the gateway responses (chalice has no setting for them)."""

    def __init__(self, responses: dict[str, Any]) -> None:
        super().__init__()
        self.responses = responses

    def generate_swagger(self, app: Chalice, rest_api: RestAPI | None = None) -> dict[str, Any]:
        swagger: dict[str, Any] = super().generate_swagger(app, rest_api)
        if self.responses:
            swagger[GATEWAY_RESPONSES] = self.responses
        return swagger


def deployer(
    session: Session, config: Config, ui: UI, swagger: TemplatedSwaggerGenerator
) -> Deployer:
    """chalice's default deployer (``chalice.deploy.deployer.create_default_deployer``), built
    with this swagger generator: chalice takes it as a collaborator and offers no other hook."""
    client = TypedAWSClient(session)
    osutils = OSUtils()
    return Deployer(
        application_builder=ApplicationGraphBuilder(),
        deps_builder=DependencyBuilder(),
        build_stage=create_build_stage(osutils, UI(), swagger, config),
        plan_stage=PlanStage(
            osutils=osutils,
            remote_state=RemoteState(client, config.deployed_resources(config.chalice_stage)),
        ),
        sweeper=ResourceSweeper(),
        executor=Executor(client, ui),
        recorder=ResultsRecorder(osutils=osutils),
    )


def deploy(project_dir: Path, stage: str) -> None:
    """What ``chalice deploy --stage <stage>`` does, with the gateway responses."""
    os.environ["AWS_CHALICE_CLI_MODE"] = "true"  # as chalice's CLI sets it for app.py
    os.chdir(project_dir)
    factory = CLIFactory(str(project_dir), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    ui = UI()
    origins = allowed_origins(config)
    swagger = GatewayResponsesSwagger(gateway_responses(origins))
    deployed = deployer(factory.create_botocore_session(), config, ui, swagger).deploy(
        config, chalice_stage_name=stage
    )
    factory.create_deployment_reporter(ui=ui).display_report(deployed)
    if origins:
        print(f"API Gateway's own 4XX/5XX answers carry CORS for {', '.join(origins)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project-dir", type=Path, required=True)
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    deploy(args.project_dir.resolve(), args.stage)


if __name__ == "__main__":
    main()
