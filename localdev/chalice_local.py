"""``chalice local`` only (the local stack's API server; never imported on Lambda): its access
log, the HTTP methods its server does not know and its Cognito authorizer, made to behave like
API Gateway."""

from __future__ import annotations

import sys
from typing import Any

from clickstream.errors import RequestError


def harden_chalice_local() -> None:
    """1. The access log names no client: chalice local logs each request as
    ``<client ip> - - [date] "<request line>"``, a raw IP address and a query string that may
    carry a beacon's write key; it now logs the method, the path without its query, and the
    status. 2. Methods no route serves (``TRACE``, ``CONNECT``, ``QUERY``, ...) get a 405, as
    API Gateway answers them with a 4xx, instead of the 501 of Python's HTTP server."""
    try:
        from chalice.local import ChaliceRequestHandler
    except ImportError:  # pragma: no cover - chalice is always there locally
        return

    def log_message(self: Any, format: str, *args: Any) -> None:
        request_line = str(getattr(self, "requestline", ""))
        method, _, rest = request_line.partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        status = args[1] if len(args) > 1 and format.startswith('"%s"') else "-"
        sys.stderr.write(f"- - [{self.log_date_time_string()}] {method} {path} {status}\n")

    def method_not_allowed(self: Any) -> None:
        self.send_error(405, "Method Not Allowed")

    def unknown_attribute(self: Any, name: str) -> Any:
        if name.startswith("do_"):  # BaseHTTPRequestHandler looks up do_<METHOD>
            return lambda: method_not_allowed(self)
        raise AttributeError(name)

    ChaliceRequestHandler.log_message = log_message
    ChaliceRequestHandler.__getattr__ = unknown_attribute
    from chalice.local import LocalGateway

    LocalGateway.handle_request = no_route_as_deployed(LocalGateway.handle_request)  # type: ignore[method-assign]
    verify_cognito_locally()


def no_route_as_deployed(handle_request: Any) -> Any:
    """A path no route serves: chalice local answers API Gateway's default 403 "Missing
    Authentication Token"; ``make deploy`` makes it a 404 (``infra.api_deploy``), so this does
    too. A method no route of a path takes never reaches the function on AWS either (the same
    404), where chalice local lets the app answer a 405. (chalice local's other 403 for an
    unknown path, sent when the request has an Authorization header, is left as API Gateway
    answers it.)"""
    from chalice.local import ForbiddenError, LocalGatewayException

    from clickstream.cors import cors_headers
    from clickstream.settings import get_settings
    from infra.api_deploy import NO_ROUTE_BODY

    class NoRouteError(LocalGatewayException):
        CODE = 404

    def no_route(headers: Any, answered: dict[str, str]) -> NoRouteError:
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        cors = cors_headers(lowered, get_settings().cors_origins)  # as the deployed 404's
        return NoRouteError({**answered, **cors}, NO_ROUTE_BODY.encode())

    def handled(self: Any, method: str, path: str, headers: Any, body: Any) -> Any:
        try:
            response = handle_request(self, method, path, headers, body)
        except ForbiddenError as error:
            if error.body != b'{"message": "Missing Authentication Token"}':
                raise
            raise no_route(headers, error.headers) from None
        if response.get("statusCode") == 405 and "MethodNotAllowedError" in str(response["body"]):
            raise no_route(headers, {})
        return response

    return handled


def verify_cognito_locally() -> None:
    """chalice local's Cognito authorizer reads the token's claims without checking its
    signature, issuer or expiry, so any made-up token passes. API Gateway verifies all three
    and answers 401 ``{"message":"Unauthorized"}`` before the function runs, with the CORS
    headers ``make deploy`` gives its own error responses; so does this."""
    try:
        from chalice.app import CognitoUserPoolAuthorizer
        from chalice.local import LocalGatewayAuthorizer, NotAuthorizedError
    except ImportError:  # pragma: no cover - chalice is always there locally
        return

    from clickstream.auth import user_pool_issuer, user_pool_jwks, verify_cognito_jwt
    from clickstream.cors import cors_headers
    from clickstream.settings import get_settings

    authorize = LocalGatewayAuthorizer.authorize
    jwks_cache: dict[str, dict[str, Any]] = {}

    def verified(self: Any, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
        route = self._route_for_event(lambda_event)
        authorizer = route.authorizer if route else None
        if isinstance(authorizer, CognitoUserPoolAuthorizer):
            headers = {k.lower(): v for k, v in (lambda_event.get("headers") or {}).items()}
            unauthorized = NotAuthorizedError(
                {
                    "x-amzn-ErrorType": "UnauthorizedException",
                    **cors_headers(headers, get_settings().cors_origins),
                },
                b'{"message":"Unauthorized"}',
            )
            token = headers.get("authorization", "")
            pool_arn = get_settings().cognito_user_pool_arn  # the authorizer's provider
            if pool_arn not in jwks_cache:
                jwks_cache[pool_arn] = user_pool_jwks(pool_arn)
            try:
                verify_cognito_jwt(token, jwks_cache[pool_arn], issuer=user_pool_issuer(pool_arn))
            except RequestError:
                raise unauthorized from None
        return authorize(self, raw_path, lambda_event, lambda_context)

    LocalGatewayAuthorizer.authorize = verified  # type: ignore[method-assign]


METRICS_PATH = "/metrics"


def serve_prometheus_metrics(registry: Any) -> None:
    """``GET /metrics`` on chalice local's port answers the registry in Prometheus' text
    format, before any route is looked up: the deployed app has no such route (its
    ``/metrics/timeseries`` is a route of its own and is untouched)."""
    from chalice.local import ChaliceRequestHandler
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    handle_get = ChaliceRequestHandler.do_GET

    def do_get(self: Any) -> None:
        if self.path.split("?", 1)[0] != METRICS_PATH:
            handle_get(self)
            return
        body = generate_latest(registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    ChaliceRequestHandler.do_GET = do_get
