"""IAM as AWS enforces it, for sessions of an assumed role.

A customer grants TinyStacks a role; every call made with that role's session credentials is
authorised here against the role's identity policies (inline and attached), as IAM would: an
explicit Deny wins, then any Allow, else the call is refused. Calls that AWS authorises as more than
one action are checked for each (tag-on-create, `iam:PassRole` of the roles a request hands to a
service, target tracking's CloudWatch alarms), and resources are evaluated where our policy scopes
them (IAM roles and instance profiles, service-linked roles, SSM parameters); every other action is
evaluated against `Resource: *`. `AssumeRole` checks the target role's trust policy — principal
and `sts:ExternalId` — whoever calls it.

Plain credentials (anything that is not an assumed-role session, e.g. `aws --endpoint-url …`) act
as the account's administrator and are not checked, as moto does by default.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from moto.core.exceptions import ServiceException
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult, BaseResponse
from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends
from moto.sts.models import AssumedRole, sts_backends

CREDENTIAL = re.compile(r"Credential=([^/,]+)/\d+/([^/]+)/([^/]+)/")
# Signing names whose IAM action prefix differs.
ACTION_PREFIXES = {"monitoring": "cloudwatch"}
# Services speaking the query protocol, by action prefix: their refusals are coded differently.
QUERY_PREFIXES = {"iam", "sts", "autoscaling", "elasticloadbalancing", "cloudwatch"}
# Who the sandbox's plain credentials are: the account's root.
ROOT = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:root"


class AccessDenied(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Need:
    """One action IAM authorises for a request, on one resource, with its condition keys."""

    action: str
    resource: str = "*"
    context: dict[str, str] = field(default_factory=dict)


# Policy evaluation


def _like(pattern: str, value: str, *, case: bool) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _listed(element: Any) -> list[Any]:
    return element if isinstance(element, list) else [element]


CONDITION_OPERATORS: dict[str, Callable[[Any, str], bool]] = {
    "StringEquals": lambda want, got: got == want,
    "StringLike": lambda want, got: _like(want, got, case=True),
    "ArnEquals": lambda want, got: got == want,
    "ArnLike": lambda want, got: _like(want, got, case=True),
    "Bool": lambda want, got: got.lower() == str(want).lower(),
}
NEGATED_OPERATORS = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike"}


def _condition_holds(operator: str, key_values: dict[str, Any], context: dict[str, str]) -> bool:
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    negated = operator in NEGATED_OPERATORS
    test = CONDITION_OPERATORS.get(NEGATED_OPERATORS.get(operator, operator))
    if test is None:
        return False  # an operator the sandbox cannot evaluate never grants anything
    for key, wanted in key_values.items():
        got = context.get(key) if key in context else context.get(key.lower())
        if got is None:
            if not (if_exists or negated):
                return False
            continue
        matched = any(test(want, got) for want in _listed(wanted))
        if matched == negated:
            return False
    return True


def _statement_applies(statement: dict[str, Any], need: Need) -> bool:
    if "NotAction" in statement:
        if any(_like(a, need.action, case=False) for a in _listed(statement["NotAction"])):
            return False
    elif not any(_like(a, need.action, case=False) for a in _listed(statement.get("Action", []))):
        return False
    if "NotResource" in statement:
        if any(_like(r, need.resource, case=True) for r in _listed(statement["NotResource"])):
            return False
    elif not any(
        r == "*" or _like(r, need.resource, case=True) for r in _listed(statement.get("Resource"))
    ):
        return False
    return all(
        _condition_holds(operator, key_values, need.context)
        for operator, key_values in (statement.get("Condition") or {}).items()
    )


def decide(documents: Iterable[dict[str, Any]], need: Need) -> str:
    """ "deny" (explicit), "allow" or "none" (implicitly denied) for `need` under the documents."""
    allowed = False
    for document in documents:
        for statement in _listed(document.get("Statement", [])):
            if not _statement_applies(statement, need):
                continue
            if statement.get("Effect") == "Deny":
                return "deny"
            allowed = True
    return "allow" if allowed else "none"


def _principal_trusted(statement: dict[str, Any], caller: str) -> bool:
    principals = statement.get("Principal")
    if principals == "*":
        return True
    account = caller.split(":")[4]
    for principal in _listed((principals or {}).get("AWS", [])):
        if principal in ("*", caller, account, f"arn:aws:iam::{account}:root"):
            return True
        if caller.startswith(f"arn:aws:sts::{account}:assumed-role/") and principal == (
            f"arn:aws:iam::{account}:role/{caller.split('/')[1]}"
        ):
            return True
    return False


def service_may_assume(role_arn: str, service: str) -> bool:
    """The role exists and its trust policy lets `service` (ecs-tasks.amazonaws.com) assume it."""
    try:
        role = iam_backends[role_arn.split(":")[4]]["aws"].get_role_by_arn(role_arn)
    except Exception:
        return False
    trust = _document(role.assume_role_policy_document)
    return any(
        statement.get("Effect") == "Allow"
        and service in _listed((statement.get("Principal") or {}).get("Service", []))
        and "sts:AssumeRole" in _listed(statement.get("Action", []))
        for statement in _listed(trust.get("Statement", []))
    )


# Who is calling


@dataclass(frozen=True)
class Caller:
    arn: str
    account_id: str
    role_name: str = ""  # set for an assumed-role session; empty for plain credentials


def caller_of(headers: Any) -> Caller | None:
    """The principal behind a request's SigV4 credentials; None when unsigned."""
    match = CREDENTIAL.search(headers.get("Authorization", ""))
    if not match:
        return None
    session = _assumed_role(match[1])
    if session is None and "X-Amz-Security-Token" in headers:
        # Temporary credentials STS never issued (or a reset sandbox forgot): AWS knows no such key.
        raise _unknown_credentials(ACTION_PREFIXES.get(match[3], match[3]))
    if session is None:
        return Caller(arn=ROOT, account_id=DEFAULT_ACCOUNT_ID)
    if headers.get("X-Amz-Security-Token") != session.session_token:
        raise AccessDenied(
            "InvalidClientTokenId", "The security token included in the request is invalid."
        )
    if session.expiration < datetime.now(UTC).replace(tzinfo=None):
        raise AccessDenied("ExpiredToken", "The security token included in the request is expired")
    role_name = session.role_arn.split("/")[-1]
    account_id = session.role_arn.split(":")[4]
    return Caller(
        arn=f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session.session_name}",
        account_id=account_id,
        role_name=role_name,
    )


