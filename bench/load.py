"""Part 6, `python -m bench.load`: the whole product under load, deploying while it is polled.

Everything runs as in production, on this machine, as separate processes: gunicorn (4 workers,
DEBUG off), two `manage.py rqworker --with-scheduler default`, the tick (`manage.py rqcron
deployments.cron`, every second), the sandbox (`manage.py sandbox`) as AWS, an embedded Redis on
a socket, and a SQLite database (migrated) — or PostgreSQL when DATABASE_URL is set. Everything
is made through the API: an account, a cluster (provisioned by the workers until ready), 20
apps. Then, for 60 s, 50 clients poll as fast as they are answered — half of them the rollout
fragments the app pages poll (signed in, HTMX), half GET /api/v1/deployments/<id> with a token —
and 2 s in, 20 deploys are started at once through the API. Afterwards (plus a grace period)
every deployment must have succeeded: none lost, none left queued or in flight; and no request
may have failed.

Run alone it prints its rows of the benchmark table; `python -m bench.run` runs it as part 6.
Every process it starts is in its own process group and is stopped (SIGTERM, then SIGKILL) when
it ends, however it ends. All traffic is to 127.0.0.1, bounded in clients and seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.http_load import (
    BASE_DIR,
    HOST,
    Connection,
    Request,
    Sample,
    closed_loop,
    exit_on_sigterm,
    fragment_request,
    free_port,
    gunicorn_command,
    production_env,
    progress,
    send,
    start_process,
    stop_process,
    summarise,
    wait_until_answering,
)

if TYPE_CHECKING:
    from bench.run import Line, Target

CLIENTS = 50
SECONDS = 60.0
QUICK_SECONDS = 30.0
DEPLOYS = 20
DEPLOY_AFTER = 2.0  # seconds into the load when the deploys are started, all at once
GRACE_SECONDS = 60.0  # after the load, for rollouts still going to end
RQ_WORKERS = 2
CLUSTER_READY_TIMEOUT = 300.0
IMAGE = "nginx:1.27"
TOOL = "gunicorn ×4 + rqworker ×2 + tick 1 s"
RESULTS = BASE_DIR / "var" / "bench" / "load.json"
ACTIVE = ("queued", "registering", "updating", "in_progress")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--seconds", type=float, help=f"length of the load (default {SECONDS:g})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SECONDS:g} s of load")
    parser.add_argument("--keep", action="store_true", help="keep the run's var dir and logs")
    parser.add_argument(
        "--json", type=Path, help=f"write the results here (default {RESULTS}); print no table"
    )
    return parser.parse_args(argv)


# The stack


@dataclass
class Stack:
    """The processes of one run, started in order and stopped in reverse."""

    var_dir: Path
    env: dict[str, str]
    web_port: int
    sandbox_port: int
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def log(self, name: str) -> Path:
        return self.var_dir / f"{name}.log"

    def start(self, name: str, command: Sequence[str]) -> subprocess.Popen[bytes]:
        process = start_process(command, self.env, self.log(name))
        self.processes.append((name, process))
        return process

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            stop_process(process)

    def check_alive(self) -> None:
        dead = [name for name, process in self.processes if process.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} stopped; see the logs in {self.var_dir}")

    def tracebacks(self) -> dict[str, int]:
        """Tracebacks each process logged: a 500 or a crashed job leaves one."""
        counts = {}
        for name, _ in self.processes:
            try:
                text = self.log(name).read_text(errors="replace")
            except OSError:
                continue
            counts[name] = text.count("Traceback (most recent call last)")
        return counts


def prepare(parent: str | None) -> tuple[Path, dict[str, str]]:
    """A var dir of this run's own, and the environment every process of it shares."""
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="tinystacks-load-", dir=parent))
    sandbox_port = free_port()
    env = production_env(os.environ, secrets.token_urlsafe(50)) | {
        "TINYSTACKS_VAR_DIR": str(var_dir),
        # The queue is this run's own embedded Redis, never someone else's.
        "REDIS_URL": f"unix://{var_dir / 'redis.sock'}",
        "TINYSTACKS_SANDBOX_URL": f"http://{HOST}:{sandbox_port}",
        "TINYSTACKS_POLL_SECONDS": "1",
    }
    return var_dir, env


def new_stack(var_dir: Path, env: dict[str, str]) -> Stack:
    from urllib.parse import urlsplit

    sandbox_port = urlsplit(env["TINYSTACKS_SANDBOX_URL"]).port
    assert sandbox_port is not None
    return Stack(var_dir, env, web_port=free_port(), sandbox_port=sandbox_port)


