"""API Gateway's part in front of the deployed API function, for the rehearsal: the deployed
REST API's routes, its Cognito authorizer and the Lambda proxy event."""

from __future__ import annotations

import json
import ssl
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from clickstream.auth import user_pool_issuer, user_pool_jwks, verify_cognito_jwt
from clickstream.errors import RequestError
from clickstream.keys import create_key
from infra.api_deploy import NO_ROUTE_RESPONSE
from localdev.sandbox import DeployedFunction

if TYPE_CHECKING:
    from localdev.rehearse.rehearsal import Rehearsal


class Gateway:
    """API Gateway's part in front of the deployed API function: the deployed REST API's
    routes, its authorizers (the Cognito user pool's JWT checks, via the same verification
    ``clickstream.auth`` documents) and the Lambda proxy event."""

    def __init__(self, rehearsal: Rehearsal, api: DeployedFunction) -> None:
        self.rehearsal = rehearsal
        self.api = api
        gateway = rehearsal.client("apigateway")
        self.api_id = rehearsal.rest_api()["id"]
        resources = gateway.get_resources(restApiId=self.api_id, limit=500)["items"]
        self.methods: dict[tuple[str, str], dict[str, Any]] = {
            (resource["path"], verb): gateway.get_method(
                restApiId=self.api_id, resourceId=resource["id"], httpMethod=verb
            )
            for resource in resources
            for verb in resource.get("resourceMethods", {})
        }
        self.authorizers = {
            a["id"]: a for a in gateway.get_authorizers(restApiId=self.api_id)["items"]
        }
        # An unknown route's answer: the API's gateway response for it where it has one
        no_route = gateway.get_gateway_response(
            restApiId=self.api_id, responseType=NO_ROUTE_RESPONSE
        )
        template = (no_route.get("responseTemplates") or {}).get("application/json") or ""
        try:
            body = json.loads(template)
        except ValueError:  # API Gateway's own default: a template with $context variables
            body = {"message": "Missing Authentication Token"}
        self.no_route: tuple[int, Any] = (int(no_route.get("statusCode") or 403), body)
        self._tokens: dict[str, str] = {}
        self._jwks: dict[str, dict[str, Any]] = {}
        self._write_key: str | None = None
        self.accepted_ids: list[str] = []
        self.jobs: Callable[[], int] = lambda: 0  # delivers the jobs queue (the rehearsal)

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        parts = path.strip("/").split("/")
        for template, _ in self.methods:
            pattern = template.strip("/").split("/")
            if len(pattern) != len(parts):
                continue
            parameters = {}
            for want, got in zip(pattern, parts, strict=True):
                if want.startswith("{") and want.endswith("}"):
                    parameters[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return template, parameters
        return None

    def request(
        self,
        verb: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> tuple[int, Any]:
        headers = {"Host": f"{self.api_id}.execute-api.amazonaws.com", **(headers or {})}
        path, _, query_string = path.partition("?")
        query = dict(urllib.parse.parse_qsl(query_string)) or None
        matched = self.match(path)
        if matched is None or (matched[0], verb) not in self.methods:
            return self.no_route
        template, parameters = matched
        method = self.methods[(template, verb)]
        context: dict[str, Any] = {
            "resourcePath": template,
            "httpMethod": verb,
            "path": f"/api{path}",
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "rehearsal"},
        }
        if method.get("authorizationType") == "COGNITO_USER_POOLS":
            if token is None:
                return 401, {"message": "Unauthorized"}
            headers["Authorization"] = token
            try:
                claims = self.verify(token, self.authorizers[method["authorizerId"]])
            except RequestError:
                return 401, {"message": "Unauthorized"}
            context["authorizer"] = {"claims": claims}
        event = {
            "resource": template,
            "path": path,
            "httpMethod": verb,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": query,
            "multiValueQueryStringParameters": {k: [v] for k, v in query.items()}
            if query
            else None,
            "pathParameters": parameters or None,
            "stageVariables": None,
            "requestContext": context,
            "body": None if body is None else json.dumps(body),
            "isBase64Encoded": False,
        }
        response = self.api.invoke(event)
        text = response.get("body") or "null"
        return int(response["statusCode"]), json.loads(text)

    def verify(self, token: str, authorizer: dict[str, Any]) -> dict[str, Any]:
        pool_arn = authorizer["providerARNs"][0]
        if pool_arn not in self._jwks:  # fetched once, as API Gateway caches the keys
            tls = ssl.create_default_context(cafile=self.rehearsal.ca_bundle)
            self._jwks[pool_arn] = user_pool_jwks(pool_arn, self.rehearsal.endpoint_url, tls)
        return verify_cognito_jwt(token, self._jwks[pool_arn], issuer=user_pool_issuer(pool_arn))

    def reader_token(self) -> str:
        """An ID token of a user in the deployed pool (what the dashboard's sign-in gets)."""
        return self.token("analyst@example.com")

    def token(self, user: str, groups: tuple[str, ...] = ()) -> str:
        if user not in self._tokens:
            cognito = self.rehearsal.client("cognito-idp")
            pool_id = self.rehearsal.outputs["UserPoolArn"].rsplit("/", 1)[-1]
            password = "Rehearsal-Passw0rd"
            cognito.admin_create_user(UserPoolId=pool_id, Username=user, MessageAction="SUPPRESS")
            cognito.admin_set_user_password(
                UserPoolId=pool_id, Username=user, Password=password, Permanent=True
            )
            for group in groups:
                cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=user, GroupName=group)
            authenticated = cognito.admin_initiate_auth(
                UserPoolId=pool_id,
                ClientId=self.rehearsal.outputs["UserPoolClientId"],
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": user, "PASSWORD": password},
            )
            self._tokens[user] = str(authenticated["AuthenticationResult"]["IdToken"])
        return self._tokens[user]

    def export_and_erase(self, sent: list[dict[str, Any]]) -> str:
        """GET /export pages the archive (pyarrow, from the layer, in the API function);
        POST /exports is a job the jobs function writes to S3; DELETE /users/{user_id} is for
        the pool's admin group only and is a job that removes the user."""
        reader = self.reader_token()
        status, exported = self.request("GET", "/export?format=json", token=reader)
        assert status == 200, (status, exported)
        rows = exported["events"]
        assert exported["next"] is None, "one page holds the rehearsal's events"
        assert sorted(r["event_id"] for r in rows) == sorted(self.accepted_ids), (
            f"{len(rows)} exported rows, {len(self.accepted_ids)} accepted"
        )
        status, job = self.request("POST", "/exports", token=reader, body={"format": "csv"})
        assert status == 202, (status, job)
        self.jobs()
        status, done = self.request("GET", job["status_url"], token=reader)
        assert status == 200 and done["status"] == "succeeded", (status, done)
        assert done["result"]["rows"] == len(self.accepted_ids) and done["url"], done
        user = str(sent[0]["user_id"])
        status, _ = self.request("DELETE", f"/users/{user}", token=reader)
        assert status == 403, f"a reader's DELETE /users answered {status}"
        admin = self.token("admin@example.com", groups=("admin",))
        status, erasure = self.request("DELETE", f"/users/{user}", token=admin)
        assert status == 202, (status, erasure)
        steps = self.jobs()
        status, erased = self.request("GET", erasure["status_url"], token=admin)
        assert status == 200 and erased["status"] == "succeeded", (status, erased)
        assert erased["result"]["archive_rows_removed"] > 0, erased
        status, exported = self.request("GET", "/export?format=json", token=reader)
        rows = exported["events"]
        assert status == 200 and all(r.get("user_id") != user for r in rows), "user still there"
        return (
            f"/export paged the {len(self.accepted_ids)} archived events; the export job wrote "
            f"{done['result']['bytes']} B of CSV; a reader's DELETE /users is 403; the admin "
            f"group's erasure took {steps} queue messages and removed "
            f"{erased['result']['archive_rows_removed']} rows"
        )

    def write_key(self) -> str:
        if self._write_key is None:
            self._write_key, _ = create_key(
                self.rehearsal.client("dynamodb"),
                self.rehearsal.outputs["KeysTableName"],
                role="write",
                site="rehearsal.example",
                name="rehearsal beacon",
            )
        return self._write_key

    # -- checks --------------------------------------------------------------------------------
    def routes_match(self) -> str:
        status, document = self.request("GET", "/openapi.json")
        assert status == 200, status
        documented = {
            (path, verb.upper())
            for path, operations in document["paths"].items()
            for verb in operations
            if verb in ("get", "post", "put", "delete", "patch")
        }
        deployed = {(path, verb) for path, verb in self.methods if verb != "OPTIONS"}
        assert documented == deployed, (
            f"only documented {documented - deployed}; only deployed {deployed - documented}"
        )
        return f"{len(deployed)} routes, each with a CORS preflight"

    def authorization(self) -> str:
        pool = self.rehearsal.outputs["UserPoolArn"]
        protected = open_ = 0
        _, document = self.request("GET", "/openapi.json")
        # Behind the pool: what the document says needs a Cognito token; the write routes
        # (and the SDKs' endpoints) check their key in the function.
        behind_pool = {
            (path, verb.upper())
            for path, operations in document["paths"].items()
            for verb, operation in operations.items()
            if any("cognito" in requirement for requirement in operation["security"])
        }
        for (path, verb), method in self.methods.items():
            if verb == "OPTIONS":
                continue
            public = (path, verb) not in behind_pool
            if public:  # write routes check the write key in the function
                assert method.get("authorizationType", "NONE") == "NONE", (path, verb)
                open_ += 1
            else:
                authorizer = self.authorizers[method["authorizerId"]]
                assert method["authorizationType"] == "COGNITO_USER_POOLS", (path, verb)
                assert authorizer["providerARNs"] == [pool], authorizer
                protected += 1
        status, _ = self.request("GET", "/stats")
        assert status == 401, f"GET /stats without a token answered {status}"
        status, _ = self.request("GET", "/stats", token="not-a-jwt")
        assert status == 401, f"GET /stats with a bad token answered {status}"
        status, body = self.request("POST", "/events", body={"records": [{"event_type": "x"}]})
        assert status == 401, f"POST /events without a write key answered {status}: {body}"
        return f"{protected} routes behind the user pool, 401 without a token; {open_} open"

    def ingest(self, records: list[dict[str, Any]]) -> str:
        invalid = {"event_type": "page_view", "timestamp": "not a time"}
        status, body = self.request(
            "POST",
            "/events",
            body={"records": [*records, invalid]},
            headers={"X-Write-Key": self.write_key(), "Content-Type": "application/json"},
        )
        assert status == 200, (status, body)
        assert body["processed"] == len(records) and body["failed"] == 1, body
        error = body["errors"][0]
        assert error["index"] == len(records) and error["field"] == "timestamp", error
        self.accepted_ids = list(body["event_ids"])
        return f"{len(records)} accepted, 1 rejected naming record {error['index']}.timestamp"


def traffic(sessions: int = 6) -> list[dict[str, Any]]:
    """A few journeys: page views, a cart, a purchase."""
    now = datetime.now(UTC).isoformat()
    events = []
    for number in range(sessions):
        session, user = f"rehearsal-s{number}", f"rehearsal-u{number}"
        journey = ["page_view", "page_view", "add_to_cart"] + (["purchase"] if number % 3 else [])
        for step, event_type in enumerate(journey):
            event: dict[str, Any] = {
                "event_type": event_type,
                "session_id": session,
                "user_id": user,
                "timestamp": now,
                "page": f"/products/{step}",
            }
            if event_type == "purchase":
                event["value"] = 25.0
            events.append(event)
    return events
