"""Status changes, applied as conditional updates so that concurrent writers cannot both win."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from deployments.models import Cluster, Deployment, Job

Stateful = Cluster | Deployment | Job


def sources_of(model: type[Stateful], to: str) -> list[str]:
    """The statuses from which `model` may move to `to`, as its TRANSITIONS declare."""
    return [source for source, targets in model.TRANSITIONS.items() if to in targets]


def transition(instance: Stateful, to: str, *, where: Q | None = None, **fields: Any) -> bool:
    """Move `instance` to `to`, writing `fields` too, if its row still allows that move (and
    matches `where`, when given).

    True when this call made the change; False when the row had moved on (another worker won, or
    the move is not allowed from where the row is). Expressions in `fields` (F(...)) are written
    to the row but not reflected on `instance`: refresh it if you need them.
    """
    model = type(instance)
    updated = (
        model._default_manager.filter(pk=instance.pk, status__in=sources_of(model, to))
        .filter(where or Q())
        .update(status=to, **fields)
    )
    if updated:
        instance.status = to
        for name, value in fields.items():
            if not hasattr(value, "resolve_expression"):
                setattr(instance, name, value)
    return bool(updated)