def start_stack(stack: Stack) -> None:
    """Every process, each waited for; whatever started is in `stack`, to be stopped."""
    manage = [sys.executable, "manage.py"]
    port = stack.sandbox_port
    progress(f"load: sandbox on {HOST}:{port}")
    sandbox = stack.start("sandbox", [*manage, "sandbox", "--port", str(port)])
    wait_until_answering(port, "/_sandbox/health", sandbox, stack.log("sandbox"), 60)
    progress(f"load: gunicorn ×4 on {HOST}:{stack.web_port}, {RQ_WORKERS} rqworkers, the tick")
    web = stack.start("gunicorn", gunicorn_command(stack.web_port))
    for i in range(RQ_WORKERS):
        stack.start(f"rqworker-{i + 1}", [*manage, "rqworker", "--with-scheduler", "default"])
    stack.start("rqcron", [*manage, "rqcron", "deployments.cron"])
    wait_until_answering(stack.web_port, "/sign-in/", web, stack.log("gunicorn"), 60)
    wait_for_workers(stack, RQ_WORKERS)


def wait_for_workers(stack: Stack, count: int, timeout: float = 60.0) -> None:
    import django_rq
    from rq import Worker

    connection = django_rq.get_connection("default")
    deadline = time.monotonic() + timeout
    while len(Worker.all(connection=connection)) < count:
        stack.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} rqworkers did not start; see {stack.var_dir}")
        time.sleep(0.2)


# Setting up through the API


