"""The embedded AWS emulator: moto's server, made safe for concurrent Kinesis writers and able
to take a ``chalice deploy`` (each fix and why: docs/local-stack.md)."""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import sys
import threading
from collections.abc import Callable
from typing import Any

from moto.apigateway import models as apigateway_models
from moto.awslambda import models as lambda_models
from moto.cloudformation import parsing as cloudformation_parsing
from moto.dynamodb.models import table as dynamodb_table
from moto.ecs import models as ecs_models
from moto.iam import models as iam_models
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.kinesis import models as kinesis_models
from moto.kinesis import responses as kinesis_responses
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3 import models as s3_models
from moto.server import main as moto_main

_SHARD_LOCK = threading.RLock()


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _SHARD_LOCK:
            return method(*args, **kwargs)

    return locked


def _open_shard_for_key(stream: Any, partition_key: str, explicit_hash_key: str) -> Any:
    """Route a record to the *open* shard covering its hash key (moto also considers the
    closed parents of a split, which still cover the same range, and picks those)."""
    if len(partition_key or "") > 256 or not isinstance(partition_key, str):
        raise kinesis_models.InvalidArgumentError("partition_key")
    key = (
        int(explicit_hash_key)
        if explicit_hash_key
        else int(hashlib.md5(partition_key.encode("utf-8")).hexdigest(), 16)
    )
    for shard in stream.shards.values():
        if shard.is_open and shard.starting_hash <= key <= shard.ending_hash:
            return shard
    return None


def _next_id(stream: Any) -> int:
    return max(shard._shard_id for shard in stream.shards.values()) + 1


def _split_shard(stream: Any, shard_to_split: str, new_starting_hash_key: str) -> None:
    """As Kinesis splits: two children take the halves of the parent's hash range, the parent
    is closed and keeps its records (moto re-puts them into the children, renumbered)."""
    parent = stream.get_shard(shard_to_split)
    split_at = int(new_starting_hash_key)
    if not parent.is_open or not parent.starting_hash < split_at <= parent.ending_hash:
        raise kinesis_models.InvalidArgumentError(new_starting_hash_key)
    with _SHARD_LOCK:
        first = _next_id(stream)
        for offset, (low, high) in enumerate(
            ((parent.starting_hash, split_at - 1), (split_at, parent.ending_hash))
        ):
            child = kinesis_models.Shard(first + offset, low, high, parent=parent.shard_id)
            stream.shards[child.shard_id] = child
        parent.is_open = False


def _merge_shards(stream: Any, shard_to_merge: str, adjacent_shard_to_merge: str) -> None:
    """As Kinesis merges: one child takes both adjacent ranges; both parents are closed and
    keep their records (moto copies them into the child)."""
    first, second = stream.get_shard(shard_to_merge), stream.get_shard(adjacent_shard_to_merge)
    low, high = sorted((first, second), key=lambda shard: shard.starting_hash)
    if high.starting_hash != low.ending_hash + 1 or not (first.is_open and second.is_open):
        raise kinesis_models.InvalidArgumentError(adjacent_shard_to_merge)
    with _SHARD_LOCK:
        child = kinesis_models.Shard(
            _next_id(stream),
            low.starting_hash,
            high.ending_hash,
            parent=first.shard_id,
            adjacent_parent=second.shard_id,
        )
        stream.shards[child.shard_id] = child
        first.is_open = second.is_open = False


def _get_records_to_shard_end(
    backend: Any, stream_arn: str | None, shard_iterator: str, limit: int | None
) -> tuple[str | None, list[Any], int]:
    """A closed shard read to its last record answers no next iterator, which is how a
    consumer (Lambda's mapping, the KCL) learns it may move on to the children."""
    answer = _original_get_records(backend, stream_arn, shard_iterator, limit)
    stream_name, shard_id, _ = kinesis_models.decompose_shard_iterator(shard_iterator)
    shard = backend.describe_stream(stream_arn=stream_arn, stream_name=stream_name).get_shard(
        shard_id
    )
    next_iterator, records, behind = answer
    last = kinesis_models.decompose_shard_iterator(next_iterator)[2]
    if not shard.is_open and int(last) >= _max_sequence_number(shard):
        return None, records, behind
    return answer


_original_get_records = kinesis_models.KinesisBackend.get_records


