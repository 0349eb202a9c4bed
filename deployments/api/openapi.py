"""The API's OpenAPI 3.1 description, served as GET /api/v1/openapi.json.

Written by hand, beside the views it describes: tests/api/test_openapi.py checks that it documents
every route and method in urls.py and nothing else. Choices (modes, roles, statuses, instance types)
come from the code, so they cannot drift.
"""

from __future__ import annotations

import re
from typing import Any

from deployments.capacity import (
    DEFAULT_INSTANCE_TYPE,
    FARGATE_TASK_SIZES,
    INSTANCE_TYPES,
    MAX_TASK_CPU,
    MIN_TASK_CPU,
    MIN_TASK_MEMORY,
)
from deployments.models import (
    MAX_TASKS,
    App,
    AwsAccount,
    Cluster,
    Deployment,
    Membership,
    Release,
    ScalingSettings,
    name_validator,
    region_validator,
)
from deployments.validators import (
    ENV_NAME,
    MAX_SECRET_BYTES,
    MAX_SECRET_NAME,
    RESERVED_ENV_PREFIXES,
)

Schema = dict[str, Any]


def _pattern(regex: str | re.Pattern[str]) -> str:
    """A Python regex that must match whole values, as JSON Schema's pattern (ECMA-262, which
    matches anywhere unless anchored, and where `$` is the end of the value)."""
    source = regex if isinstance(regex, str) else regex.pattern
    return "^" + source.removeprefix(r"\A").removesuffix(r"\Z") + "$"


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
        "change (a cluster not ready to resize, a cluster that still runs apps, a rollout already "
        "in flight for the app, a deployment that has already ended, an app being deleted); the "
        "message says which.",
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
    "pattern": _pattern(name_validator.regex),
    "description": "1–40 lowercase letters, digits and hyphens; starts and ends with a letter or "
    "digit.",
}
REGION: Schema = {
    "type": "string",
    "maxLength": 25,
    "pattern": _pattern(region_validator.regex),
    "examples": ["eu-west-1"],
}
INSTANCES: Schema = {"type": "integer", "minimum": 0, "maximum": 100}
TIMESTAMP: Schema = {"type": "string", "format": "date-time", "readOnly": True}

