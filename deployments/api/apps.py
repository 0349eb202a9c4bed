"""/apps: apps (ECS services) on the team's clusters, their settings and scaling."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.urls import reverse
from ninja import Body as RequestBody
from ninja import Router, Status
from pydantic import ConfigDict, Discriminator, Tag

from deployments import selectors, services
from deployments.api.auth import ApiRequest
from deployments.api.errors import ApiError, FieldErrors
from deployments.api.lookups import TeamApp
from deployments.api.schemas import (
    NAME,
    READ_ONLY,
    Body,
    Changes,
    Job,
    OptionalTimestamp,
    Out,
    Text,
    Timestamp,
    default,
    documented,
    located,
    pattern,
    responses,
    text_error,
)
from deployments.capacity import FARGATE_TASK_SIZES, MAX_TASK_CPU, MIN_TASK_CPU, MIN_TASK_MEMORY
from deployments.models import MAX_TASKS, ScalingSettings
from deployments.models import App as AppRow
from deployments.services import APP_SETTINGS
from deployments.validators import ENV_NAME, RESERVED_ENV_PREFIXES, validate_config_vars

router = Router(tags=["apps"])

# The settings' documentation, shared by the answer, the creation and the change.
PORT = {"minimum": 1, "maximum": 65535, "description": "The port the container listens on."}
HEALTH_CHECK_PATH = {
    "maxLength": 200,
    "pattern": "^(/\\S*)?$",
    "description": "A path the container's health check fetches on localhost with curl or wget "
    "(which the image must have); empty for no container health check.",
}
CPU = {
    "minimum": MIN_TASK_CPU,
    "maximum": MAX_TASK_CPU,
    "description": "CPU units for the task; 1024 = 1 vCPU. Any value that fits the cluster's "
    "instance type (EC2 is not bound to Fargate's sizes).",
}
MEMORY = {
    "minimum": MIN_TASK_MEMORY,
    "description": "MiB; any value that fits the cluster's instance type. Common sizes "
    "(Fargate's): "
    + "; ".join(f"{cpu} → {m[0]}–{m[-1]}" for cpu, m in FARGATE_TASK_SIZES.items())
    + ".",
}
COMMAND = {"maxLength": 1000, "description": "Overrides the image's command; empty keeps it."}
MIN_HEALTHY_PERCENT = {"minimum": 0, "maximum": 100}
MAX_PERCENT = {"minimum": 100, "maximum": 400}
CIRCUIT_BREAKER = {"description": "Stop a failing rollout and roll back to the last good release."}
ROLLOUT_TIMEOUT = {
    "minimum": 60,
    "maximum": 86400,
    "description": "A rollout that makes no progress for this long ends timed_out.",
}
DESIRED_COUNT = {
    "minimum": 0,
    "maximum": MAX_TASKS,
    "description": "How many tasks run when autoscaling is off.",
}
MIN_TASKS_BOUNDS = {"minimum": 0, "maximum": MAX_TASKS, "description": "At most max_tasks."}
MAX_TASKS_BOUNDS = {"minimum": 0, "maximum": MAX_TASKS}
CPU_TARGET = {
    "minimum": 1,
    "maximum": 100,
    "description": "Average CPU utilisation (%) autoscaling keeps the tasks at.",
}
CONFIG_VARS: dict[str, Any] = {
    "description": "Environment variables, NAME → value. Names: letters, digits and "
    "underscores, not starting with a digit, not starting with "
    f"{' or '.join(RESERVED_ENV_PREFIXES)}; values are strings. At most 48 KiB in all.",
    "propertyNames": {"pattern": pattern(ENV_NAME)},
    "additionalProperties": {"type": "string"},
    "examples": [{"DATABASE_URL": "postgres://db/shop", "GREETING": "hello"}],
}


class Scaling(Out):
    autoscaling: bool = documented(
        description="true: Application Auto Scaling keeps average CPU at cpu_target with "
        "min_tasks to max_tasks tasks; false: desired_count tasks."
    )
    min_tasks: int = documented(**MIN_TASKS_BOUNDS)
    max_tasks: int = documented(**MAX_TASKS_BOUNDS)
    cpu_target: int = documented(**CPU_TARGET)
    desired_count: int = documented(**DESIRED_COUNT)
    applied_at: OptionalTimestamp = documented(
        description="When the settings were last applied to the ECS service; null until then "
        "(the first deploy applies them)."
    )

    @staticmethod
    def resolve_autoscaling(scaling: ScalingSettings) -> bool:
        return scaling.autoscaling_enabled

    @staticmethod
    def resolve_desired_count(scaling: ScalingSettings) -> int:
        return scaling.app.desired_count


class App(Out):
    """An app as `selectors.apps_with_status` reads it. Values of config vars and secrets are
    never shown: only their names."""

    name: str = documented(**NAME)
    cluster: str
    port: int = documented(**PORT)
    health_check_path: str = documented(**HEALTH_CHECK_PATH)
    cpu: int = documented(**CPU)
    memory: int = documented(**MEMORY)
    command: str = documented(**COMMAND)
    desired_count: int = documented(**DESIRED_COUNT)
    min_healthy_percent: int = documented(**MIN_HEALTHY_PERCENT)
    max_percent: int = documented(**MAX_PERCENT)
    circuit_breaker: bool = documented(**CIRCUIT_BREAKER)
    rollout_timeout_seconds: int = documented(**ROLLOUT_TIMEOUT)
    config_var_names: list[str] = documented(
        readOnly=True,
        description="The names of the config vars, sorted. Values are never shown: they may be "
        "secrets.",
    )
    secret_names: list[str] = documented(
        readOnly=True,
        description="The names of the secrets, sorted; set and remove them with "
        "/apps/{name}/secrets/{secret_name}. Their values are never shown.",
    )
    scaling: Scaling
    live_release: int | None = documented(
        minimum=1,
        readOnly=True,
        description="The version of the release the app runs (that of its latest successful "
        "rollout); null before the first one.",
    )
    active_deployment: int | None = documented(
        readOnly=True,
        description="The id of the rollout in flight, if any: GET /deployments/{id} follows it, "
        "POST /deployments/{id}/cancel stops it.",
    )
    service_arn: str = documented(
        readOnly=True, description="Empty until the first deploy creates it."
    )
    created_at: Timestamp
    updated_at: Timestamp

    @staticmethod
    def resolve_cluster(app: AppRow) -> str:
        return app.cluster.name

    @staticmethod
    def resolve_config_var_names(app: AppRow) -> list[str]:
        return sorted(app.config_vars)

    @staticmethod
    def resolve_secret_names(app: AppRow) -> list[str]:
        return sorted(app.secrets)

    @staticmethod
    def resolve_live_release(app: AppRow) -> int | None:
        return getattr(app, "live_version", None)

    @staticmethod
    def resolve_active_deployment(app: AppRow) -> int | None:
        return getattr(app, "active_deployment_id", None)


APP_READ_ONLY = dict.fromkeys(
    ("live_release", "active_deployment", "config_var_names", "service_arn", "created_at",
     "updated_at"),
    READ_ONLY,
) | {
    "scaling": "Set scaling with PUT /apps/{name}/scaling.",
    "secret_names": "Set secrets with PUT /apps/{name}/secrets/{secret_name}.",
}  # fmt: skip


class AppCreate(Body):
    name: Text = documented(
        **NAME | {"description": "Unique within the team. " + NAME["description"]}
    )
    cluster: Text = documented(
        description="The name of one of the team's clusters. The app's ECS service is created by "
        "its first deploy."
    )
    port: int = documented(default(AppRow, "port"), **PORT)
    health_check_path: Text = documented(default(AppRow, "health_check_path"), **HEALTH_CHECK_PATH)
    cpu: int = documented(default(AppRow, "cpu"), **CPU)
    memory: int = documented(default(AppRow, "memory"), **MEMORY)
    command: Text = documented("", **COMMAND)
    min_healthy_percent: int = documented(
        default(AppRow, "min_healthy_percent"), **MIN_HEALTHY_PERCENT
    )
    max_percent: int = documented(default(AppRow, "max_percent"), **MAX_PERCENT)
    circuit_breaker: bool = documented(default(AppRow, "circuit_breaker"), **CIRCUIT_BREAKER)
    rollout_timeout_seconds: int = documented(
        default(AppRow, "rollout_timeout_seconds"), **ROLLOUT_TIMEOUT
    )
    desired_count: int = documented(default(AppRow, "desired_count"), **DESIRED_COUNT)
    config_vars: dict[str, Any] = documented(None, **CONFIG_VARS)
    read_only: ClassVar = APP_READ_ONLY


class AppUpdate(Changes):
    """Any of these; the others keep their values. Settings that go into the task definition
    (port, health check, cpu, memory, command) take effect with the next release. Config vars are
    set with PUT /apps/{name}/config, the task count with PUT /apps/{name}/scaling."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})
    port: int = documented(None, **PORT)
    health_check_path: Text = documented(None, **HEALTH_CHECK_PATH)
    cpu: int = documented(None, **CPU)
    memory: int = documented(None, **MEMORY)
    command: Text = documented(None, **COMMAND)
    min_healthy_percent: int = documented(None, **MIN_HEALTHY_PERCENT)
    max_percent: int = documented(None, **MAX_PERCENT)
    circuit_breaker: bool = documented(None, **CIRCUIT_BREAKER)
    rollout_timeout_seconds: int = documented(None, **ROLLOUT_TIMEOUT)
    read_only: ClassVar = APP_READ_ONLY | {
        "name": "An app's name cannot be changed; create another app.",
        "cluster": "An app's cluster cannot be changed; create the app on the other cluster.",
        "desired_count": "Set the task count with PUT /apps/{name}/scaling.",
        "config_vars": "Set config vars with PUT /apps/{name}/config, which makes a new release.",
    }


