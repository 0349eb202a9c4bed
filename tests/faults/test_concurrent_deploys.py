"""Browsers deploying the same app at the same moment: exactly one rollout starts; every other
request gets a Conflict (the app's row lock serialises them: SELECT … FOR UPDATE on PostgreSQL,
BEGIN IMMEDIATE on SQLite), never a database error."""

from __future__ import annotations

import threading

import pytest
import redis
from django.db import connections

from deployments.models import App, AwsAccount, Cluster, Deployment, Job
from deployments.services import Conflict, deployment_start
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("browsers", [2, 8])
def test_simultaneous_deploys_of_one_app_start_one_rollout(
    browsers: int, account: AwsAccount, rq_redis: redis.Redis
) -> None:
    cluster = factories.make_cluster(account, status=Cluster.Status.READY)
    app = factories.make_app(cluster, name="web")
    start = threading.Barrier(browsers)
    outcomes: list[str] = []

    def browser(n: int) -> None:
        try:
            mine = App.objects.get(pk=app.pk)  # each request loads the app itself
            start.wait(timeout=10)
            deployment_start(app=mine, actor=None, image=f"nginx:1.{n}")
            outcomes.append("deployed")
        except Conflict:
            outcomes.append("conflict")
        except Exception as error:  # a 500 for that browser
            outcomes.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=browser, args=(n,)) for n in range(browsers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["conflict"] * (browsers - 1) + ["deployed"]
    assert app.releases.count() == 1
    (deployment,) = Deployment.objects.filter(app=app)
    assert deployment.status == Deployment.Status.QUEUED
    assert Job.objects.filter(kind="run_deployment", target_id=deployment.pk).count() == 1
    assert rq_redis.llen("rq:queue:default") == 1