def _get_records_response(self: Any) -> Any:
    """moto's ``GetRecords`` answer, plus ``ChildShards`` at a closed shard's end."""
    from moto.core.responses import ActionResult

    stream_arn = self._get_param("StreamARN")
    shard_iterator = self._get_param("ShardIterator")
    next_iterator, records, behind = self.kinesis_backend.get_records(
        stream_arn, shard_iterator, self._get_param("Limit")
    )
    answer: dict[str, Any] = {
        "NextShardIterator": next_iterator,
        "Records": [record.to_json() for record in records],
        "MillisBehindLatest": behind,
    }
    if next_iterator is None:
        stream_name, shard_id, _ = kinesis_models.decompose_shard_iterator(shard_iterator)
        stream = self.kinesis_backend.describe_stream(
            stream_arn=stream_arn, stream_name=stream_name
        )
        answer["ChildShards"] = [
            {
                "ShardId": child.shard_id,
                "ParentShards": [p for p in (child.parent, child.adjacent_parent) if p],
                "HashKeyRange": child.to_json()["HashKeyRange"],
            }
            for child in stream.shards.values()
            if shard_id in (child.parent, child.adjacent_parent)
        ]
    return ActionResult(answer)


def _update_resource_if_its_condition_holds(
    logical_id: str,
    resource_json: dict[str, Any],
    resources_map: Any,
    account_id: str,
    region_name: str,
) -> Any:
    condition = resource_json.get("Condition")
    if condition and not resources_map.lazy_condition_map[condition]:
        existing = resources_map._parsed_resources.get(logical_id)
        if existing is not None:
            resources_map._delete_resource(existing, resource_json)
        return None
    if resources_map._parsed_resources.get(logical_id) is None:  # its condition was false
        return cloudformation_parsing.parse_and_create_resource(
            logical_id, resource_json, resources_map, account_id, region_name
        )
    return _original_update_resource(
        logical_id, resource_json, resources_map, account_id, region_name
    )


_original_update_resource = cloudformation_parsing.parse_and_update_resource


def _update_then_drop_what_lost_its_condition(
    self: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None
) -> None:
    _original_map_update(self, template, parameters)
    for logical_id, resource_json in template["Resources"].items():
        condition = resource_json.get("Condition")
        existing = self._parsed_resources.get(logical_id)
        if condition and existing is not None and not self.lazy_condition_map[condition]:
            self._delete_resource(existing, resource_json)
            self._parsed_resources[logical_id] = None


_original_map_update = cloudformation_parsing.ResourceMap.update


def honour_conditions_on_update() -> None:
    cloudformation_parsing.parse_and_update_resource = _update_resource_if_its_condition_holds
    cloudformation_parsing.ResourceMap.update = _update_then_drop_what_lost_its_condition  # type: ignore[method-assign]


