"""The tools a team would otherwise use, run as they are shipped, as subprocesses, against the
sandbox: `ecs deploy` (the ecs-deploy package) and `aws ecs wait services-stable` (awscli v1).

Both reach the sandbox through its endpoint URL with dummy credentials, and read no AWS config
or credentials file of the machine's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import botocore

from bench.harness import POLL_SECONDS, REGION

BIN = Path(sys.executable).parent
ECS_DEPLOY = BIN / "ecs"
AWS_CLI = BIN / "aws"
# ecs-deploy's verdicts ("Deployment successful", "Deployment failed", "Deployment Failed! …",
# "Rollback successful"): the moment it prints one is the moment it has told its user.
ECS_DEPLOY_VERDICT = re.compile(r"(Deployment|Rollback) (successful|failed)", re.I)
# Fields of DescribeTaskDefinition's answer that RegisterTaskDefinition takes back (what a
# `jq` in a deploy script keeps).
REGISTRABLE_FIELDS = (
    "family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions",
    "volumes", "placementConstraints", "requiresCompatibilities", "cpu", "memory", "pidMode",
    "ipcMode", "proxyConfiguration", "ephemeralStorage", "runtimePlatform",
)  # fmt: skip


@dataclass
class PeerRun:
    """One run of a peer tool: when it started, when it said done, what it said."""

    tool: str
    service: str
    started_at: float
    said_done_at: float = 0.0
    exit_code: int | None = None
    output: list[tuple[float, str]] = field(default_factory=list)

    @property
    def reported_success(self) -> bool:
        return self.exit_code == 0

    @property
    def verdict(self) -> str:
        if self.exit_code is None:
            return "did not finish"
        return "success" if self.exit_code == 0 else f"failure (exit {self.exit_code})"

    def tail(self, lines: int = 3) -> str:
        return " | ".join(text for _, text in self.output[-lines:])


def peer_env(endpoint_url: str, **extra: str) -> dict[str, str]:
    """The environment of a CI job deploying to the sandbox: endpoint, region, dummy keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "PYTHONUNBUFFERED": "1",  # lines arrive when printed, so their time is the tool's
        **extra,
    }


class RunningPeer:
    """A peer process whose output lines are timestamped as they arrive."""

    def __init__(self, run: PeerRun, command: list[str], env: dict[str, str]) -> None:
        self.run = run
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.run.output.append((time.time(), line.rstrip()))

    def wait(self, timeout: float) -> PeerRun:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        exited_at = time.time()
        self._reader.join(timeout=5)
        self.run.exit_code = self.process.returncode
        self.run.said_done_at = exited_at
        return self.run


# ecs-deploy


def start_ecs_deploy(
    endpoint_url: str, cluster: str, service: str, image: str, timeout: int
) -> RunningPeer:
    """`ecs deploy` as its README shows it: new image for the container, wait for the rollout,
    polling every `--sleep-time` seconds (1, its default, and our poll period)."""
    command = [
        str(ECS_DEPLOY), "deploy", cluster, service,
        "--image", "app", image,
        "--timeout", str(timeout),
        "--sleep-time", str(int(POLL_SECONDS)),
        "--region", REGION,
    ]  # fmt: skip
    run = PeerRun("ecs-deploy", service, started_at=time.time())
    return RunningPeer(run, command, peer_env(endpoint_url))


def ecs_deploy(endpoint_url: str, cluster: str, service: str, image: str, timeout: int) -> PeerRun:
    run = start_ecs_deploy(endpoint_url, cluster, service, image, timeout).wait(timeout + 30)
    return with_ecs_deploy_verdict_time(run)


def with_ecs_deploy_verdict_time(run: PeerRun) -> PeerRun:
    """Done = the line that tells the user how it went (it then deregisters the old revision)."""
    verdicts = [at for at, text in run.output if ECS_DEPLOY_VERDICT.search(text)]
    if verdicts:
        run.said_done_at = verdicts[-1]
    return run


# aws ecs wait services-stable


