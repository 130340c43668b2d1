"""``infra.api_deploy``: the API definition chalice uploads carries API Gateway's own 4XX/5XX
answers with CORS headers, so that no call but chalice's own ``PutRestApi`` makes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.deploy.swagger import TemplatedSwaggerGenerator

from infra.api_deploy import (
    GATEWAY_RESPONSES,
    GatewayResponsesSwagger,
    allowed_origins,
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
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX"}
    for response in responses.values():
        assert response["responseParameters"][ALLOW] == f"'{SITE}'"
    assert ours == chalices
    assert "/events" in ours["paths"]


def test_without_allowed_origins_the_definition_is_chalices_own(app: Any) -> None:
    ours = GatewayResponsesSwagger(gateway_responses([])).generate_swagger(app)
    assert ours == TemplatedSwaggerGenerator().generate_swagger(app)


def test_the_origins_are_the_stages_own() -> None:
    config = Config.create(
        chalice_stage="prod",
        environment_variables={"CLICKSTREAM_CORS_ORIGINS": f"{SITE},https://app.acme.example"},
    )
    assert allowed_origins(config) == [SITE, "https://app.acme.example"]
    assert allowed_origins(Config.create(environment_variables={})) == []