def _service_from_cloudformation(
    cls: Any,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Any:
    """moto's, with the launch type and the awsvpc network it drops (a Fargate service)."""
    properties = cloudformation_json["Properties"]
    cluster, task = properties["Cluster"], properties["TaskDefinition"]
    network = (properties.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration")
    return ecs_models.ecs_backends[account_id][region_name].create_service(
        getattr(cluster, "name", cluster),
        resource_name,
        properties.get("DesiredCount"),
        task_definition_str=getattr(task, "family", task),
        launch_type=properties.get("LaunchType"),
        network_configuration=None
        if network is None
        else {
            "awsvpcConfiguration": {
                "subnets": list(network.get("Subnets") or []),
                "securityGroups": list(network.get("SecurityGroups") or []),
                "assignPublicIp": network.get("AssignPublicIp", "DISABLED"),
            }
        },
    )


def _delete_service(self: Any, account_id: str, region_name: str) -> None:
    ecs_models.ecs_backends[account_id][region_name].delete_service(
        self.cluster_name, self.name, force=True
    )


def _delete_cluster(self: Any, account_id: str, region_name: str) -> None:
    ecs_models.ecs_backends[account_id][region_name].delete_cluster(self.name)


def _put_role_policy_as_json(self: Any, policy_name: str, policy_json: Any) -> None:
    _original_put_role_policy(
        self, policy_name, policy_json if isinstance(policy_json, str) else json.dumps(policy_json)
    )


_original_put_role_policy = iam_models.Role.put_policy


def role_policies_from_cloudformation_as_json() -> None:
    """A role's inline ``Policies`` made by CloudFormation: moto keeps the template's document
    as a dict and answers ``GetRolePolicy`` with its Python repr; IAM answers JSON."""
    iam_models.Role.put_policy = _put_role_policy_as_json  # type: ignore[method-assign]


def ecs_services_as_cloudformation_makes_them() -> None:
    """ECS in moto's CloudFormation: a service keeps its launch type and network (moto drops
    them), and deleting the stack deletes the service and the cluster (moto keeps both)."""
    ecs_models.Service.create_from_cloudformation_json = classmethod(_service_from_cloudformation)  # type: ignore[method-assign,assignment]
    ecs_models.Service.delete = _delete_service  # type: ignore[attr-defined]
    ecs_models.Cluster.delete = _delete_cluster  # type: ignore[attr-defined]


def support_resharding() -> None:
    """SplitShard and MergeShards as Kinesis does them: records stay in the closed parents,
    new ones go to the open children, and a drained parent reports its end."""
    stream = kinesis_models.Stream
    if getattr(stream, "_clickstream_resharding", False):
        return
    stream.get_shard_for_key = _open_shard_for_key  # type: ignore[method-assign,assignment]
    stream.split_shard = _split_shard  # type: ignore[method-assign,assignment]
    stream.merge_shards = _merge_shards  # type: ignore[method-assign,assignment]
    kinesis_models.KinesisBackend.get_records = _get_records_to_shard_end  # type: ignore[method-assign,assignment]
    kinesis_responses.KinesisResponse.get_records = _get_records_response  # type: ignore[method-assign]
    stream._clickstream_resharding = True  # type: ignore[attr-defined]


def _max_sequence_number(shard: Any) -> int:
    return next(reversed(shard.records), 0)


def _get_records(
    shard: Any, last_sequence_id: str, limit: int | None
) -> tuple[list[Any], int, int]:
    """moto's ``Shard.get_records`` by key instead of by scan (same answers: records are
    numbered 1, 2, 3, ... per shard, so the next one is always ``last + 1``)."""
    last = int(last_sequence_id)
    records = shard.records
    results: list[Any] = []
    while (limit is None or len(results) < limit) and (last + 1) in records:
        last += 1
        results.append(records[last])
    behind = 0.0
    if results:
        newest = records[next(reversed(records))]
        behind = newest.created_at - results[-1].created_at
    return results, last, int(behind * 1000)


def make_kinesis_thread_safe() -> None:
    shard = kinesis_models.Shard
    if not getattr(shard, "_clickstream_serialized", False):
        shard.get_max_sequence_number = _max_sequence_number  # type: ignore[method-assign,assignment]
        shard.put_record = _serialized(shard.put_record)  # type: ignore[method-assign]
        shard.get_records = _serialized(_get_records)  # type: ignore[method-assign]
        shard._clickstream_serialized = True  # type: ignore[attr-defined]


_query_partition = threading.local()


def _query_one_partition(query: Callable[..., Any]) -> Callable[..., Any]:
    def query_partition(table: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("index_name") or hash_key is None:
            return query(table, hash_key, *args, **kwargs)
        _query_partition.hash_key = hash_key
        try:
            return query(table, hash_key, *args, **kwargs)
        finally:
            _query_partition.hash_key = None

    return query_partition


def _items_of_queried_partition(
    all_items: Callable[[Any], list[Any]],
) -> Callable[[Any], list[Any]]:
    def items(table: Any) -> list[Any]:
        hash_key = getattr(_query_partition, "hash_key", None)
        if hash_key is None or not table.range_key_attr:
            return all_items(table)
        return sorted(table.items.get(hash_key, {}).values(), key=lambda item: item.range_key)

    return items


def query_by_partition() -> None:
    """moto's DynamoDB Query reads and sorts the whole table for every call (a 50,000-item
    table answered 8 queries a second); a query on the table's own key reads only its
    partition, as DynamoDB does. Same answers: the other items never matched."""
    table = dynamodb_table.Table
    if getattr(table, "_clickstream_partitioned", False):
        return
    table.query = _query_one_partition(table.query)  # type: ignore[method-assign]
    table.all_items = _items_of_queried_partition(table.all_items)  # type: ignore[method-assign,assignment]
    table._clickstream_partitioned = True  # type: ignore[attr-defined]


_KNOWN_HOSTS_MAX = 4096


def dispatch_by_remembered_host() -> None:
    """moto's server finds a request's backend by listing its own package directory and
    matching hundreds of URL patterns, under one lock that every request takes (68% of the
    emulator's samples while the aggregator folded; conditional updates 85 -> 95 a second once
    remembered). The answer depends on the host name alone, so it is worked out once per
    host."""
    dispatcher = DomainDispatcherApplication
    if getattr(dispatcher, "_clickstream_remembers_hosts", False):
        return
    find = dispatcher.get_backend_for_host
    known: dict[str | None, Any] = {}

    @functools.wraps(find)
    def backend_for_host(self: Any, host: str | None) -> Any:
        if host not in known:
            if len(known) >= _KNOWN_HOSTS_MAX:  # virtual-hosted bucket names are hosts too
                known.clear()
            known[host] = find(self, host)
        return known[host]

    dispatcher.get_backend_for_host = backend_for_host  # type: ignore[method-assign]
    dispatcher._clickstream_remembers_hosts = True  # type: ignore[attr-defined]


def _as_openapi3(api_doc: dict[str, Any]) -> dict[str, Any]:
    info = {"description": "", **api_doc.get("info", {})}
    document = {key: value for key, value in api_doc.items() if key != "swagger"}
    return {**document, "openapi": "3.0.1", "info": info}


_AUTHORIZER_TYPES = {
    "cognito_user_pools": "COGNITO_USER_POOLS",
    "token": "TOKEN",
    "request": "REQUEST",
}


def _apply_security(backend: Any, api_id: str, api_doc: dict[str, Any]) -> None:
    """What API Gateway's import does and moto's skips: an authorizer per
    ``x-amazon-apigateway-authorizer`` definition, and each method's ``security`` requirement
    set on the method (its authorizer, or ``apiKeyRequired`` for the ``x-api-key`` header)."""
    api = backend.get_rest_api(api_id)
    definitions: dict[str, Any] = api_doc.get("securityDefinitions") or {}
    existing = {authorizer.name: authorizer for authorizer in api.authorizers.values()}
    authorizers = {}
    for name, definition in definitions.items():
        spec = definition.get("x-amazon-apigateway-authorizer")
        if spec is None:
            continue
        authorizers[name] = existing.get(name) or backend.create_authorizer(
            api_id,
            name,
            _AUTHORIZER_TYPES[str(spec["type"]).lower()],
            provider_arns=spec.get("providerARNs"),
            authorizer_uri=spec.get("authorizerUri"),
            identity_source=f"method.request.header.{definition.get('name', 'Authorization')}",
            authorizer_result_ttl=spec.get("authorizerResultTtlInSeconds"),
        )
    for path, methods in api_doc.get("paths", {}).items():
        resource = api.get_resource_for_path(path)
        for method_type, method_doc in methods.items():
            method = resource.resource_methods.get(method_type.upper())
            for requirement in method_doc.get("security", []) if method else []:
                for name in requirement:
                    if name in authorizers:
                        method.authorization_type = authorizers[name].type
                        method.authorizer_id = authorizers[name].id
                    elif definitions.get(name, {}).get("name", "").lower() == "x-api-key":
                        method.api_key_required = True


def _apply_gateway_responses(
    backend: Any, api_id: str, api_doc: dict[str, Any], mode: str = "merge"
) -> None:
    """What API Gateway's import does and moto's skips: a gateway response per entry of
    ``x-amazon-apigateway-gateway-responses`` (an overwrite keeps only the definition's)."""
    if mode == "overwrite":
        backend.get_rest_api(api_id).gateway_responses.clear()
    for kind, spec in (api_doc.get("x-amazon-apigateway-gateway-responses") or {}).items():
        backend.put_gateway_response(
            api_id,
            kind,
            status_code=spec.get("statusCode"),
            response_parameters=spec.get("responseParameters"),
            response_templates=spec.get("responseTemplates"),
        )


def accept_swagger2_imports() -> None:
    backend = apigateway_models.APIGatewayBackend
    if getattr(backend, "_clickstream_swagger2", False):
        return
    import_rest_api, put_rest_api = backend.import_rest_api, backend.put_rest_api

    @functools.wraps(import_rest_api)
    def importing(self: Any, api_doc: dict[str, Any], fail_on_warnings: bool) -> Any:
        api = import_rest_api(self, _as_openapi3(api_doc), fail_on_warnings)
        _apply_security(self, api.id, api_doc)
        _apply_gateway_responses(self, api.id, api_doc)
        return api

    @functools.wraps(put_rest_api)
    def putting(self: Any, function_id: str, api_doc: dict[str, Any], *args: Any, **kw: Any) -> Any:
        api = put_rest_api(self, function_id, _as_openapi3(api_doc), *args, **kw)
        _apply_security(self, function_id, api_doc)
        _apply_gateway_responses(self, function_id, api_doc, kw.get("mode", "merge"))
        return api

    backend.import_rest_api = importing  # type: ignore[method-assign]
    backend.put_rest_api = putting  # type: ignore[method-assign]
    backend._clickstream_swagger2 = True  # type: ignore[attr-defined]


def accept_other_accounts_layers() -> None:
    function = lambda_models.LambdaFunction
    if getattr(function, "_clickstream_layers", False):
        return
    own_layers_data = function._get_layers_data

    @functools.wraps(own_layers_data)
    def layers_data(self: Any, arns: list[str]) -> list[lambda_models.LayerDataType]:
        own = [arn for arn in arns if arn.split(":")[4] == self.account_id]
        found = {entry["Arn"]: entry for entry in own_layers_data(self, own)}
        return [found.get(arn, {"Arn": arn, "CodeSize": 0}) for arn in arns]

    function._get_layers_data = layers_data  # type: ignore[method-assign,assignment]
    function._clickstream_layers = True  # type: ignore[attr-defined]


def _put_record_without_invoking(
    stream: Any, partition_key: str, explicit_hash_key: str, data: str
) -> tuple[str, str]:
    """moto's ``Stream.put_record`` minus the synchronous invocation of mapped functions."""
    shard = stream.get_shard_for_key(partition_key, explicit_hash_key)
    sequence_number = shard.put_record(partition_key, data, explicit_hash_key)
    return sequence_number, shard.shard_id


_REQUEST = threading.local()  # the request being served on this thread (werkzeug: one each)


def _condition_holds(operator: str, expected: Any, actual: str | None) -> bool:
    """One condition operator on one context key; a key the request lacks fails the
    condition (AWS's rule unless the operator ends in IfExists)."""
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    if actual is None:
        return if_exists
    values = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
    if operator == "Bool":
        return actual.lower() in (v.lower() for v in values)
    if operator == "StringEquals":
        return actual in values
    if operator == "StringNotEquals":
        return actual not in values
    if operator == "StringLike":
        return any(fnmatch.fnmatchcase(actual, v) for v in values)
    return True  # an operator this emulator does not evaluate: moto's own behaviour


def _conditions_hold(conditions: dict[str, dict[str, Any]] | None) -> bool:
    context = {"aws:securetransport": "true" if getattr(_REQUEST, "secure", False) else "false"}
    for operator, keys in (conditions or {}).items():
        for key, expected in keys.items():
            if not _condition_holds(operator, expected, context.get(key.lower())):
                return False
    return True


def _bucket_permission(bucket: Any, action: str, resource: str) -> PermissionResult:
    """moto's ``FakeBucket.get_permission`` on only the statements whose conditions hold."""
    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(bucket.policy)
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    applicable = [
        {key: value for key, value in statement.items() if key != "Condition"}
        for statement in statements
        if _conditions_hold(statement.get("Condition"))
    ]
    if not applicable:
        return PermissionResult.NEUTRAL
    policy = IAMPolicy(json.dumps({**document, "Statement": applicable}))
    return policy.is_action_permitted(action, resource)


def evaluate_bucket_policy_conditions() -> None:
    dispatcher = DomainDispatcherApplication
    if getattr(dispatcher, "_clickstream_scheme", False):
        return
    serve = dispatcher.__call__

    @functools.wraps(serve)
    def serving(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        _REQUEST.secure = environ.get("wsgi.url_scheme") == "https"
        return serve(self, environ, start_response)

    dispatcher.__call__ = serving  # type: ignore[method-assign]
    dispatcher._clickstream_scheme = True  # type: ignore[attr-defined]
    s3_models.FakeBucket.get_permission = _bucket_permission  # type: ignore[method-assign,assignment]


def main(argv: list[str] | None = None) -> None:
    import localdev.moto_cognito  # noqa: F401  (registers Cognito's CloudFormation types)

    make_kinesis_thread_safe()
    support_resharding()
    honour_conditions_on_update()
    ecs_services_as_cloudformation_makes_them()
    role_policies_from_cloudformation_as_json()
    query_by_partition()
    dispatch_by_remembered_host()
    kinesis_models.Stream.put_record = _put_record_without_invoking  # type: ignore[method-assign,assignment]
    accept_swagger2_imports()
    accept_other_accounts_layers()
    evaluate_bucket_policy_conditions()
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
