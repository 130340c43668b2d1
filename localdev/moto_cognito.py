"""CloudFormation support in the embedded emulator for the three Cognito types the template
uses when the read endpoints are protected by a user pool (``ReadAuth=cognito``, the AWS
default): ``AWS::Cognito::UserPool``, ``UserPoolClient`` and ``UserPoolGroup``.

moto implements Cognito's API but not these CloudFormation types, and a stack whose outputs
read ``Fn::GetAtt [UserPool, Arn]`` then fails as a whole, so no reconciliation after the
fact can help. These models create the pool, client and group through moto's own Cognito
backend, with the template's properties as the API's parameters (same names). Importing this
module registers them: moto finds CloudFormation models as ``CloudFormationModel`` subclasses.
"""

from __future__ import annotations

import contextlib
from typing import Any

from moto.cognitoidp.exceptions import ResourceNotFoundError
from moto.cognitoidp.models import CognitoIdpBackend, cognitoidp_backends
from moto.core.common_models import CloudFormationModel


def _backend(account_id: str, region_name: str) -> CognitoIdpBackend:
    return cognitoidp_backends[account_id][region_name]


class UserPoolResource(CloudFormationModel):
    def __init__(self, account_id: str, region_name: str, pool_id: str, arn: str) -> None:
        self.account_id, self.region_name = account_id, region_name
        self.pool_id, self.arn = pool_id, arn

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Cognito::UserPool"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "UserPoolName"

    @property
    def physical_resource_id(self) -> str:
        return self.pool_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Arn", "ProviderName", "ProviderURL", "UserPoolId")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        provider = f"cognito-idp.{self.region_name}.amazonaws.com/{self.pool_id}"
        return {
            "Arn": self.arn,
            "ProviderName": provider,
            "ProviderURL": f"https://{provider}",
            "UserPoolId": self.pool_id,
        }[attribute_name]

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> UserPoolResource:
        properties = dict(cloudformation_json.get("Properties", {}))
        name = properties.pop("UserPoolName", resource_name)
        pool = _backend(account_id, region_name).create_user_pool(name, properties)
        return cls(account_id, region_name, pool.id, pool.arn)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: UserPoolResource,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> UserPoolResource:
        properties = dict(cloudformation_json.get("Properties", {}))
        properties.pop("UserPoolName", None)
        _backend(account_id, region_name).update_user_pool(original_resource.pool_id, properties)
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            _backend(account_id, region_name).delete_user_pool(self.pool_id)


class UserPoolClientResource(CloudFormationModel):
    def __init__(self, pool_id: str, client_id: str) -> None:
        self.pool_id, self.client_id = pool_id, client_id

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Cognito::UserPoolClient"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "ClientName"

    @property
    def physical_resource_id(self) -> str:
        return self.client_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "ClientId"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.client_id

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> UserPoolClientResource:
        properties = dict(cloudformation_json.get("Properties", {}))
        pool_id = properties.pop("UserPoolId")
        generate_secret = str(properties.pop("GenerateSecret", False)).lower() == "true"
        properties.setdefault("ClientName", resource_name)
        backend = _backend(account_id, region_name)
        client = backend.create_user_pool_client(pool_id, generate_secret, properties)
        return cls(pool_id, client.id)

    def delete(self, account_id: str, region_name: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):  # gone with the pool already
            _backend(account_id, region_name).delete_user_pool_client(self.pool_id, self.client_id)


class UserPoolGroupResource(CloudFormationModel):
    def __init__(self, pool_id: str, group_name: str) -> None:
        self.pool_id, self.group_name = pool_id, group_name

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Cognito::UserPoolGroup"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "GroupName"

    @property
    def physical_resource_id(self) -> str:
        return self.group_name

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> UserPoolGroupResource:
        properties = cloudformation_json.get("Properties", {})
        pool_id = properties["UserPoolId"]
        group = _backend(account_id, region_name).create_group(
            pool_id,
            properties.get("GroupName", resource_name),
            properties.get("Description", ""),
            properties.get("RoleArn", ""),
            int(properties.get("Precedence", 0)),
        )
        return cls(pool_id, group.group_name)

    def delete(self, account_id: str, region_name: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            _backend(account_id, region_name).delete_group(self.pool_id, self.group_name)
