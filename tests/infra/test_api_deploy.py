"""``infra.api_deploy``: the API definition chalice uploads carries API Gateway's own 4XX/5XX
answers with CORS headers, so that no call but chalice's own ``PutRestApi`` makes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.session
import pytest
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.deploy.deployer import create_default_deployer
from chalice.deploy.swagger import TemplatedSwaggerGenerator
from chalice.utils import UI

from infra.api_deploy import (
    GATEWAY_RESPONSES,
    GatewayResponsesSwagger,
    allowed_origins,
    deployer,
    gateway_error_headers,
    gateway_responses,
)

ROOT = Path(__file__).resolve().parents[2]
SITE = "http://acme-site.s3-website.eu-west-1.amazonaws.com"
ALLOW = "gatewayresponse.header.Access-Control-Allow-Origin"


def test_api_gateways_own_errors_name_the_allowed_origin() -> None:
    assert gateway_error_headers([SITE]) == {
        ALLOW: f"'{SITE}'",
        "gatewayresponse.header.Vary": "'Origin'",
    }
    several = gateway_error_headers([SITE, "https://app.acme.example"])
    assert several[ALLOW] == "method.request.header.Origin"  # echoed: the answers carry no data
    assert gateway_error_headers(["*"])[ALLOW] == "'*'"
    assert gateway_error_headers([]) == {}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The product's chalice app, as chalice deploy loads it (a Chalice() extends
    AWS_EXECUTION_ENV: set here so that monkeypatch undoes it)."""
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda")
    return CLIFactory(str(ROOT / "api")).load_chalice_app()


def test_the_uploaded_definition_is_chalices_plus_the_gateway_responses(app: Any) -> None:
    chalices = TemplatedSwaggerGenerator().generate_swagger(app)
    # WHEN the definition is generated with one allowed origin
    ours = GatewayResponsesSwagger(gateway_responses([SITE])).generate_swagger(app)
    # THEN both of API Gateway's default responses allow it, and the rest is chalice's own
    responses = ours.pop(GATEWAY_RESPONSES)
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX", "MISSING_AUTHENTICATION_TOKEN"}
    for response in responses.values():  # (a response of its own type replaces the default's)
        assert response["responseParameters"][ALLOW] == f"'{SITE}'"
    assert ours == chalices
    assert "/events" in ours["paths"]


def test_an_unknown_route_is_a_404_saying_so_with_or_without_allowed_origins(app: Any) -> None:
    ours = GatewayResponsesSwagger(gateway_responses([])).generate_swagger(app)
    no_route = ours.pop(GATEWAY_RESPONSES)
    assert ours == TemplatedSwaggerGenerator().generate_swagger(app)
    assert no_route == {
        "MISSING_AUTHENTICATION_TOKEN": {
            "statusCode": "404",
            "responseTemplates": {
                "application/json": '{"message": "Not Found: no route takes this method and path"}'
            },
        }
    }


def test_the_origins_are_the_stages_own() -> None:
    config = Config.create(
        chalice_stage="prod",
        environment_variables={"CLICKSTREAM_CORS_ORIGINS": f"{SITE},https://app.acme.example"},
    )
    assert allowed_origins(config) == [SITE, "https://app.acme.example"]
    assert allowed_origins(Config.create(environment_variables={})) == []
    # read as the API reads it: spaces and a trailing slash are not part of an origin
    spaced = Config.create(environment_variables={"CLICKSTREAM_CORS_ORIGINS": f" {SITE}/ ,"})
    assert allowed_origins(spaced) == [SITE]
    assert (
        allowed_origins(Config.create(environment_variables={"CLICKSTREAM_CORS_ORIGINS": ","}))
        == []
    )


def _shape(value: Any, depth: int = 0) -> Any:
    """The classes an object is built from, a few levels deep (chalice's deployer graph)."""
    if isinstance(value, list | tuple):
        return [_shape(item, depth) for item in value]
    if depth > 3 or not hasattr(value, "__dict__"):
        return type(value).__name__
    fields = {name: _shape(field, depth + 1) for name, field in vars(value).items()}
    return (type(value).__name__, fields)


def test_the_deployer_is_chalices_default_one_but_for_the_swagger_generator(tmp_path: Path) -> None:
    """A chalice upgrade that changes its default deployer fails here, so that
    ``infra.api_deploy.deployer`` is brought in line rather than drifting silently."""
    session = botocore.session.get_session()
    session.set_config_variable("region", "eu-west-1")
    config = Config.create(chalice_stage="dev", project_dir=str(tmp_path), app_name="clickstream")
    ui = UI()
    ours = _shape(deployer(session, config, ui, GatewayResponsesSwagger({})))
    chalices = _shape(create_default_deployer(session, config, ui))
    generator = "('GatewayResponsesSwagger', {'responses': 'dict'})"
    assert repr(ours).count(generator) == 1
    assert repr(ours).replace(generator, "('TemplatedSwaggerGenerator', {})") == repr(chalices)