def waiter_data_path(directory: Path, delay: float) -> Path:
    """An AWS_DATA_PATH whose ECS waiters poll every `delay` s instead of 15 s.

    botocore looks models up in AWS_DATA_PATH before its own; the CLI has no --delay option. The
    attempts grow so that the waiter still gives up after its usual 10 minutes.
    """
    shipped = Path(botocore.__file__).parent / "data" / "ecs" / "2014-11-13" / "waiters-2.json"
    model = json.loads(shipped.read_text())
    stable = model["waiters"]["ServicesStable"]
    stable["maxAttempts"] = int(stable["delay"] * stable["maxAttempts"] / delay)
    stable["delay"] = delay
    target = directory / "ecs" / "2014-11-13"
    target.mkdir(parents=True, exist_ok=True)
    (target / "waiters-2.json").write_text(json.dumps(model))
    return directory


def _aws(args: list[str], env: dict[str, str], run: PeerRun, timeout: float) -> str:
    """One `aws` command; its output is also kept on the run."""
    run.exit_code = None  # until it exits: a timeout leaves the run unfinished
    done = subprocess.run(
        [str(AWS_CLI), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    now = time.time()
    for line in (done.stdout + done.stderr).splitlines():
        run.output.append((now, line))
    run.exit_code = done.returncode
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)
    return done.stdout


def registrable(task_definition: dict[str, object], image: str) -> dict[str, object]:
    """The task definition with a new image for container `app`, as RegisterTaskDefinition
    takes it."""
    kept = {k: v for k, v in task_definition.items() if k in REGISTRABLE_FIELDS}
    containers = json.loads(json.dumps(kept["containerDefinitions"]))
    for container in containers:
        if container["name"] == "app":
            container["image"] = image
    kept["containerDefinitions"] = containers
    return kept


def aws_cli_deploy(
    endpoint_url: str,
    cluster: str,
    service: str,
    family: str,
    image: str,
    *,
    waiter_delay: float | None,
    timeout: float = 700,
) -> PeerRun:
    """What a deploy script built on the AWS CLI does: read the current task definition, register
    it again with the new image, point the service at it, `aws ecs wait services-stable`.

    `waiter_delay` None keeps the waiter's shipped 15 s poll period.
    """
    label = "aws ecs wait" + (" (15 s default)" if waiter_delay is None else "")
    run = PeerRun(label, service, started_at=time.time())
    scratch = Path(tempfile.mkdtemp(prefix="tinystacks-bench-aws-"))
    try:
        extra = {}
        if waiter_delay is not None:
            extra["AWS_DATA_PATH"] = str(waiter_data_path(scratch / "models", waiter_delay))
        env = peer_env(endpoint_url, **extra)
        endpoint = ["--endpoint-url", endpoint_url, "--region", REGION]
        described = _aws(
            ["ecs", "describe-task-definition", "--task-definition", family,
             "--query", "taskDefinition", "--output", "json", *endpoint],
            env, run, 60,
        )  # fmt: skip
        request = scratch / "task-definition.json"
        request.write_text(json.dumps(registrable(json.loads(described), image)))
        arn = _aws(
            ["ecs", "register-task-definition", "--cli-input-json", f"file://{request}",
             "--query", "taskDefinition.taskDefinitionArn", "--output", "text", *endpoint],
            env, run, 60,
        ).strip()  # fmt: skip
        _aws(
            ["ecs", "update-service", "--cluster", cluster, "--service", service,
             "--task-definition", arn, "--query", "service.serviceName", "--output", "text",
             *endpoint],
            env, run, 60,
        )  # fmt: skip
        _aws(
            ["ecs", "wait", "services-stable", "--cluster", cluster, "--services", service,
             *endpoint],
            env, run, timeout,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        pass  # the exit code (or None for a timeout) is the verdict
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    run.said_done_at = time.time()
    return run


def versions() -> dict[str, str]:
    """The peers' versions, for the results file."""
    from importlib.metadata import version

    return {name: version(name) for name in ("ecs-deploy", "awscli", "botocore", "boto3")}
