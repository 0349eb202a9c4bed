"""Service-linked roles, which a fresh account lacks.

ECS, Auto Scaling and Application Auto Scaling act through a role of fixed name in the customer's
account. AWS creates it the first time a caller who may `iam:CreateServiceLinkedRole` makes a call
that needs it (ECS: CreateCluster and CreateService; Auto Scaling: CreateAutoScalingGroup;
Application Auto Scaling: RegisterScalableTarget); otherwise the call is refused as AWS refuses it.
CreateCapacityProvider never creates the role: it needs ECS's to exist already.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from moto.applicationautoscaling.exceptions import AWSValidationException
from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
from moto.autoscaling.exceptions import AutoscalingClientError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, BaseResponse
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.iam.exceptions import InvalidInput
from moto.iam.models import IAMBackend, Role, iam_backends

from deployments.sandbox import iam

ECS = "ecs.amazonaws.com"
AUTO_SCALING = "autoscaling.amazonaws.com"
APPLICATION_AUTO_SCALING = "ecs.application-autoscaling.amazonaws.com"
# AWS's names for the service-linked roles of the services the product uses.
ROLE_NAMES = {
    ECS: "AWSServiceRoleForECS",
    AUTO_SCALING: "AWSServiceRoleForAutoScaling",
    APPLICATION_AUTO_SCALING: "AWSServiceRoleForApplicationAutoScaling_ECSService",
}
ECS_REFUSAL = (
    "Unable to assume the service linked role. Please verify that the ECS service linked role "
    "exists."
)


def role_arn(account_id: str, service: str) -> str:
    return f"arn:aws:iam::{account_id}:role/aws-service-role/{service}/{ROLE_NAMES[service]}"


def apply() -> None:
    _patch_create_service_linked_role()
    _require(EC2ContainerServiceResponse, "create_cluster", ECS, _ecs_refusal, creates=True)
    _require(EC2ContainerServiceResponse, "create_service", ECS, _ecs_refusal, creates=True)
    _require(
        EC2ContainerServiceResponse, "create_capacity_provider", ECS, _ecs_refusal, creates=False
    )
    _require(AutoScalingResponse, "create_auto_scaling_group", AUTO_SCALING, _denied, creates=True)
    _require(
        ApplicationAutoScalingResponse,
        "register_scalable_target",
        APPLICATION_AUTO_SCALING,
        _unassumable,
        creates=True,
    )


def _patch_create_service_linked_role() -> None:
    """moto names the roles of these services wrongly and makes a second copy of them."""
    original = IAMBackend.create_service_linked_role

    def create_service_linked_role(
        self: IAMBackend, service_name: str, description: str, suffix: str
    ) -> Role:
        name = ROLE_NAMES.get(service_name)
        if name is None:
            return original(self, service_name, description, suffix)
        if any(role.name == name for role in self.get_roles()):
            raise InvalidInput(
                f"Service role name {name} has been taken in this account, please try a "
                "different suffix."
            )
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": ["sts:AssumeRole"],
                    "Effect": "Allow",
                    "Principal": {"Service": [service_name]},
                }
            ],
        }
        return self.create_role(
            name, json.dumps(trust), f"/aws-service-role/{service_name}/",
            permissions_boundary=None, description=description or "", tags=[],
            max_session_duration="3600", linked_service=service_name,
        )  # fmt: skip

    IAMBackend.create_service_linked_role = create_service_linked_role  # type: ignore[method-assign]


def exists(account_id: str, service: str) -> bool:
    return any(role.name == ROLE_NAMES[service] for role in _iam(account_id).get_roles())


def _iam(account_id: str) -> IAMBackend:
    backend: IAMBackend = iam_backends[account_id]["aws"]
    return backend


Refusal = Callable[[BaseResponse, str], Exception]


def _require(
    response_class: type[BaseResponse],
    method: str,
    service: str,
    refusal: Refusal,
    *,
    creates: bool,
) -> None:
    original = getattr(response_class, method)

    def call(self: BaseResponse) -> ActionResult:
        account_id = self.current_account
        if not exists(account_id, service):
            if not creates or not _may_create(self, service):
                raise refusal(self, service)
            _iam(account_id).create_service_linked_role(service, "", "")
        result: ActionResult = original(self)
        return result

    setattr(response_class, method, call)


def _may_create(response: BaseResponse, service: str) -> bool:
    caller = iam.caller_of(response.headers)
    if caller is None or not caller.role_name:
        return True  # the account's administrator
    need = _need(response.current_account, service)
    return iam.decide(iam.role_policies(caller.account_id, caller.role_name), need) == "allow"


def _need(account_id: str, service: str) -> iam.Need:
    context = {"iam:AWSServiceName": service}
    return iam.Need("iam:CreateServiceLinkedRole", role_arn(account_id, service), context)


def _ecs_refusal(response: BaseResponse, service: str) -> Exception:
    return InvalidParameterException(ECS_REFUSAL)


def _unassumable(response: BaseResponse, service: str) -> Exception:
    return AWSValidationException(
        f"Unable to assume IAM role: {role_arn(response.current_account, service)}"
    )


def _denied(response: BaseResponse, service: str) -> Exception:
    """Auto Scaling creates its role as the caller: the caller's refusal is IAM's."""
    caller = iam.caller_of(response.headers)
    assert caller is not None  # an administrator may create it
    need = _need(response.current_account, service)
    return AutoscalingClientError(
        "AccessDenied", iam.denial("autoscaling", caller, need, explicit=False).message
    )
