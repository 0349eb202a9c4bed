"""The API's OpenAPI 3.1 description, served as GET /api/v1/openapi.json.

Written by hand, beside the views it describes: tests/api/test_openapi.py checks that it documents
every route and method in urls.py and nothing else. Choices (modes, roles, statuses, instance types)
come from the code, so they cannot drift.
"""

from __future__ import annotations

import re
from typing import Any

from deployments.capacity import DEFAULT_INSTANCE_TYPE, INSTANCE_TYPES
from deployments.models import AwsAccount, Cluster, Membership, name_validator, region_validator

Schema = dict[str, Any]


def _schema(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(success: str, body: Schema, description: str, *errors: str) -> Schema:
    return {success: _json(body, description)} | {
        status: {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
        for status in errors
    }


def _error_response(status: str, description: str) -> Schema:
    response = _json(_schema("Error"), description)
    if status in ERROR_HEADERS:
        response["headers"] = ERROR_HEADERS[status]
    return response


# status → (component name, description)
ERROR_RESPONSES = {
    "400": (
        "BadRequest",
        "The request is malformed or a value is invalid: not JSON, not a JSON object, an unknown "
        "or read-only field, a value of the wrong type or out of range. `fields` says which.",
    ),
    "401": (
        "Unauthorized",
        "No bearer token, or one that is invalid or revoked. Session cookies are not accepted.",
    ),
    "403": ("Forbidden", "The token's role (viewer) only allows reading."),
    "404": (
        "NotFound",
        "This team has no such object. Other teams' objects are reported the same way.",
    ),
    "405": ("MethodNotAllowed", "The path does not support this method; see the Allow header."),
    "409": (
        "Conflict",
        "The name is already in use in this team, or the object's current state refuses the "
        "change (a cluster not ready to resize, a cluster that still runs apps); the message "
        "says which.",
    ),
    "413": ("PayloadTooLarge", "The request body is too large."),
}
ERROR_HEADERS = {
    "401": {
        "WWW-Authenticate": {
            "description": 'Bearer realm="TinyStacks API", with error="invalid_token" when a '
            "token was sent but refused.",
            "schema": {"type": "string"},
        }
    },
    "405": {
        "Allow": {"description": "The methods the path supports.", "schema": {"type": "string"}}
    },
}

NAME: Schema = {
    "type": "string",
    "maxLength": 40,
    "pattern": re.compile(name_validator.regex).pattern,
    "description": "1–40 lowercase letters, digits and hyphens; starts and ends with a letter or "
    "digit.",
}
REGION: Schema = {
    "type": "string",
    "maxLength": 25,
    "pattern": re.compile(region_validator.regex).pattern,
    "examples": ["eu-west-1"],
}
INSTANCES: Schema = {"type": "integer", "minimum": 0, "maximum": 100}
TIMESTAMP: Schema = {"type": "string", "format": "date-time", "readOnly": True}

ACCOUNT_PROPERTIES: Schema = {
    "name": NAME | {"description": "Unique within the team. " + NAME["description"]},
    "mode": {
        "type": "string",
        "enum": AwsAccount.Mode.values,
        "description": "`sandbox`: the local simulated AWS; `assume_role`: the dashboard assumes "
        "`role_arn` in your account, passing `external_id`; `ambient`: the dashboard's own "
        "credentials.",
    },
    "role_arn": {
        "type": "string",
        "maxLength": 600,
        "description": "The IAM role to assume; required when mode is `assume_role`.",
        "examples": ["arn:aws:iam::123456789012:role/TinyStacksAccess"],
    },
    "region": REGION | {"description": "The default region for this account's clusters."},
}
CLUSTER_PROPERTIES: Schema = {
    "name": NAME | {"description": "Unique among the team's clusters that are not deleted."},
    "account": {"type": "string", "description": "The name of one of the team's AWS accounts."},
    "region": REGION | {"description": "Defaults to the account's region."},
    "instance_type": {"type": "string", "enum": list(INSTANCE_TYPES)},
    "min_instances": INSTANCES | {"description": "At most desired_instances."},
    "desired_instances": INSTANCES | {"description": "At most max_instances."},
    "max_instances": INSTANCES,
}

SCHEMAS: Schema = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "What went wrong, in one sentence."},
            "fields": {
                "type": "object",
                "description": "Present when the problem is with particular fields: each "
                "field's name maps to its messages.",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
        },
        "examples": [
            {
                "error": "Missing or invalid value(s) for: min_instances.",
                "fields": {"min_instances": ["Expected an integer, got a string."]},
            }
        ],
    },
    "Account": {
        "type": "object",
        "required": [*ACCOUNT_PROPERTIES, "external_id", "verified_at", "verification_error"],
        "properties": ACCOUNT_PROPERTIES
        | {
            "external_id": {
                "type": "string",
                "readOnly": True,
                "description": "Generated by TinyStacks, unique to this account connection: "
                "require it (sts:ExternalId) in the role's trust policy.",
            },
            "verified_at": TIMESTAMP
            | {
                "type": ["string", "null"],
                "description": "When TinyStacks last reached the account; null until then.",
            },
            "verification_error": {"type": "string", "readOnly": True},
            "created_at": TIMESTAMP,
        },
    },
    "AccountCreate": {
        "type": "object",
        "required": ["name", "mode"],
        "additionalProperties": False,
        "properties": ACCOUNT_PROPERTIES
        | {"region": ACCOUNT_PROPERTIES["region"] | {"default": "us-east-1"}},
    },
    "ClusterStep": {
        "type": "object",
        "description": "One provisioning (or teardown) step and how far it got.",
        "properties": {
            "name": {"type": "string"},
            "status": {"type": "string"},
            "error": {"type": ["string", "null"]},
        },
    },
    "Cluster": {
        "type": "object",
        "required": [*CLUSTER_PROPERTIES, "status", "steps", "resources"],
        "properties": CLUSTER_PROPERTIES
        | {
            "status": {
                "type": "string",
                "enum": Cluster.Status.values,
                "readOnly": True,
                "description": "pending → provisioning → ready | failed; deleting → deleted.",
            },
            "status_reason": {"type": "string", "readOnly": True},
            "steps": {"type": "array", "items": _schema("ClusterStep"), "readOnly": True},
            "resources": {
                "type": "object",
                "readOnly": True,
                "description": "The AWS resources the cluster owns, by kind (vpc_id, "
                "cluster_arn, …).",
                "additionalProperties": True,
            },
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    },
    "ClusterCreate": {
        "type": "object",
        "required": ["name", "account"],
        "additionalProperties": False,
        "properties": CLUSTER_PROPERTIES
        | {
            "instance_type": CLUSTER_PROPERTIES["instance_type"]
            | {"default": DEFAULT_INSTANCE_TYPE},
            "min_instances": CLUSTER_PROPERTIES["min_instances"] | {"default": 2},
            "desired_instances": CLUSTER_PROPERTIES["desired_instances"] | {"default": 2},
            "max_instances": CLUSTER_PROPERTIES["max_instances"] | {"default": 4},
        },
    },
    "ClusterScale": {
        "type": "object",
        "description": "Any of these; the others keep their values.",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            name: CLUSTER_PROPERTIES[name]
            for name in ("instance_type", "min_instances", "desired_instances", "max_instances")
        },
    },
}