class AutoscalingUpdate(Changes):
    model_config = ConfigDict(title="Autoscaling on CPU")
    autoscaling: Literal[True]
    min_tasks: int = documented(None, **MIN_TASKS_BOUNDS)
    max_tasks: int = documented(None, **MAX_TASKS_BOUNDS)
    cpu_target: int = documented(None, **CPU_TARGET)
    read_only: ClassVar = {"desired_count": "Only with autoscaling false."}


class FixedScalingUpdate(Changes):
    model_config = ConfigDict(title="A fixed number of tasks")
    autoscaling: Literal[False]
    desired_count: int = documented(None, **DESIRED_COUNT)
    read_only: ClassVar = dict.fromkeys(
        ("min_tasks", "max_tasks", "cpu_target"), "Only with autoscaling true."
    )


def _scaling_shape(data: Any) -> str | None:
    """Which of the two bodies `data` is, by its "autoscaling" (a JSON boolean, not 0 or 1)."""
    value = data.get("autoscaling") if isinstance(data, dict) else None
    if not isinstance(value, bool):
        return None
    return AutoscalingUpdate.__name__ if value else FixedScalingUpdate.__name__


# Fields left out keep their current values.
ScalingUpdate = Annotated[
    Annotated[AutoscalingUpdate, Tag(AutoscalingUpdate.__name__)]
    | Annotated[FixedScalingUpdate, Tag(FixedScalingUpdate.__name__)],
    Discriminator(
        _scaling_shape,
        custom_error_type="tag",
        custom_error_message="Send autoscaling: true (with min_tasks, max_tasks, cpu_target) or "
        "false (with desired_count).",
        custom_error_context={"field": "autoscaling", "expected": "a boolean"},
    ),
]