class Api:
    """The JSON API with a bearer token, for the set-up (one request at a time)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        connection = HTTPConnection(HOST, self.port, timeout=30)
        try:
            connection.request(
                method,
                f"/api/v1/{path}",
                body=json.dumps(body) if body is not None else None,
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                },
            )
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status != expect:
            raise RuntimeError(
                f"{method} /api/v1/{path} answered {response.status}: {data[:300]!r}"
            )
        return json.loads(data)


@dataclass
class Tenant:
    team_id: int
    token: str
    cookie: str
    apps: list[str]


def set_up(stack: Stack, deploys: int) -> Tenant:
    """A team with an owner (signed in, for the pages) and an owner's API token; then through
    the API: the sandbox account, a cluster with room for every task, and the apps."""
    from django.contrib.auth.models import User

    from bench.http_load import session_cookie
    from deployments import services
    from deployments.models import Membership, Team

    team = Team.objects.create(name="Load", slug=f"load-{secrets.token_hex(3)}")
    owner = User.objects.create_user(username=f"{team.slug}-owner")
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    _, token = services.api_token_create(
        team=team, name="load", role=Membership.Role.OWNER, created_by=None
    )
    api = Api(stack.web_port, token)
    api.call("POST", "accounts", {"name": "sandbox", "mode": "sandbox"}, expect=201)
    # 0.25 vCPU tasks: 32 fit an m6i.2xlarge, so 4 hold every app twice over mid-rollout.
    cluster = {"name": "load", "account": "sandbox", "instance_type": "m6i.2xlarge",
               "min_instances": 1, "desired_instances": 4, "max_instances": 8}  # fmt: skip
    api.call("POST", "clusters", cluster, expect=201)
    progress("load: provisioning the cluster through the API (the workers run the steps)")
    deadline = time.monotonic() + CLUSTER_READY_TIMEOUT
    while (status := api.call("GET", "clusters/load"))["status"] != "ready":
        stack.check_alive()
        if status["status"] == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"the cluster is {status['status']}: {status['status_reason']}")
        time.sleep(1)
    names = [f"load-{i:02d}" for i in range(deploys)]
    progress(f"load: {deploys} apps (1 task of 0.25 vCPU, 512 MiB) through the API")
    for name in names:
        app = {"name": name, "cluster": "load", "desired_count": 1, "cpu": 256, "memory": 512}
        api.call("POST", "apps", app, expect=201)
        # Held at one task: the default autoscaling minimum (2) would scale it up mid-rollout.
        api.call("PUT", f"apps/{name}/scaling", {"autoscaling": True, "min_tasks": 1,
                                                  "max_tasks": 1})  # fmt: skip
    return Tenant(team.pk, token, session_cookie(owner), names)


# The attack


FRAGMENTS = "rollout fragments"
API_POLLS = "API polling"
DEPLOY = "deploys"


@dataclass
class Deployed:
    app: str
    sample: Sample
    deployment_id: int | None


async def attack(
    port: int, tenant: Tenant, clients: int, seconds: float
) -> tuple[list[Sample], float, list[Deployed]]:
    """Even clients poll an app's rollout fragment, odd ones its deployment through the API
    (the app itself until its deploy has been accepted); DEPLOY_AFTER seconds in, every app is
    deployed at once, one connection each."""
    apps = tenant.apps
    ids: dict[str, int] = {}
    bearer = {"Authorization": f"Bearer {tenant.token}"}

    def pick(i: int) -> Callable[[], Request]:
        app = apps[(i // 2) % len(apps)]
        if i % 2 == 0:
            request = fragment_request(f"/apps/{app}/", tenant.cookie, FRAGMENTS)
            return lambda: request

        def poll() -> Request:
            known = ids.get(app)
            path = f"/api/v1/deployments/{known}" if known else f"/api/v1/apps/{app}"
            return Request(API_POLLS, "GET", path, bearer)

        return poll

    async def deploy(app: str, began: float) -> Deployed:
        body = json.dumps({"image": IMAGE, "description": "bench.load"}).encode()
        headers = bearer | {"Content-Type": "application/json"}
        request = Request(DEPLOY, "POST", f"/api/v1/apps/{app}/deploys", headers, body)
        connection = Connection(port)
        try:
            sample, answer = await send(connection, request, began)
        finally:
            await connection.close()
        deployment_id = None
        if sample.status == 202:
            deployment_id = int(json.loads(answer)["deployment"]["id"])
            ids[app] = deployment_id
        return Deployed(app, sample, deployment_id)

    async def deploy_all(began: float) -> list[Deployed]:
        await asyncio.sleep(DEPLOY_AFTER)
        progress(f"load: {len(apps)} deploys at once")
        return list(await asyncio.gather(*(deploy(app, began) for app in apps)))

    samples, elapsed, deployed = await closed_loop(port, clients, seconds, pick, deploy_all)
    return samples, elapsed, deployed


# The outcome


def settle(tenant: Tenant, deployed: Sequence[Deployed], grace: float) -> dict[str, Any]:
    """Wait up to `grace` for the rollouts still going, then account for every deployment."""
    from deployments.models import Deployment, Job

    team_deployments = Deployment.objects.filter(app__team_id=tenant.team_id)
    deadline = time.monotonic() + grace
    while team_deployments.filter(status__in=ACTIVE).exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    rows = {
        d.pk: d for d in team_deployments.select_related("app").order_by("pk")
    }  # fmt: skip
    accepted = [d.deployment_id for d in deployed if d.deployment_id is not None]
    lost = [pk for pk in accepted if pk not in rows]
    stuck = [pk for pk, d in rows.items() if d.status in ACTIVE]
    succeeded = [d for d in rows.values() if d.status == Deployment.Status.SUCCEEDED]
    ended_otherwise = {
        f"{d.app.name} #{d.pk}": f"{d.status}: {d.rollout_state_reason}"[:200]
        for d in rows.values()
        if d.status not in ACTIVE and d.status != Deployment.Status.SUCCEEDED
    }
    jobs = Job.objects.filter(team_id=tenant.team_id).values_list("kind", "status")
    return {
        "deploys": len(deployed),
        "accepted": len(accepted),
        "rows": len(rows),
        "unexpected_rows": sorted(set(rows) - set(accepted)),
        "succeeded": len(succeeded),
        "lost": lost,
        "stuck": {str(pk): rows[pk].status for pk in stuck},
        "ended_otherwise": ended_otherwise,
        "deploy_to_succeeded_seconds": [
            round((d.finished_at - d.created_at).total_seconds(), 3)
            for d in succeeded
            if d.finished_at is not None
        ],
        # Every job of the team (provisioning, scaling, deploys) by kind and status.
        "jobs": {f"{kind} {status}": n for (kind, status), n in sorted(Counter(jobs).items())},
    }


def run(seconds: float, keep: bool) -> dict[str, Any]:
    """Start the stack, set it up, attack it, account for everything; stop it all."""
    began = time.monotonic()
    var_dir, env = prepare(os.environ.get("TINYSTACKS_VAR_DIR") or None)
    os.environ.update(env)
    redis = None
    stack: Stack | None = None
    try:
        from deployments import embedded_redis

        redis = embedded_redis.start(var_dir / "redis.sock")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=BASE_DIR,
            env=env,
            check=True,
        )
        import django

        django.setup()
        stack = new_stack(var_dir, env)
        start_stack(stack)
        tenant = set_up(stack, DEPLOYS)
        setup_seconds = time.monotonic() - began
        progress(
            f"load: {CLIENTS} clients for {seconds:g} s, {DEPLOYS} deploys {DEPLOY_AFTER:g} s in"
        )
        load_average_before = os.getloadavg()
        samples, elapsed, deployed = asyncio.run(attack(stack.web_port, tenant, CLIENTS, seconds))
        load_average_after = os.getloadavg()
        stack.check_alive()
        progress(f"load: waiting up to {GRACE_SECONDS:g} s for the rollouts still going")
        outcome = settle(tenant, deployed, GRACE_SECONDS)
        # In the window itself: how many had succeeded by the end of the load.
        window_end = seconds - DEPLOY_AFTER
        outcome["succeeded_within_load"] = sum(
            1 for s in outcome["deploy_to_succeeded_seconds"] if s <= window_end
        )
        tracebacks = stack.tracebacks()
    finally:
        if stack is not None:
            stack.stop()
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
        if not keep:
            shutil.rmtree(var_dir, ignore_errors=True)
    half = CLIENTS // 2
    rows = [
        summarise(
            [s for s in samples if s.kind == FRAGMENTS], part=6, tool=TOOL, clients=half,
            seconds=elapsed,
            scenario=f"{seconds:g} s under load: rollout fragments (HTMX, signed in)",
        ),
        summarise(
            [s for s in samples if s.kind == API_POLLS], part=6, tool=TOOL, clients=CLIENTS - half,
            seconds=elapsed,
            scenario=f"{seconds:g} s under load: GET /api/v1/deployments/<id> (token)",
        ),
        summarise(
            [d.sample for d in deployed], part=6, tool=TOOL, clients=len(deployed),
            seconds=elapsed,
            scenario=f"{len(deployed)} deploys at once, {DEPLOY_AFTER:g} s in "
            "(POST /api/v1/apps/<name>/deploys)",
        ),
    ]  # fmt: skip
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runtime_seconds": round(time.monotonic() - began, 1),
        "setup_seconds": round(setup_seconds, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_average_before],
            "load_average_after": [round(x, 2) for x in load_average_after],
        },
        "database": "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite",
        "options": {
            "clients": CLIENTS,
            "seconds": seconds,
            "deploys": DEPLOYS,
            "deploy_after": DEPLOY_AFTER,
            "grace_seconds": GRACE_SECONDS,
        },  # fmt: skip
        "rows": [row.as_dict() for row in rows],
        "deployments": outcome,
        "tracebacks_in_logs": tracebacks,
    }


# The table


def lines(results: dict[str, Any]) -> tuple[list[Line], list[Target]]:
    """Part 6's rows of the benchmark table, with their targets: no failed request on any row;
    every deploy accepted and succeeded, none lost or stuck."""
    from bench.harness import percentile
    from bench.http_load import load_line, no_errors

    out: list[Line] = []
    targets: list[Target] = []
    outcome = results["deployments"]
    for row in results["rows"]:
        line = load_line(row)
        mine = [no_errors(row)]
        if row["scenario"].startswith(f"{outcome['deploys']} deploys"):
            mine.append(none_lost(outcome))
            wall = outcome["deploy_to_succeeded_seconds"]
            line.rate = "—"  # 20 requests, once: a rate would mean nothing
            line.wall = f"{percentile(wall, 50):.2f}" if wall else "—"
            line.outcome = (
                f"{outcome['accepted']}/{outcome['deploys']} accepted, "
                f"{outcome['succeeded']} succeeded ({outcome['succeeded_within_load']} within the "
                f"load), {len(outcome['lost'])} lost, {len(outcome['stuck'])} stuck"
                + (f", {max(wall):.1f} s slowest" if wall else "")
            )
        targets += mine
        line.target = "; ".join(t.cell() for t in mine)
        out.append(line)
    return out, targets


def none_lost(outcome: dict[str, Any]) -> Target:
    from bench.run import Target

    lost, stuck = len(outcome["lost"]), len(outcome["stuck"])
    unsucceeded = outcome["deploys"] - outcome["succeeded"]
    passed = lost == 0 and stuck == 0 and unsucceeded == 0 and not outcome["unexpected_rows"]
    detail = f"{lost} lost, {stuck} stuck, {outcome['succeeded']}/{outcome['deploys']} succeeded"
    if not passed:
        detail += f": missed by {max(unsucceeded, lost + stuck)}"
        if outcome["ended_otherwise"]:
            detail += f" ({'; '.join(list(outcome['ended_otherwise'].values())[:2])})"
    return Target("part 6: 0 lost or stuck deployments", passed, detail)


def shown(path: Path) -> Path:
    """`path` relative to the project when it is in it."""
    try:
        return path.resolve().relative_to(BASE_DIR)
    except ValueError:
        return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    exit_on_sigterm()
    seconds = args.seconds or (QUICK_SECONDS if args.quick else SECONDS)
    results = run(seconds, args.keep)
    path = args.json or RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.json is None:
        from bench.run import render

        table, targets = lines(results)
        machine = results["machine"]
        print(
            f"TinyStacks under load on {HOST} ({results['database']}; gunicorn ×4, rqworker ×2, "
            f"tick 1 s, sandbox) — {machine['cpus']} CPUs, Python {machine['python']}, load "
            f"average {machine['load_average_before'][0]:.1f} before"
        )
        print(render(table))
        passed = sum(t.passed for t in targets)
        print(
            f"targets: {passed} PASS, {len(targets) - passed} MISS; total runtime "
            f"{results['runtime_seconds']:.0f} s; results in {shown(path)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