LOCATION: Schema = {"Location": {"description": "The cluster's URL.", "schema": {"type": "string"}}}
CLUSTER_NAME_PARAMETER: Schema = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "The cluster's name.",
    "schema": NAME,
}

PATHS: Schema = {
    "/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This description of the API",
            "tags": ["meta"],
            "security": [],
            "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 document.")},
        }
    },
    "/accounts": {
        "get": {
            "operationId": "listAccounts",
            "summary": "List the team's AWS accounts",
            "tags": ["accounts"],
            "responses": _responses(
                "200", {"type": "array", "items": _schema("Account")}, "The accounts.", "401"
            ),
        },
        "post": {
            "operationId": "createAccount",
            "summary": "Connect an AWS account",
            "description": "Records the account and queues a check that TinyStacks can reach it "
            "(see verified_at and verification_error).",
            "tags": ["accounts"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _schema("AccountCreate")}},
            },
            "responses": _responses(
                "201",
                _schema("Account"),
                "The account, with its generated external_id.",
                "400",
                "401",
                "403",
                "409",
                "413",
            ),  # fmt: skip
        },
    },
    "/clusters": {
        "get": {
            "operationId": "listClusters",
            "summary": "List the team's clusters (all but deleted ones)",
            "tags": ["clusters"],
            "responses": _responses(
                "200", {"type": "array", "items": _schema("Cluster")}, "The clusters.", "401"
            ),
        },
        "post": {
            "operationId": "createCluster",
            "summary": "Create a cluster",
            "description": "Records the cluster (status pending) and queues its provisioning; "
            "follow it with GET /clusters/{name} until status is ready or failed.",
            "tags": ["clusters"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _schema("ClusterCreate")}},
            },
            "responses": _responses(
                "201", _schema("Cluster"), "The new cluster.", "400", "401", "403", "409", "413"
            )
            | {"201": _json(_schema("Cluster"), "The new cluster.") | {"headers": LOCATION}},
        },
    },
    "/clusters/{name}": {
        "parameters": [CLUSTER_NAME_PARAMETER],
        "get": {
            "operationId": "getCluster",
            "summary": "Show a cluster, with its provisioning steps and AWS resources",
            "tags": ["clusters"],
            "responses": _responses("200", _schema("Cluster"), "The cluster.", "401", "404"),
        },
        "patch": {
            "operationId": "scaleCluster",
            "summary": "Resize a ready cluster",
            "description": "Changes the instance type and/or counts and queues applying them.",
            "tags": ["clusters"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _schema("ClusterScale")}},
            },
            "responses": _responses(
                "202",
                _schema("Cluster"),
                "Accepted: the cluster with its new settings; the change is being applied.",
                "400",
                "401",
                "403",
                "404",
                "409",
                "413",
            ),  # fmt: skip
        },
        "delete": {
            "operationId": "deleteCluster",
            "summary": "Tear a cluster down",
            "description": "Refused while apps run on it. Deleting a cluster already being "
            "deleted is accepted again.",
            "tags": ["clusters"],
            "responses": _responses(
                "202",
                _schema("Cluster"),
                "Accepted: the cluster, status deleting; teardown is queued.",
                "401",
                "403",
                "404",
                "409",
            ),  # fmt: skip
        },
    },
}