class Teardown(Out):
    job: Job


def check_config_vars(config_vars: dict[str, Any]) -> None:
    """The validators' rules (names, reserved prefixes, size), reported under "config_vars"."""
    problem = next(
        (
            f"{name!r}: {error}"
            for name, value in config_vars.items()
            for text in (name, value)
            if isinstance(text, str) and (error := text_error(text))
        ),
        None,
    )
    if problem is None:
        try:
            validate_config_vars(config_vars)
        except ValidationError as error:
            problem = " ".join(error.messages)
    if problem is not None:
        raise ApiError(400, problem, {"config_vars": [problem]})


def _check_task_range(fields: dict[str, Any], scaling: ScalingSettings) -> None:
    low = fields.get("min_tasks", scaling.min_tasks)
    high = fields.get("max_tasks", scaling.max_tasks)
    if 0 <= low <= MAX_TASKS and 0 <= high <= MAX_TASKS and low > high:
        errors: FieldErrors = (
            {"min_tasks": [f"Must be at most max_tasks ({high})."]}
            if "min_tasks" in fields
            else {"max_tasks": [f"Must be at least min_tasks ({low})."]}
        )
        raise ApiError(400, "Scaling must satisfy min_tasks ≤ max_tasks.", errors)


@router.get(
    "/apps",
    response=responses(200, list[App], 401),
    url_name="apps",
    operation_id="listApps",
    summary="List the team's apps",
)
def app_list(request: ApiRequest) -> object:
    return selectors.apps_with_status(request.team)