ACCOUNT_PROPERTIES: Schema = {
    "name": NAME | {"description": "Unique within the team. " + NAME["description"]},
    "mode": {
        "type": "string",
        "enum": AwsAccount.Mode.values,
        "description": "`sandbox`: the local simulated AWS (refused where the server turns it "
        "off); `assume_role`: the dashboard assumes `role_arn` in your account, passing "
        "`external_id`; `ambient`: the dashboard's own credentials (shown, never created here: "
        "only staff connect those, in the admin).",
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

COUNT: Schema = {"type": "integer", "minimum": 0}
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
            "capacity": _schema("ClusterCapacity"),
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    },
    "ClusterCapacity": {
        "type": "object",
        "readOnly": True,
        "description": "The cluster's container instances as TinyStacks last read them from ECS "
        "(every 30 s or so while the cluster is ready; nothing before the first read or when it "
        "is not ready).",
        "required": ["instances", "zones", "read_at", "error"],
        "properties": {
            "instances": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "Registered with ECS, in all zones.",
            },
            "zones": {"type": "array", "items": _schema("ZoneCapacity")},
            "read_at": TIMESTAMP | {"type": ["string", "null"]},
            "error": {
                "type": "string",
                "description": "Why the latest read failed; the numbers "
                "above are then those of the read before. Empty when it succeeded.",
            },
        },
    },
    "ZoneCapacity": {
        "type": "object",
        "required": [
            "zone",
            "instances",
            "active",
            "draining",
            "agents_connected",
            "cpu_registered",
            "cpu_remaining",
            "memory_registered",
            "memory_remaining",
            "running_tasks",
            "pending_tasks",
        ],
        "properties": {
            "zone": {"type": "string", "examples": ["us-east-1a"]},
            "instances": COUNT,
            "active": COUNT,
            "draining": COUNT,
            "agents_connected": COUNT,
            "cpu_registered": COUNT | {"description": "CPU units (1024 = 1 vCPU)."},
            "cpu_remaining": {"type": "integer"},
            "memory_registered": COUNT | {"description": "MiB."},
            "memory_remaining": {"type": "integer"},
            "running_tasks": COUNT,
            "pending_tasks": COUNT,
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


def _default(model: type[Any], name: str) -> Any:
    return model._meta.get_field(name).get_default()


APP_SETTINGS_PROPERTIES: Schema = {
    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": _default(App, "port"),
             "description": "The port the container listens on."},
    "health_check_path": {"type": "string", "maxLength": 200, "pattern": "^(/\\S*)?$",
                          "default": _default(App, "health_check_path"),
                          "description": "A path the container's health check fetches on "
                          "localhost with curl or wget (which the image must have); empty for no "
                          "container health check."},
    "cpu": {"type": "integer", "minimum": MIN_TASK_CPU, "maximum": MAX_TASK_CPU,
            "default": _default(App, "cpu"),
            "description": "CPU units for the task; 1024 = 1 vCPU. Any value that fits the "
            "cluster's instance type (EC2 is not bound to Fargate's sizes)."},
    "memory": {
        "type": "integer", "minimum": MIN_TASK_MEMORY, "default": _default(App, "memory"),
        "description": "MiB; any value that fits the cluster's instance type. Common sizes "
        "(Fargate's): "
        + "; ".join(f"{cpu} → {m[0]}–{m[-1]}" for cpu, m in FARGATE_TASK_SIZES.items())
        + ".",
    },
    "command": {"type": "string", "maxLength": 1000, "default": "",
                "description": "Overrides the image's command; empty keeps it."},
    "min_healthy_percent": {"type": "integer", "minimum": 0, "maximum": 100,
                            "default": _default(App, "min_healthy_percent")},
    "max_percent": {"type": "integer", "minimum": 100, "maximum": 400,
                    "default": _default(App, "max_percent")},
    "circuit_breaker": {"type": "boolean", "default": _default(App, "circuit_breaker"),
                        "description": "Stop a failing rollout and roll back to the last good "
                        "release."},
    "rollout_timeout_seconds": {
        "type": "integer", "minimum": 60, "maximum": 86400,
        "default": _default(App, "rollout_timeout_seconds"),
        "description": "A rollout that makes no progress for this long ends timed_out.",
    },
}  # fmt: skip
CONFIG_VARS: Schema = {
    "type": "object",
    "description": "Environment variables, NAME → value. Names: letters, digits and "
    "underscores, not starting with a digit, not starting with "
    f"{' or '.join(RESERVED_ENV_PREFIXES)}; values are strings. At most 48 KiB in all.",
    "propertyNames": {"pattern": _pattern(ENV_NAME)},
    "additionalProperties": {"type": "string"},
    "examples": [{"DATABASE_URL": "postgres://db/shop", "GREETING": "hello"}],
}
SCALING_PROPERTIES: Schema = {
    "min_tasks": COUNT | {"maximum": MAX_TASKS, "default": _default(ScalingSettings, "min_tasks"),
                          "description": "At most max_tasks."},
    "max_tasks": COUNT | {"maximum": MAX_TASKS, "default": _default(ScalingSettings, "max_tasks")},
    "cpu_target": {"type": "integer", "minimum": 1, "maximum": 100,
                   "default": _default(ScalingSettings, "cpu_target"),
                   "description": "Average CPU utilisation (%) autoscaling keeps the tasks at."},
}  # fmt: skip
DESIRED_COUNT: Schema = COUNT | {
    "maximum": MAX_TASKS,
    "default": _default(App, "desired_count"),
    "description": "How many tasks run when autoscaling is off.",
}
VERSION: Schema = {"type": "integer", "minimum": 1, "description": "v1, v2, … per app."}

ROLLOUT_SCHEMAS: Schema = {
        "App": {
            "type": "object",
            "required": [
                "name", "cluster", "port", "health_check_path", "cpu", "memory", "command",
                "desired_count", "min_healthy_percent", "max_percent", "circuit_breaker",
                "rollout_timeout_seconds", "config_var_names", "secret_names", "scaling",
                "live_release", "active_deployment",
            ],
            "properties": {"name": NAME, "cluster": {"type": "string"}}
            | APP_SETTINGS_PROPERTIES
            | {
                "desired_count": DESIRED_COUNT,
                "config_var_names": {
                    "type": "array", "items": {"type": "string"}, "readOnly": True,
                    "description": "The names of the config vars, sorted. Values are never "
                    "shown: they may be secrets.",
                },
                "secret_names": {
                    "type": "array", "items": {"type": "string"}, "readOnly": True,
                    "description": "The names of the secrets, sorted; set and remove them with "
                    "/apps/{name}/secrets/{secret_name}. Their values are never shown.",
                },
                "scaling": _schema("Scaling") | {"readOnly": True},
                "live_release": VERSION | {
                    "type": ["integer", "null"], "readOnly": True,
                    "description": "The version of the release the app runs (that of its "
                    "latest successful rollout); null before the first one.",
                },
                "active_deployment": {
                    "type": ["integer", "null"], "readOnly": True,
                    "description": "The id of the rollout in flight, if any: "
                    "GET /deployments/{id} follows it, POST /deployments/{id}/cancel stops it.",
                },
                "service_arn": {"type": "string", "readOnly": True,
                                "description": "Empty until the first deploy creates it."},
                "created_at": TIMESTAMP,
                "updated_at": TIMESTAMP,
            },
        },
        "AppCreate": {
            "type": "object",
            "required": ["name", "cluster"],
            "additionalProperties": False,
            "properties": {
                "name": NAME | {"description": "Unique within the team. " + NAME["description"]},
                "cluster": {"type": "string", "description": "The name of one of the team's "
                            "clusters. The app's ECS service is created by its first deploy."},
            }
            | APP_SETTINGS_PROPERTIES
            | {"desired_count": DESIRED_COUNT, "config_vars": CONFIG_VARS},
        },
        "AppUpdate": {
            "type": "object",
            "description": "Any of these; the others keep their values. Settings that go into "
            "the task definition (port, health check, cpu, memory, command) take effect with "
            "the next release. Config vars are set with PUT /apps/{name}/config, the task count "
            "with PUT /apps/{name}/scaling.",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                name: {k: v for k, v in schema.items() if k != "default"}
                for name, schema in APP_SETTINGS_PROPERTIES.items()
            },
        },
        "Scaling": {
            "type": "object",
            "required": ["autoscaling", "min_tasks", "max_tasks", "cpu_target", "desired_count",
                         "applied_at"],
            "properties": {
                "autoscaling": {"type": "boolean", "description": "true: Application Auto "
                                "Scaling keeps average CPU at cpu_target with min_tasks to "
                                "max_tasks tasks; false: desired_count tasks."},
            }
            | SCALING_PROPERTIES
            | {
                "desired_count": DESIRED_COUNT,
                "applied_at": TIMESTAMP | {
                    "type": ["string", "null"],
                    "description": "When the settings were last applied to the ECS service; "
                    "null until then (the first deploy applies them).",
                },
            },
        },
        "ScalingUpdate": {
            "oneOf": [
                {
                    "type": "object",
                    "title": "Autoscaling on CPU",
                    "required": ["autoscaling"],
                    "additionalProperties": False,
                    "properties": {"autoscaling": {"const": True}}
                    | {name: {k: v for k, v in schema.items() if k != "default"}
                       for name, schema in SCALING_PROPERTIES.items()},
                },
                {
                    "type": "object",
                    "title": "A fixed number of tasks",
                    "required": ["autoscaling"],
                    "additionalProperties": False,
                    "properties": {
                        "autoscaling": {"const": False},
                        "desired_count": {k: v for k, v in DESIRED_COUNT.items()
                                          if k != "default"},
                    },
                },
            ],
            "description": "Fields left out keep their current values.",
            "examples": [
                {"autoscaling": True, "min_tasks": 2, "max_tasks": 8, "cpu_target": 60},
                {"autoscaling": False, "desired_count": 3},
            ],
        },
        "Release": {
            "type": "object",
            "description": "An immutable, numbered snapshot of what the app runs.",
            "required": ["version", "image", "kind", "task_definition_arn", "created_by",
                         "created_at", "description"],
            "properties": {
                "version": VERSION,
                "image": {"type": "string", "examples": ["nginx:1.27"]},
                "kind": {"type": "string", "enum": Release.Kind.values,
                         "description": "deploy: a new image; config: new config vars; "
                         "rollback: an earlier release's image and config again."},
                "task_definition_arn": {"type": "string", "description": "Empty until the "
                                        "rollout has registered it; a rollback reuses the "
                                        "earlier release's while it is still active."},
                "created_by": {"type": ["string", "null"], "description": "The username of "
                               "who made it; null when made with an API token or the CLI."},
                "created_at": TIMESTAMP,
                "description": {"type": "string", "maxLength": 500},
                "rollback_of": VERSION | {"type": ["integer", "null"],
                                          "description": "For a rollback, the version it copies."},
            },
        },
        "DeploymentEvent": {
            "type": "object",
            "required": ["id", "at", "message"],
            "properties": {
                "id": {"type": "integer", "description": "Grows with every event recorded: pass "
                       "the last one seen as events_after to get only newer ones."},
                "at": TIMESTAMP,
                "message": {"type": "string"},
            },
        },
        "Deployment": {
            "type": "object",
            "description": "One rollout of one release, followed until ECS says how it ended.",
            "required": ["id", "status", "release", "desired", "running", "pending", "failed",
                         "rollout_state", "reason", "events", "more_events"],
            "properties": {
                "id": {"type": "integer"},
                "app": NAME,
                "status": {
                    "type": "string", "enum": Deployment.Status.values,
                    "description": "queued → registering → updating → in_progress → succeeded | "
                    "failed | rolled_back | timed_out | cancelled. rolled_back: ECS's circuit "
                    "breaker rolled back, the previous release runs again.",
                },
                "release": VERSION | {"description": "The version being rolled out."},
                "desired": COUNT,
                "running": COUNT | {"description": "Tasks of this release running."},
                "pending": COUNT,
                "failed": COUNT,
                "rollout_state": {"type": ["string", "null"],
                                  "enum": ["IN_PROGRESS", "COMPLETED", "FAILED", None],
                                  "description": "ECS's rolloutState; null until ECS has one."},
                "reason": {"type": "string", "description": "ECS's rolloutStateReason, or why "
                           "TinyStacks ended the rollout."},
                "created_at": TIMESTAMP,
                "started_at": TIMESTAMP | {"type": ["string", "null"]},
                "finished_at": TIMESTAMP | {"type": ["string", "null"]},
                "events": {"type": "array", "items": _schema("DeploymentEvent"),
                           "description": "ECS service events and TinyStacks' own steps in the "
                           "order they were recorded: up to 100 after events_after."},
                "more_events": {"type": "boolean", "description": "More events follow the "
                                "last one listed: ask again with events_after set to its id."},
            },
        },
        "Rollout": {
            "type": "object",
            "description": "A new release and the deployment rolling it out.",
            "required": ["release", "deployment"],
            "properties": {"release": _schema("Release"), "deployment": _schema("Deployment")},
        },
        "Deploy": {
            "type": "object",
            "required": ["image"],
            "additionalProperties": False,
            "properties": {
                "image": {"type": "string", "maxLength": 1024,
                          "description": "A Docker image reference.",
                          "examples": ["nginx:1.27", "ghcr.io/acme/web:2.3.1"]},
                "description": {"type": "string", "maxLength": 500,
                                "description": "Shown with the release."},
            },
        },
        "Rollback": {
            "type": "object",
            "required": ["version"],
            "additionalProperties": False,
            "properties": {"version": VERSION | {"description": "The release to go back to."}},
        },
        "ConfigVars": {
            "type": "object",
            "required": ["config_vars"],
            "additionalProperties": False,
            "properties": {
                "config_vars": CONFIG_VARS | {
                    "description": "The complete new set: names left out are removed. "
                    + CONFIG_VARS["description"]
                }
            },
        },
        "SecretValue": {
            "type": "object",
            "required": ["value"],
            "additionalProperties": False,
            "properties": {
                "value": {
                    "type": "string", "minLength": 1, "maxLength": MAX_SECRET_BYTES,
                    "writeOnly": True,
                    "description": f"At most {MAX_SECRET_BYTES} bytes (UTF-8), no null "
                    "characters. Encrypted at once; never shown again, in any answer.",
                },
            },
            "examples": [{"value": "correct horse battery staple"}],
        },
        "Job": {
            "type": "object",
            "required": ["id", "kind", "status"],
            "properties": {
                "id": {"type": "integer"},
                "kind": {"type": "string", "examples": ["delete_app"]},
                "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
                "error": {"type": "string"},
                "created_at": TIMESTAMP,
                "finished_at": TIMESTAMP | {"type": ["string", "null"]},
            },
        },
        "Cancelled": {
            "type": "object",
            "required": ["deployment", "rollback"],
            "properties": {
                "deployment": _schema("Deployment"),
                "rollback": {
                    "oneOf": [_schema("Rollout"), {"type": "null"}],
                    "description": "The rollback to the live release it started; null when "
                    "the app has never had a successful rollout.",
                },
            },
        },
}  # fmt: skip

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