SPEC: Schema = {
    "openapi": "3.1.0",
    "info": {
        "title": "TinyStacks API",
        "version": "1.0.0",
        "description": (
            "Automate a team's AWS accounts and ECS clusters. Authenticate with a team API token "
            "(`manage.py api_token create --team <slug> --name <name> [--role deployer]`) sent as "
            "`Authorization: Bearer <token>`; a token acts for its team with its role: owner and "
            "deployer tokens may write, viewer tokens only read. Requests and responses are JSON. "
            "Every error has the body `Error`: a one-sentence `error` and, for problems with "
            "particular fields, `fields`. Work on AWS happens in the background: writes answer "
            "201 or 202 at once and the object's status shows progress. Methods a path does not "
            f"support answer 405 with an Allow header. Roles: {', '.join(Membership.Role.values)}."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearerAuth": []}],
    "tags": [
        {"name": "accounts", "description": "The AWS accounts the team's clusters run in."},
        {"name": "clusters", "description": "ECS clusters of EC2 instances."},
        {"name": "meta", "description": "About the API itself."},
    ],
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "A team API token, `tsk_` followed by 43 characters. It is shown "
                "once, when made; only its hash is stored. Revoked tokens are refused.",
            }
        },
        "schemas": SCHEMAS,
        "responses": {
            name: _error_response(status, description)
            for status, (name, description) in ERROR_RESPONSES.items()
        },
    },
}
