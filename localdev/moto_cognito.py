"""CloudFormation support in the embedded emulator for the three Cognito types the template
uses when the read endpoints are protected by a user pool (``ReadAuth=cognito``, the AWS
default): ``AWS::Cognito::UserPool``, ``UserPoolClient`` and ``UserPoolGroup``.

moto implements Cognito's API but not these CloudFormation types, and a stack whose outputs
read ``Fn::GetAtt [UserPool, Arn]`` then fails as a whole, so no reconciliation after the
fact can help. These models create the pool, client and group through moto's own Cognito
backend, with the template's properties as the API's parameters (same names). Importing this
module registers them: moto finds CloudFormation models as *direct* ``CloudFormationModel``
subclasses, hence the shared wiring is a mixin.
"""

from __future__ import annotations

import contextlib
from typing import Any

from moto.cognitoidp.exceptions import ResourceNotFoundError
from moto.cognitoidp.models import CognitoIdpBackend, cognitoidp_backends
from moto.core.common_models import CloudFormationModel


class _CognitoResource:
    """create/delete through moto's Cognito backend; subclasses say how."""

    physical_id: str

    @classmethod
    def _create(
        cls, backend: CognitoIdpBackend, name: str, properties: dict[str, Any], region: str
    ) -> Any:
        raise NotImplementedError

    def _delete(self, backend: CognitoIdpBackend) -> None:
        raise NotImplementedError

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = dict(cloudformation_json.get("Properties", {}))
        backend = cognitoidp_backends[account_id][region_name]
        return cls._create(backend, resource_name, properties, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):  # gone with its pool already
            self._delete(cognitoidp_backends[account_id][region_name])


class UserPoolResource(_CognitoResource, CloudFormationModel):
    def __init__(self, pool_id: str, arn: str, region: str) -> None:
        self.physical_id, self.arn, self.region = pool_id, arn, region

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Cognito::UserPool"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "UserPoolName"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Arn", "ProviderName", "ProviderURL", "UserPoolId")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        provider = f"cognito-idp.{self.region}.amazonaws.com/{self.physical_id}"
        return {
            "Arn": self.arn,
            "ProviderName": provider,
            "ProviderURL": f"https://{provider}",
            "UserPoolId": self.physical_id,
        }[attribute_name]

    @classmethod
    def _create(
        cls, backend: CognitoIdpBackend, name: str, properties: dict[str, Any], region: str
    ) -> UserPoolResource:
        pool = backend.create_user_pool(properties.pop("UserPoolName", name), properties)
        return cls(pool.id, pool.arn, region)

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
        backend = cognitoidp_backends[account_id][region_name]
        backend.update_user_pool(original_resource.physical_id, properties)
        return original_resource

    def _delete(self, backend: CognitoIdpBackend) -> None:
        backend.delete_user_pool(self.physical_id)


class UserPoolClientResource(_CognitoResource, CloudFormationModel):
    def __init__(self, pool_id: str, client_id: str) -> None:
        self.pool_id, self.physical_id = pool_id, client_id

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Cognito::UserPoolClient"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "ClientName"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "ClientId"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.physical_id

    @classmethod
    def _create(
        cls, backend: CognitoIdpBackend, name: str, properties: dict[str, Any], region: str
    ) -> UserPoolClientResource:
        pool_id = properties.pop("UserPoolId")
        generate_secret = str(properties.pop("GenerateSecret", False)).lower() == "true"
        properties.setdefault("ClientName", name)
        client = backend.create_user_pool_client(pool_id, generate_secret, properties)
        return cls(pool_id, client.id)

    def _delete(self, backend: CognitoIdpBackend) -> None:
        backend.delete_user_pool_client(self.pool_id, self.physical_id)


class UserPoolGroupResource(_CognitoResource, CloudFormationModel):
    def __init__(self, pool_id: str, group_name: str) -> None:
        self.pool_id, self.physical_id = pool_id, group_name

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Cognito::UserPoolGroup"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "GroupName"

    @classmethod
    def _create(
        cls, backend: CognitoIdpBackend, name: str, properties: dict[str, Any], region: str
    ) -> UserPoolGroupResource:
        pool_id = properties["UserPoolId"]
        group = backend.create_group(
            pool_id,
            properties.get("GroupName", name),
            properties.get("Description", ""),
            properties.get("RoleArn", ""),
            int(properties.get("Precedence", 0)),
        )
        return cls(pool_id, group.group_name)

    def _delete(self, backend: CognitoIdpBackend) -> None:
        backend.delete_group(self.pool_id, self.physical_id)