APP_NAME_PARAMETER: Schema = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "The app's name.",
    "schema": NAME,
}
SECRET_NAME_PARAMETER: Schema = {
    "name": "secret_name",
    "in": "path",
    "required": True,
    "description": "The secret's name: the environment variable the container sees.",
    "schema": {"type": "string", "maxLength": MAX_SECRET_NAME,
               "pattern": _pattern(ENV_NAME), "examples": ["DATABASE_PASSWORD"]},
}  # fmt: skip
DEPLOYMENT_ID_PARAMETER: Schema = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The deployment's id (in the answer to a deploy, a rollback or a config "
    "change, and as an app's active_deployment).",
    "schema": {"type": "integer", "minimum": 1},
}
EVENTS_AFTER_PARAMETER: Schema = {
    "name": "events_after",
    "in": "query",
    "required": False,
    "description": "List only the events recorded after the event with this id (default 0: "
    "from the first). A client following a rollout passes the last id it has seen.",
    "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
}
ROLLOUT_ACCEPTED: Schema = _json(
    _schema("Rollout"),
    "Accepted: the new release and its deployment, queued. Follow it with "
    "GET /deployments/{id} (the Location header) until its status is final.",
) | {"headers": {"Location": {"description": "The deployment's URL.",
                              "schema": {"type": "string"}}}}  # fmt: skip
