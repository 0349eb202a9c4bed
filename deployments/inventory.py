"""Live cluster capacity: the tick reads the container instances of ready clusters now and then
and keeps a snapshot on each Cluster row, so that pages show live numbers without calling AWS.

A cluster is read at most once every READ_EVERY_POLLS ticks, and a tick reads at most
CLUSTERS_PER_TICK clusters, the stalest first, for at most half a poll. A failed read is logged
and recorded on the row beside the previous snapshot, which stays; the other clusters are read all
the same.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from deployments.aws import inventory
from deployments.aws.errors import AWS_ERRORS, describe_aws_error
from deployments.aws_access import cluster_access
from deployments.models import Cluster

logger = logging.getLogger(__name__)

# 30 s at the default 5 s poll. Instances take a minute or more to boot and join ECS, so fresher
# numbers would show little more, while every read spends ECS's per-account request budget,
# which the customer's own CI and console share.
READ_EVERY_POLLS = 6
# Keeps a tick short however many clusters there are: past READ_EVERY_POLLS × this many ready
# clusters, each is read less often rather than every tick taking longer.
CLUSTERS_PER_TICK = 20


def capacity_refresh() -> int:
    """Read the live capacity of the ready clusters that are due; returns how many were read."""
    now = timezone.now()
    due = list(
        Cluster.objects.filter(status=Cluster.Status.READY)
        .filter(Q(capacity_tried_at__isnull=True) | Q(capacity_tried_at__lte=now - read_interval()))
        .select_related("account__team", "team")
        .order_by(F("capacity_tried_at").asc(nulls_first=True), "pk")[:CLUSTERS_PER_TICK]
    )
    # A slow or unreachable account must not hold up the next tick's rollout following: what is
    # left when half a poll has gone stays due (stalest first) for the ticks after.
    deadline = time.monotonic() + settings.TINYSTACKS_POLL_SECONDS / 2
    read = 0
    for cluster in due:
        if time.monotonic() > deadline:
            break
        capacity_read(cluster, now)
        read += 1
    return read


def read_interval() -> timedelta:
    # Half a poll short of READ_EVERY_POLLS polls, so that a tick that starts a little early
    # still reads on the 6th tick rather than the 7th.
    return timedelta(seconds=settings.TINYSTACKS_POLL_SECONDS * (READ_EVERY_POLLS - 0.5))


def capacity_read(cluster: Cluster, now: datetime) -> None:
    """Read one cluster's container instances and store them, or why they could not be read."""
    try:
        zones = inventory.read(cluster_access(cluster), cluster.ecs_name)
    except AWS_ERRORS as error:
        message = describe_aws_error(error)
        logger.warning("could not read the instances of %s: %s", cluster, message)
        Cluster.objects.filter(pk=cluster.pk).update(capacity_error=message, capacity_tried_at=now)
        return
    # An update, not save(): a read is not a change to the cluster (updated_at stays).
    Cluster.objects.filter(pk=cluster.pk).update(
        capacity={"zones": [asdict(zone) for zone in zones]},
        capacity_at=now,
        capacity_error="",
        capacity_tried_at=now,
    )