@router.post(
    "/apps",
    response=responses(201, App, 400, 401, 403, 409, 413),
    operation_id="createApp",
    openapi_extra=located(201, "The app's"),
    summary="Create an app on one of the team's clusters",
    description="Records the app and its scaling settings (autoscaling 2–5 tasks at 75 % CPU). "
    "Nothing runs until its first deploy, which creates the ECS service.",
)
def app_create(request: ApiRequest, payload: AppCreate, response: HttpResponse) -> object:
    fields = payload.changes()
    if "config_vars" in fields:
        check_config_vars(fields["config_vars"])
    cluster_name = fields.pop("cluster")
    cluster = selectors.clusters_of(request.team).filter(name=cluster_name).first()
    if cluster is None or cluster.status == cluster.Status.DELETING:
        message = f"This team has no cluster named {cluster_name}."
        if cluster is not None:
            message = f"Cluster {cluster_name} is being deleted."
        raise ApiError(400, message, {"cluster": [message]})
    if selectors.apps_with_status(request.team).filter(name=fields["name"]).exists():
        raise ApiError(
            409,
            f"This team already has an app named {fields['name']}.",
            {"name": ["An app of this name already exists in this team."]},
        )
    app = services.app_create(
        team=request.team, actor=None, cluster=cluster, ip_address=request.ip_address, **fields
    )
    response["Location"] = reverse("api:app", args=[app.name])
    return Status(201, selectors.app_with_status(request.team, app.name))


@router.get(
    "/apps/{str:name}",
    response=responses(200, App, 401, 404),
    url_name="app",
    operation_id="getApp",
    summary="Show an app: settings, scaling, live release, rollout in flight",
)
def app_get(request: ApiRequest, name: TeamApp) -> object:
    return name


@router.patch(
    "/apps/{str:name}",
    response=responses(200, App, 400, 401, 403, 404, 409, 413),
    operation_id="updateApp",
    summary="Change an app's settings",
)
def app_update(request: ApiRequest, name: TeamApp, payload: AppUpdate) -> object:
    changes = payload.changes()
    if not changes:
        raise ApiError(400, f"Send at least one of: {', '.join(APP_SETTINGS)}.")
    services.app_update(app=name, actor=None, ip_address=request.ip_address, **changes)
    return selectors.app_with_status(request.team, name.name)


@router.delete(
    "/apps/{str:name}",
    response=responses(202, Teardown, 401, 403, 404, 409),
    operation_id="deleteApp",
    summary="Tear an app down",
    description="Refused (409) while a rollout is in flight. Queues a job that deletes the ECS "
    "service, its task definitions and logs; the app answers 404 once it has finished. Deleting "
    "an app already being deleted answers the same job.",
)
def app_delete(request: ApiRequest, name: TeamApp) -> object:
    job = selectors.app_deletion_job(name)  # deleting twice is accepted, and queues nothing
    if job is None:
        job = services.app_delete(app=name, actor=None, ip_address=request.ip_address)
    return Status(202, {"job": job})


@router.put(
    "/apps/{str:name}/scaling",
    response=responses(200, Scaling, 400, 401, 403, 404, 409, 413),
    url_name="app-scaling",
    operation_id="setScaling",
    summary="Autoscale on CPU, or run a fixed number of tasks",
    description="Saved at once and applied to the ECS service in the background (by the first "
    "deploy when there is no service yet); applied_at says when.",
)
def app_scaling(request: ApiRequest, name: TeamApp, payload: RequestBody[ScalingUpdate]) -> object:
    fields = payload.changes()
    fields["autoscaling_enabled"] = fields.pop("autoscaling")
    _check_task_range(fields, name.scaling)
    return services.scaling_update(app=name, actor=None, ip_address=request.ip_address, **fields)