WRITE_ERRORS = ("400", "401", "403", "404", "409", "413")


def _body(schema: str) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": _schema(schema)}}}


def _rollout_responses(*errors: str) -> Schema:
    return _responses("202", _schema("Rollout"), "", *errors) | {"202": ROLLOUT_ACCEPTED}


APP_PATHS: Schema = {
    "/apps": {
        "get": {
            "operationId": "listApps",
            "summary": "List the team's apps",
            "tags": ["apps"],
            "responses": _responses(
                "200", {"type": "array", "items": _schema("App")}, "The apps, by name.", "401"
            ),
        },
        "post": {
            "operationId": "createApp",
            "summary": "Create an app on one of the team's clusters",
            "description": "Records the app and its scaling settings (autoscaling 2–5 tasks at "
            "75 % CPU). Nothing runs until its first deploy, which creates the ECS service.",
            "tags": ["apps"],
            "requestBody": _body("AppCreate"),
            "responses": _responses(
                "201", _schema("App"), "The new app.", "400", "401", "403", "409", "413"
            )
            | {
                "201": _json(_schema("App"), "The new app.")
                | {
                    "headers": {
                        "Location": {"description": "The app's URL.", "schema": {"type": "string"}}
                    }
                }
            },  # fmt: skip
        },
    },
    "/apps/{name}": {
        "parameters": [APP_NAME_PARAMETER],
        "get": {
            "operationId": "getApp",
            "summary": "Show an app: settings, scaling, live release, rollout in flight",
            "tags": ["apps"],
            "responses": _responses("200", _schema("App"), "The app.", "401", "404"),
        },
        "patch": {
            "operationId": "updateApp",
            "summary": "Change an app's settings",
            "tags": ["apps"],
            "requestBody": _body("AppUpdate"),
            "responses": _responses(
                "200", _schema("App"), "The app with its new settings.", *WRITE_ERRORS
            ),
        },
        "delete": {
            "operationId": "deleteApp",
            "summary": "Tear an app down",
            "description": "Refused (409) while a rollout is in flight. Queues a job that "
            "deletes the ECS service, its task definitions and logs; the app answers 404 once "
            "it has finished. Deleting an app already being deleted answers the same job.",
            "tags": ["apps"],
            "responses": _responses(
                "202",
                {"type": "object", "required": ["job"], "properties": {"job": _schema("Job")}},
                "Accepted: the teardown job.",
                "401",
                "403",
                "404",
                "409",
            ),  # fmt: skip
        },
    },
    "/apps/{name}/deploys": {
        "parameters": [APP_NAME_PARAMETER],
        "post": {
            "operationId": "deployApp",
            "summary": "Deploy an image",
            "description": "Makes release vN+1 of the image with the app's current settings and "
            "config vars, and rolls it out. One rollout per app at a time: 409 while another is "
            "in flight, naming it.",
            "tags": ["releases"],
            "requestBody": _body("Deploy"),
            "responses": _rollout_responses(*WRITE_ERRORS),
        },
    },
    "/apps/{name}/releases": {
        "parameters": [APP_NAME_PARAMETER],
        "get": {
            "operationId": "listReleases",
            "summary": "List an app's releases, newest first",
            "tags": ["releases"],
            "responses": _responses(
                "200",
                {"type": "array", "items": _schema("Release")},
                "The releases.",
                "401",
                "404",
            ),  # fmt: skip
        },
    },
    "/apps/{name}/rollback": {
        "parameters": [APP_NAME_PARAMETER],
        "post": {
            "operationId": "rollbackApp",
            "summary": "Roll back to an earlier release",
            "description": "Makes a new release (kind rollback) with that release's image and "
            "config vars, reusing its task definition while it is still active, and rolls it "
            "out. 400 when there is no such release or the app runs it already.",
            "tags": ["releases"],
            "requestBody": _body("Rollback"),
            "responses": _rollout_responses(*WRITE_ERRORS),
        },
    },
    "/apps/{name}/config": {
        "parameters": [APP_NAME_PARAMETER],
        "put": {
            "operationId": "setConfigVars",
            "summary": "Replace an app's config vars",
            "description": "Makes a new release (kind config) of the live image with these "
            "environment variables and rolls it out. 409 before the app's first successful "
            "deploy.",
            "tags": ["releases"],
            "requestBody": _body("ConfigVars"),
            "responses": _rollout_responses(*WRITE_ERRORS),
        },
    },
    "/apps/{name}/secrets/{secret_name}": {
        "parameters": [APP_NAME_PARAMETER, SECRET_NAME_PARAMETER],
        "put": {
            "operationId": "setSecret",
            "summary": "Add or replace a secret",
            "description": "Encrypts the value, then makes a new release (kind config) of the "
            "live image with it and rolls it out; ECS reads it from an SSM Parameter Store "
            "SecureString. The answer names the secret, never its value. 400 when the name or "
            "the value is invalid (`fields.name`, `fields.value`) or a plain config var has the "
            "name; 409 before the app's first successful deploy.",
            "tags": ["releases"],
            "requestBody": _body("SecretValue"),
            "responses": _rollout_responses(*WRITE_ERRORS),
        },
        "delete": {
            "operationId": "removeSecret",
            "summary": "Remove a secret",
            "description": "Makes a new release (kind config) of the live image without it and "
            "rolls it out. No request body. 400 when the app has no secret of that name "
            "(`fields.name`); 409 before the app's first successful deploy.",
            "tags": ["releases"],
            "responses": _rollout_responses("400", "401", "403", "404", "409"),
        },
    },
    "/apps/{name}/scaling": {
        "parameters": [APP_NAME_PARAMETER],
        "put": {
            "operationId": "setScaling",
            "summary": "Autoscale on CPU, or run a fixed number of tasks",
            "description": "Saved at once and applied to the ECS service in the background "
            "(by the first deploy when there is no service yet); applied_at says when.",
            "tags": ["apps"],
            "requestBody": _body("ScalingUpdate"),
            "responses": _responses(
                "200", _schema("Scaling"), "The app's scaling settings.", *WRITE_ERRORS
            ),
        },
    },
    "/deployments/{id}": {
        "parameters": [DEPLOYMENT_ID_PARAMETER],
        "get": {
            "operationId": "getDeployment",
            "summary": "Follow a rollout: status, task counts, ECS rollout state and events",
            "tags": ["releases"],
            "parameters": [EVENTS_AFTER_PARAMETER],
            "responses": _responses(
                "200", _schema("Deployment"), "The deployment.", "400", "401", "404"
            ),
        },
    },
    "/deployments/{id}/cancel": {
        "parameters": [DEPLOYMENT_ID_PARAMETER],
        "post": {
            "operationId": "cancelDeployment",
            "summary": "Cancel a rollout and roll back to the live release",
            "description": "Stops following the rollout (status cancelled) and rolls back to "
            "the app's live release, if it has one. No request body. 409 when the rollout has "
            "already ended.",
            "tags": ["releases"],
            "responses": _responses(
                "202",
                _schema("Cancelled"),
                "Accepted: the cancelled deployment and the rollback it started.",
                "400",
                "401",
                "403",
                "404",
                "409",
                "413",
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
            "Automate a team's AWS accounts, ECS clusters and apps: deploy images, follow "
            "rollouts, roll back, set config vars, secrets and scaling. Authenticate with a team "
            "API token (`manage.py api_token create --team <slug> --name <name> [--role "
            "deployer]`) sent as `Authorization: Bearer <token>`; a token acts for its team with "
            "its role: owner and deployer tokens may write, viewer tokens only read. Requests and "
            "responses are JSON. "
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
        {"name": "apps", "description": "Apps (ECS services) on the team's clusters."},
        {
            "name": "releases",
            "description": "Numbered, immutable releases of an app and the rollouts (deployments) "
            "that put them live: deploy, roll back, change config vars and secrets, follow, "
            "cancel.",
        },
        {"name": "meta", "description": "About the API itself."},
    ],
    "paths": PATHS | APP_PATHS,
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "A team API token, `tsk_` followed by 43 characters. It is shown "
                "once, when made; only its hash is stored. Revoked tokens are refused.",
            }
        },
        "schemas": SCHEMAS | ROLLOUT_SCHEMAS,
        "responses": {
            name: _error_response(status, description)
            for status, (name, description) in ERROR_RESPONSES.items()
        },
    },
}
