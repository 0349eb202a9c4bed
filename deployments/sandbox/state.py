"""What the simulator must remember between ticks, kept on moto's ECS backend objects.

Living on the backend, it is wiped together with the resources it describes whenever moto resets
(a new `mock_aws`, `/moto-api/reset`, `/_sandbox/reset`), so nothing leaks between tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from moto.core.base_backend import BackendDict, BaseBackend
from moto.ecs.models import EC2ContainerServiceBackend, ecs_backends

_STATE_ATTRIBUTE = "_tinystacks_sandbox"


@dataclass
class TaskSim:
    deployment_id: str
    fate: str  # tasks.HEALTHY, tasks.CRASHLOOP or tasks.UNHEALTHY
    ticks_to_start: int  # counted from when it is placed on an instance
    created_at: float = 0.0  # simulated clock: how long it has waited in PROVISIONING


@dataclass
class ServiceSim:
    client_token: str | None = None
    # (deployment id, task definition ARN) of the last COMPLETED deployment: the rollback target.
    last_completed: tuple[str, str] | None = None
    # The desired count the service last reached a steady state at, None while it is not steady.
    steady_at: int | None = None
    # The last "unable to place" message, so that a stalled rollout does not repeat it every tick.
    placement_failure: str = ""
    # Deployments that ran a healthy task: ECS's circuit breaker stops counting failures for them.
    proven_deployments: set[str] = field(default_factory=set)
    # Simulated load in tasks' worth of CPU (1.0 = one task at 100 %); None until someone sets it.
    cpu_demand: float | None = None
    metric_published_at: float | None = None
    scaled_out_at: float | None = None
    scaled_in_at: float | None = None


@dataclass
class SandboxState:
    clock: float = 0.0  # simulated seconds: ticks × tick length
    services: dict[str, ServiceSim] = field(default_factory=dict)  # by service ARN
    tasks: dict[str, TaskSim] = field(default_factory=dict)  # live tasks, by task ARN
    stopped_at: dict[str, float] = field(default_factory=dict)  # by task ARN, to forget them later
    # Since when managed scaling has wanted fewer instances, by capacity provider ARN.
    capacity_low_since: dict[str, float] = field(default_factory=dict)

    def service(self, arn: str) -> ServiceSim:
        return self.services.setdefault(arn, ServiceSim())


def state_of(backend: EC2ContainerServiceBackend) -> SandboxState:
    state = vars(backend).get(_STATE_ATTRIBUTE)
    if not isinstance(state, SandboxState):
        state = SandboxState()
        vars(backend)[_STATE_ATTRIBUTE] = state
    return state


def ecs_backends_in_use() -> list[EC2ContainerServiceBackend]:
    """The ECS backends moto has created so far, one per account and region touched."""
    return [
        backend for account in list(ecs_backends.values()) for backend in list(account.values())
    ]


def existing_backend[B: BaseBackend](backends: BackendDict[B], near: BaseBackend) -> B | None:
    """The backend of another service in the same account and region, if moto has created it
    (looking it up the usual way would create it)."""
    account = backends.get(near.account_id)
    return account.get(near.region_name) if account is not None else None
