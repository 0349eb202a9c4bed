"""ECS task sizes and EC2 instance capacity: the rules moto does not check, so we must.

On the EC2 launch type a task may have any cpu and memory within ECS's bounds that fits the
cluster's instance type; Fargate's cpu/memory table does not apply and is offered only as
suggestions. An instance offers its vCPUs × 1024 CPU units and its memory less what the ECS agent
and the OS keep (we set ECS_RESERVED_MEMORY in the launch template's user data).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError

ECS_RESERVED_MEMORY_MIB = 256
KERNEL_OVERHEAD = 0.05  # the kernel and OS keep roughly this share before ECS sees memory

# ECS's bounds for task-level cpu on EC2 (RegisterTaskDefinition: 0.125 to 192 vCPUs).
MIN_TASK_CPU = 128
MAX_TASK_CPU = 196608
# Docker 20.10+ reserves 6 MiB for a container: less cannot start it.
MIN_TASK_MEMORY = 6

# Fargate's cpu → memory sizes (MiB): common sizes, suggested in forms, never required on EC2.
FARGATE_TASK_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
}


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int

    @property
    def cpu_units(self) -> int:
        return self.vcpus * 1024

    @property
    def task_memory_mib(self) -> int:
        """Memory an instance registers with ECS for tasks."""
        return int(self.memory_mib * (1 - KERNEL_OVERHEAD)) - ECS_RESERVED_MEMORY_MIB


INSTANCE_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in (
        InstanceType("t3.small", 2, 2048),
        InstanceType("t3.medium", 2, 4096),
        InstanceType("t3.large", 2, 8192),
        InstanceType("t3.xlarge", 4, 16384),
        InstanceType("m6i.large", 2, 8192),
        InstanceType("m6i.xlarge", 4, 16384),
        InstanceType("m6i.2xlarge", 8, 32768),
        InstanceType("c6i.large", 2, 4096),
        InstanceType("c6i.xlarge", 4, 8192),
        InstanceType("r6i.large", 2, 16384),
    )
}
DEFAULT_INSTANCE_TYPE = "t3.medium"
INSTANCE_TYPE_CHOICES = [(name, name) for name in INSTANCE_TYPES]


def task_size_suggestions() -> list[tuple[str, str]]:
    """(value, label) pairs "cpu/memory": Fargate's sizes, for a form's list of suggestions."""
    return [
        (f"{cpu}/{memory}", f"{cpu / 1024:g} vCPU, {memory / 1024:g} GB")
        for cpu, memories in FARGATE_TASK_SIZES.items()
        for memory in memories
    ]


def validate_task_size(cpu: int, memory: int, instance_type: str | None = None) -> None:
    """Raise ValidationError (keyed by field) unless ECS would accept this task size on EC2 and
    place it on an instance of `instance_type`."""
    if not MIN_TASK_CPU <= cpu <= MAX_TASK_CPU:
        raise ValidationError(
            {
                "cpu": f"CPU must be between {MIN_TASK_CPU} and {MAX_TASK_CPU} units "
                f"(1024 = 1 vCPU); got {cpu}."
            }
        )
    if memory < MIN_TASK_MEMORY:
        raise ValidationError(
            {"memory": f"Memory must be at least {MIN_TASK_MEMORY} MiB; got {memory}."}
        )
    if instance_type is None:
        return
    instance = INSTANCE_TYPES.get(instance_type)
    if instance is None:
        raise ValidationError({"cpu": f"Unknown instance type {instance_type!r}."})
    limits = {
        "cpu": (cpu, instance.cpu_units, "CPU units"),
        "memory": (memory, instance.task_memory_mib, "MiB"),
    }
    for field, (value, limit, unit) in limits.items():
        if value > limit:
            raise ValidationError(
                {
                    field: f"A task of {cpu} CPU units and {memory} MiB does not fit on a "
                    f"{instance.name} instance, which offers at most {limit} {unit} to tasks. "
                    "Choose a smaller size or a larger instance type for the cluster."
                }
            )