def _unknown_credentials(prefix: str) -> AccessDenied:
    if prefix == "ec2":
        return AccessDenied(
            "AuthFailure", "AWS was not able to validate the provided access credentials"
        )
    code = "InvalidClientTokenId" if prefix in QUERY_PREFIXES else "UnrecognizedClientException"
    return AccessDenied(code, "The security token included in the request is invalid.")


def _assumed_role(access_key_id: str) -> AssumedRole | None:
    for partitions in sts_backends.values():
        backend = partitions.get("aws")
        sessions: list[AssumedRole] = getattr(backend, "assumed_roles", [])
        for session in sessions:
            if session.access_key_id == access_key_id:
                return session
    return None


def role_policies(account_id: str, role_name: str) -> list[dict[str, Any]]:
    """The identity policies of a role: inline ones and the default versions of attached ones."""
    iam = iam_backends[account_id]["aws"]
    try:
        role = iam.get_role(role_name)
    except Exception:
        return []  # a deleted role's sessions are worth nothing
    documents = [_document(text) for text in role.policies.values()]
    for policy in role.managed_policies.values():
        version = next(v for v in policy.versions if v.is_default)
        documents.append(_document(version.document))
    return documents


def _document(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    return dict(json.loads(unquote(text) if text.lstrip().startswith("%") else text))


# What a request asks IAM for


def request_params(response: BaseResponse) -> dict[str, Any]:
    """The request's parameters: a JSON body, or query / form fields flattened to one value."""
    content_type = response.headers.get("Content-Type", "")
    if "json" in content_type:
        try:
            body = json.loads(response.body or "{}")
        except (TypeError, ValueError):
            return {}
        return body if isinstance(body, dict) else {}
    return {key: values[0] for key, values in response.querystring.items() if values}


def needs(
    prefix: str, action: str, params: dict[str, Any], caller: Caller, region: str
) -> list[Need]:
    """Every authorisation AWS makes for one request."""
    account = caller.account_id
    found = [Need(f"{prefix}:{action}", _resource(prefix, action, params, account, region))]
    if prefix == "iam" and action == "CreateServiceLinkedRole":
        found = [
            Need(
                "iam:CreateServiceLinkedRole",
                f"arn:aws:iam::{account}:role/aws-service-role/{params.get('AWSServiceName')}/*",
                {"iam:AWSServiceName": str(params.get("AWSServiceName", ""))},
            )
        ]
    found += _tag_on_create(prefix, action, params, account)
    found += _passed_roles(prefix, action, params, account, region)
    found += _implied(prefix, action, params)
    return found


def _resource(prefix: str, action: str, params: dict[str, Any], account: str, region: str) -> str:
    if prefix == "iam":
        if "InstanceProfileName" in params:
            return f"arn:aws:iam::{account}:instance-profile/{params['InstanceProfileName']}"
        if "RoleName" in params:
            return f"arn:aws:iam::{account}:role/{params['RoleName']}"
    if prefix == "ssm":
        name = params.get("Name") or params.get("Path") or next(iter(params.get("Names") or []), "")
        if name:
            return parameter_arn(str(name), account, region)
    return "*"


def parameter_arn(name: str, account: str, region: str) -> str:
    # AWS's public parameters (the ECS AMI ids) belong to no account.
    owner = "" if name.startswith("/aws/service/") else account
    return f"arn:aws:ssm:{region}:{owner}:parameter/{name.lstrip('/')}"


def _tag_on_create(prefix: str, action: str, params: dict[str, Any], account: str) -> list[Need]:
    """Tags given to a create call are authorised as the service's tagging action too."""
    if prefix == "ec2" and any(key.startswith("TagSpecification") for key in params):
        return [Need("ec2:CreateTags")]
    if prefix == "iam" and any(key.startswith("Tags.member") for key in params):
        tagging = {"CreateRole": "iam:TagRole", "CreateInstanceProfile": "iam:TagInstanceProfile"}
        if action in tagging:
            return [Need(tagging[action], _resource("iam", action, params, account, ""))]
    if prefix == "autoscaling" and any(key.startswith("Tags.member") for key in params):
        return [Need("autoscaling:CreateOrUpdateTags")]
    if prefix in ("ecs", "logs") and params.get("tags") and action.startswith(("Create", "Reg")):
        return [Need(f"{prefix}:TagResource")]
    if prefix == "ssm" and action == "PutParameter" and params.get("Tags"):
        return [Need("ssm:AddTagsToResource")]
    return []


def _passed_roles(
    prefix: str, action: str, params: dict[str, Any], account: str, region: str
) -> list[Need]:
    """A request that hands one of the caller's roles to a service needs `iam:PassRole` on it."""
    if prefix == "ecs" and action == "RegisterTaskDefinition":
        return [
            Need("iam:PassRole", str(arn), {"iam:PassedToService": "ecs-tasks.amazonaws.com"})
            for arn in (params.get("executionRoleArn"), params.get("taskRoleArn"))
            if arn
        ]
    if prefix == "autoscaling" and action in ("CreateAutoScalingGroup", "UpdateAutoScalingGroup"):
        template = params.get("LaunchTemplate.LaunchTemplateId") or params.get(
            "LaunchTemplate.LaunchTemplateName"
        )
        if template:
            return [Need("ec2:RunInstances")] + [
                Need("iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})
                for role in _template_roles(str(template), account, region)
            ]
    return []


def _template_roles(template: str, account: str, region: str) -> Iterator[str]:
    """The roles of the instance profile a launch template's latest version names."""
    ec2 = ec2_backends[account][region]
    found = ec2.launch_templates.get(template) or next(
        (t for t in ec2.launch_templates.values() if t.name == template), None
    )
    if found is None:
        return
    profile = (found.latest_version().data.get("IamInstanceProfile") or {}).get("Arn", "")
    name = profile.rsplit("/", 1)[-1]
    for candidate in iam_backends[account]["aws"].instance_profiles.values():
        if name and candidate.name == name:
            yield from (role.arn for role in candidate.roles)


def _implied(prefix: str, action: str, params: dict[str, Any]) -> list[Need]:
    """Target tracking creates and deletes its CloudWatch alarms with the caller's permissions."""
    if prefix != "application-autoscaling":
        return []
    if action == "PutScalingPolicy" and params.get("PolicyType") == "TargetTrackingScaling":
        return [Need("cloudwatch:PutMetricAlarm"), Need("cloudwatch:DescribeAlarms")]
    if action in ("DeleteScalingPolicy", "DeregisterScalableTarget"):
        return [Need("cloudwatch:DeleteAlarms"), Need("cloudwatch:DescribeAlarms")]
    return []


# The check


def authorize(response: BaseResponse) -> None:
    """Raise AccessDenied unless IAM would let the request's caller make it."""
    caller = caller_of(response.headers)
    match = CREDENTIAL.search(response.headers.get("Authorization", ""))
    if caller is None or match is None:
        return
    region, signing_name = match[2], match[3]
    prefix = ACTION_PREFIXES.get(signing_name, signing_name)
    action = response._get_action()
    params = request_params(response)
    if prefix == "sts" and action == "AssumeRole":
        _check_trust(caller, params)
    if not caller.role_name or (prefix == "sts" and action == "GetCallerIdentity"):
        return  # the administrator; and GetCallerIdentity needs no permission in AWS
    documents = role_policies(caller.account_id, caller.role_name)
    for need in needs(prefix, action, params, caller, region):
        decision = decide(documents, need)
        if decision != "allow":
            raise denial(prefix, caller, need, explicit=decision == "deny")


def _check_trust(caller: Caller, params: dict[str, Any]) -> None:
    role_arn = str(params.get("RoleArn", ""))
    refused = AccessDenied(
        "AccessDenied",
        f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
    )
    try:
        role = iam_backends[role_arn.split(":")[4]]["aws"].get_role_by_arn(role_arn)
    except Exception:
        raise refused from None
    need = Need("sts:AssumeRole", role_arn)
    context = {"sts:ExternalId": params["ExternalId"]} if "ExternalId" in params else {}
    trusted = False
    for statement in _listed(_document(role.assume_role_policy_document).get("Statement", [])):
        if not _principal_trusted(statement, caller.arn):
            continue
        if not _statement_applies({**statement, "Resource": "*"}, Need(need.action, "*", context)):
            continue
        if statement.get("Effect") == "Deny":
            raise refused
        trusted = True
    if not trusted:
        raise refused


def denial(prefix: str, caller: Caller, need: Need, *, explicit: bool) -> AccessDenied:
    because = (
        "with an explicit deny in an identity-based policy"
        if explicit
        else f"because no identity-based policy allows the {need.action} action"
    )
    message = (
        f"User: {caller.arn} is not authorized to perform: {need.action} "
        f"on resource: {need.resource} {because}"
    )
    if prefix == "ec2":
        return AccessDenied("UnauthorizedOperation", f"You are not authorized to perform this "
                            f"operation. {message}")  # fmt: skip
    if prefix in QUERY_PREFIXES:
        return AccessDenied("AccessDenied", message)
    return AccessDenied("AccessDeniedException", message)


def error_response(response: BaseResponse, denied: AccessDenied) -> tuple[int, dict[str, Any], Any]:
    """The refusal in the request's protocol: JSON, query/EC2 XML, or moto's own serializer."""
    content_type = response.headers.get("Content-Type", "")
    if "json" in content_type:
        body = json.dumps({"__type": denied.code, "message": denied.message})
        return 400, {"Content-Type": "application/x-amz-json-1.1",
                     "X-Amzn-ErrorType": denied.code}, body  # fmt: skip
    if "x-www-form-urlencoded" in content_type:
        error = (
            f"<Error><Type>Sender</Type><Code>{escape(denied.code)}</Code>"
            f"<Message>{escape(denied.message)}</Message></Error>"
        )
        if denied.code in ("UnauthorizedOperation", "AuthFailure"):  # EC2's error shape
            body = f"<Response><Errors>{error}</Errors><RequestID>-</RequestID></Response>"
        else:
            body = f"<ErrorResponse>{error}<RequestId>-</RequestId></ErrorResponse>"
        return 403, {"Content-Type": "text/xml"}, body
    return response.serialized(ActionResult(ServiceException(denied.code, denied.message)))


def apply() -> None:
    """Authorise every request before moto runs it."""
    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        try:
            authorize(self)
        except AccessDenied as denied:
            status, headers, body = error_response(self, denied)
            headers["status"] = str(status)
            return status, headers, body
        return original(self)

    BaseResponse.call_action = call_action  # type: ignore[method-assign]
