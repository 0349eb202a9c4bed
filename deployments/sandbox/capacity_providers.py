"""Capacity providers as ECS keeps them: in use by a cluster's services and tasks, deleted only
once no cluster holds them, and gone a tick after DeleteCapacityProvider.

moto detaches a provider from a cluster whatever still uses it, and deletes one that a cluster
holds, at once. ECS refuses the first (ResourceInUseException) and answers the second with the
provider marked DELETE_FAILED; a provider it may delete shows DELETE_IN_PROGRESS, then disappears.
"""

from __future__ import annotations

from typing import Any

from moto.ecs.exceptions import ECSException
from moto.ecs.models import CapacityProvider, Cluster, EC2ContainerServiceBackend

from deployments.sandbox.ecs_services import capacity_provider_strategy, set_fields

DELETE_IN_PROGRESS = "DELETE_IN_PROGRESS"
DELETE_FAILED = "DELETE_FAILED"


class ResourceInUseException(ECSException):
    def __init__(self) -> None:
        super().__init__(
            "ResourceInUseException",
            "The specified capacity provider is in use and cannot be removed.",
        )


def apply() -> None:
    _patch_put_cluster_capacity_providers()
    _patch_delete_capacity_provider()


def names(provider: CapacityProvider) -> tuple[str, str]:
    """What a cluster or a strategy may call the provider by."""
    return provider.name, provider.capacity_provider_arn


def _in_use(backend: EC2ContainerServiceBackend, cluster: Cluster, provider_name: str) -> bool:
    """A service of the cluster names the provider in its strategy, or a task runs on it."""
    services = (
        s
        for s in backend.services.values()
        if s.cluster_name == cluster.name and s.status in ("ACTIVE", "DRAINING")
    )
    return any(
        entry["capacityProvider"] == provider_name
        for service in services
        for entry in capacity_provider_strategy(service)
    ) or any(
        task.capacity_provider_name == provider_name and task.last_status != "STOPPED"
        for task in backend.tasks.get(cluster.name, {}).values()
    )


def _patch_put_cluster_capacity_providers() -> None:
    original = EC2ContainerServiceBackend.put_cluster_capacity_providers

    def put_cluster_capacity_providers(
        self: EC2ContainerServiceBackend,
        cluster_name: str,
        capacity_providers: list[str] | None,
        default_capacity_provider_strategy: list[dict[str, Any]] | None,
    ) -> Cluster:
        cluster = self._get_cluster(cluster_name)
        kept = capacity_providers or []
        removed = [name for name in cluster.capacity_providers or [] if name not in kept]
        if any(_in_use(self, cluster, name.split("/")[-1]) for name in removed):
            raise ResourceInUseException()
        return original(self, cluster_name, capacity_providers, default_capacity_provider_strategy)

    EC2ContainerServiceBackend.put_cluster_capacity_providers = put_cluster_capacity_providers  # type: ignore[method-assign]


def holding_cluster(
    backend: EC2ContainerServiceBackend, provider: CapacityProvider
) -> Cluster | None:
    return next(
        (
            cluster
            for cluster in backend.clusters.values()
            if cluster.status == "ACTIVE"
            and any(name in names(provider) for name in cluster.capacity_providers or [])
        ),
        None,
    )


def _patch_delete_capacity_provider() -> None:
    def delete_capacity_provider(
        self: EC2ContainerServiceBackend, name_or_arn: str
    ) -> CapacityProvider:
        provider: CapacityProvider = self._get_provider(name_or_arn)  # type: ignore[assignment]  # as moto
        cluster = holding_cluster(self, provider)
        if cluster is not None:
            provider.update_status = DELETE_FAILED
            set_fields(
                provider,
                update_status_reason=(
                    "The capacity provider cannot be deleted because it is associated with "
                    f"cluster: {cluster.name}. Remove the capacity provider from the cluster and "
                    "try again."
                ),
            )
        else:
            provider.update_status = DELETE_IN_PROGRESS
            set_fields(provider, update_status_reason=None)
        return provider

    EC2ContainerServiceBackend.delete_capacity_provider = delete_capacity_provider  # type: ignore[method-assign]


def finish_deletions(backend: EC2ContainerServiceBackend) -> None:
    """A provider whose deletion was accepted is gone by the next tick."""
    for name, provider in list(backend.capacity_providers.items()):
        if provider.update_status == DELETE_IN_PROGRESS:
            del backend.capacity_providers[name]
