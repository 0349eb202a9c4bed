"""The sandbox as `manage.py sandbox` serves it: moto over HTTP on 127.0.0.1, ticking by itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.core.management import call_command
from django.test import override_settings

from deployments.sandbox import LABEL
from deployments.sandbox.server import Sandbox
from tests.sandbox.conftest import (
    CREDENTIALS,
    REGION,
    Clients,
    create_cluster,
    create_service,
    describe,
    register_task_definition,
)

MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"


def call(url: str, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        url, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    running = Sandbox(port=0, tick_seconds=0.05)  # port 0: any free port
    running.start()
    yield running
    running.stop()
    running.reset()  # leave moto empty for the mock_aws tests


@pytest.fixture
def remote(sandbox: Sandbox) -> Clients:
    call(f"{sandbox.url}/_sandbox/reset", "POST")
    return Clients(endpoint_url=sandbox.url)


def test_the_sandbox_says_what_it_is(sandbox: Sandbox) -> None:
    for path in ("/_sandbox/", "/_sandbox/health"):
        assert call(sandbox.url + path)["sandbox"] == LABEL == "Local sandbox (simulated AWS)"


def test_a_rollout_over_http_settles_and_the_requests_are_counted(
    sandbox: Sandbox, remote: Clients
) -> None:
    ecs = remote.ecs
    cluster = create_cluster(remote, instances=2)
    wait_for(
        lambda: len(ecs.list_container_instances(cluster="demo")["containerInstanceArns"]) == 2
    )
    create_service(ecs, cluster, register_task_definition(ecs), desired=2)

    ecs.get_waiter("services_stable").wait(
        cluster="demo", services=["web"], WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )

    service = describe(ecs, cluster)
    assert service["deployments"][0]["rolloutState"] == "COMPLETED"
    stats = call(f"{sandbox.url}/_sandbox/stats")
    assert stats["ecs:CreateService"] == 1
    assert stats["ecs:RegisterTaskDefinition"] == 1
    assert stats["ecs:DescribeServices"] >= 2
    assert stats["ec2:CreateVpc"] == 1
    assert stats["autoscaling:CreateAutoScalingGroup"] == 1  # query protocol: the Action field


def test_load_set_with_sandbox_load_reaches_cloudwatch(sandbox: Sandbox, remote: Clients) -> None:
    ecs = remote.ecs
    cluster = create_cluster(remote, instances=1)
    wait_for(lambda: bool(ecs.list_container_instances(cluster="demo")["containerInstanceArns"]))
    create_service(ecs, cluster, register_task_definition(ecs), desired=2)
    wait_for(lambda: describe(ecs, cluster)["runningCount"] == 2)
    output = StringIO()

    with override_settings(TINYSTACKS_SANDBOX_URL=sandbox.url):
        call_command("sandbox_load", "demo/web", "85", stdout=output)

    assert "demo/web" in output.getvalue() and "85" in output.getvalue()

    def published() -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        points: list[dict[str, Any]] = remote.cloudwatch.get_metric_statistics(
            Namespace="AWS/ECS",
            MetricName="CPUUtilization",
            Dimensions=[
                {"Name": "ClusterName", "Value": "demo"},
                {"Name": "ServiceName", "Value": "web"},
            ],
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        return points

    wait_for(lambda: bool(published()))
    assert published()[0]["Maximum"] == 85.0
    assert call(f"{sandbox.url}/_sandbox/stats")["cloudwatch:GetMetricStatistics"] >= 1


def test_reset_forgets_every_resource_and_the_counters(sandbox: Sandbox, remote: Clients) -> None:
    remote.ecs.create_cluster(clusterName="demo")
    assert call(f"{sandbox.url}/_sandbox/stats") == {"ecs:CreateCluster": 1}

    assert call(f"{sandbox.url}/_sandbox/reset", "POST") == {"reset": True}

    assert call(f"{sandbox.url}/_sandbox/stats") == {}
    assert remote.ecs.list_clusters()["clusterArns"] == []


def test_load_for_an_unknown_service_is_refused(sandbox: Sandbox, remote: Clients) -> None:
    with pytest.raises(urllib.error.HTTPError) as error:
        call(f"{sandbox.url}/_sandbox/load", "POST", {"cluster": "x", "service": "y", "cpu": 5})
    assert error.value.code == 404


def test_aws_managed_iam_policies_exist(sandbox: Sandbox, remote: Clients) -> None:
    iam = boto3.client(  # type: ignore[call-overload]
        "iam", region_name=REGION, endpoint_url=sandbox.url, **CREDENTIALS
    )

    policy = iam.get_policy(
        PolicyArn="arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
    )["Policy"]

    assert policy["PolicyName"] == "AmazonEC2ContainerServiceforEC2Role"


def test_manage_py_sandbox_serves_until_sigterm() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(MANAGE_PY), "sandbox", "--port", str(port), "--tick", "0.2"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DEBUG": "1"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert first_line.startswith(f"{LABEL} on http://127.0.0.1:{port}")
        assert call(f"http://127.0.0.1:{port}/_sandbox/health")["sandbox"] == LABEL
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert "stopped" in process.stdout.read()
    finally:
        process.kill()
        process.wait()
