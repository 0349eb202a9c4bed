"""Parts 1 and 2: following rollouts.

Part 1 puts TinyStacks next to `ecs deploy` and `aws ecs wait services-stable` on the same
v1 → v2 rollout of the same kind of service (its own copy per tool, all deployed at v1 by
TinyStacks first), then on ten rollouts at once, then on an image that crashes so that ECS's
circuit breaker rolls it back. Part 2 has one TinyStacks worker follow 1 to 500 rollouts at once
on 1 and 10 clusters.

TinyStacks is driven here as its worker would drive it: `deployment_start`, the deploy job run in
this process, then `tracker.follow_rollouts()` — the tick — every POLL_SECONDS.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db.models import Count

from bench import peers
from bench.harness import (
    POLL_SECONDS,
    BenchSandbox,
    Call,
    create_apps,
    ecs_client,
    following_calls,
    forget_queries,
    percentile,
    provision_cluster,
    run_jobs_in_process,
)
from deployments import services, tracker
from deployments.models import App, AwsAccount, Cluster, Deployment, Team

V1 = "nginx:1.27"
V2 = "nginx:1.28"
CRASHING = "nginx:crashloop"  # the sandbox's failure marker: tasks exit before RUNNING
TERMINAL = frozenset(
    {
        Deployment.Status.SUCCEEDED,
        Deployment.Status.FAILED,
        Deployment.Status.ROLLED_BACK,
        Deployment.Status.TIMED_OUT,
        Deployment.Status.CANCELLED,
    }
)
DETECTION_BOUND = POLL_SECONDS + 1.0  # the target: within one tick plus one second
PEER_TIMEOUT = 180  # seconds an `ecs deploy` may wait before it gives up
ROLLOUT_DEADLINE = 240.0  # seconds TinyStacks gets to see rollouts end before they count as lost
TEN = 10


@dataclass
class FollowRow:
    """One tool following one scenario's rollouts: what it said, at what cost, how fast."""

    part: int
    scenario: str
    tool: str
    rollouts: int
    outcomes: list[str]
    reported_success: int  # how many rollouts the tool called a success
    calls: dict[str, int]  # the sandbox's per-action counters for this tool's run
    following_calls: int
    wall_seconds: list[float]
    detection_seconds: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"total_calls": self.total_calls}


@dataclass
class Tick:
    at: float
    seconds: float
    in_flight: int
    describe_calls: int
    expected_describe_calls: int  # ceil(in flight / 10) per cluster, counted before the tick


@dataclass
class TinyStacksRun:
    started_at: float
    deployments: list[Deployment]
    done_at: dict[int, float]
    ticks: list[Tick]
    calls: list[Call]


def progress(message: str) -> None:
    """Progress goes to stderr; stdout is for the one table."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# TinyStacks following rollouts


def follow_with_tinystacks(
    sandbox: BenchSandbox,
    apps: Sequence[App],
    image: str,
    *,
    all_at_once: bool = False,
    deadline: float = ROLLOUT_DEADLINE,
) -> TinyStacksRun:
    """Deploy `image` to every app and tick every POLL_SECONDS until each rollout has ended.

    With `all_at_once`, simulated ECS is held still while the deploys start, so that every
    rollout begins on the same tick however long starting hundreds of them takes; the ticks (and
    the clock for wall time) then start when ECS does.
    """
    began_at = started_at = time.time()
    holding = sandbox.paused() if all_at_once else nullcontext()
    with holding:
        deployments = [services.deployment_start(app=app, actor=None, image=image) for app in apps]
        for deployment in deployments:
            run_jobs_in_process(deployment)
        forget_queries()
    if all_at_once:
        started_at = time.time()
    done_at: dict[int, float] = {}
    ticks: list[Tick] = []
    pending = {d.pk: d for d in deployments}
    for tick_start in tick_times(started_at, deadline):
        if not pending:
            break
        expected = expected_describe_calls(in_flight_per_cluster())
        before = time.perf_counter()
        in_flight = tracker.follow_rollouts()
        seconds = time.perf_counter() - before
        ended = time.time()
        describes = sum(
            1 for c in sandbox.calls_since(tick_start, ended) if c.action == "ecs:DescribeServices"
        )
        ticks.append(Tick(tick_start, seconds, in_flight, describes, expected))
        statuses = dict(Deployment.objects.filter(pk__in=list(pending)).values_list("pk", "status"))
        for pk, status in statuses.items():
            if status in TERMINAL:
                done_at[pk] = ended
                del pending[pk]
        forget_queries()
    for deployment in deployments:
        deployment.refresh_from_db()
    return TinyStacksRun(started_at, deployments, done_at, ticks, sandbox.calls_since(began_at))


def in_flight_per_cluster() -> list[int]:
    """How many rollouts the next tick follows on each cluster."""
    return list(
        Deployment.objects.filter(status=Deployment.Status.IN_PROGRESS)
        .values("app__cluster")
        .annotate(n=Count("pk"))
        .values_list("n", flat=True)
    )


def tick_times(start: float, deadline: float) -> Iterator[float]:
    """The moments the scheduled tick runs: every POLL_SECONDS from `start`; a late tick does not
    make the next ones bunch up."""
    next_at = start + POLL_SECONDS
    while time.time() < start + deadline:
        time.sleep(max(0.0, next_at - time.time()))
        now = time.time()
        yield now
        next_at = max(next_at + POLL_SECONDS, now)


def ecs_settled_at(sandbox: BenchSandbox, deployment: Deployment) -> float | None:
    """When ECS settled this deployment the way TinyStacks says it ended."""
    state = "COMPLETED" if deployment.status == Deployment.Status.SUCCEEDED else "FAILED"
    return next(
        (
            s.at
            for s in sandbox.simulator.settled
            if s.deployment_id == deployment.ecs_deployment_id and s.state == state
        ),
        None,
    )


def tinystacks_row(
    sandbox: BenchSandbox, run: TinyStacksRun, *, part: int, scenario: str, tool: str
) -> FollowRow:
    detection = []
    for deployment in run.deployments:
        settled = ecs_settled_at(sandbox, deployment)
        if settled is not None and deployment.pk in run.done_at:
            detection.append(run.done_at[deployment.pk] - settled)
    ticks = run.ticks
    return FollowRow(
        part=part,
        scenario=scenario,
        tool=tool,
        rollouts=len(run.deployments),
        outcomes=[d.status for d in run.deployments],
        reported_success=sum(d.status == Deployment.Status.SUCCEEDED for d in run.deployments),
        calls=dict(sorted(count_actions(run.calls).items())),
        following_calls=following_calls(run.calls),
        wall_seconds=[run.done_at[pk] - run.started_at for pk in sorted(run.done_at)],
        detection_seconds=detection,
        extra={
            "lost": sum(d.status not in TERMINAL for d in run.deployments),
            "ticks": len(ticks),
            "describe_calls_per_tick": [t.describe_calls for t in ticks],
            "expected_describe_calls_per_tick": [t.expected_describe_calls for t in ticks],
            "in_flight_per_tick": [t.in_flight for t in ticks],
            "tick_seconds": [round(t.seconds, 4) for t in ticks],
        },
    )


def count_actions(calls: Sequence[Call]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in calls:
        counts[call.action] = counts.get(call.action, 0) + 1
    return counts


# Part 1: the peers


@dataclass
class FollowCluster:
    team: Team
    cluster: Cluster
    apps: dict[str, App]


def set_up_part_one(sandbox: BenchSandbox, team: Team, account: AwsAccount) -> FollowCluster:
    """One cluster; per tool, its own identical services, all rolled out at v1 by TinyStacks."""
    progress("part 1: provisioning the cluster and deploying v1 of every service")
    cluster = provision_cluster(team, account, "follow", instances=6, max_instances=10)
    names = [
        *(f"one-{tool}" for tool in ("tinystacks", "ecs-deploy", "aws-wait", "aws-wait-15s")),
        *(f"crash-{tool}" for tool in ("tinystacks", "ecs-deploy", "aws-wait")),
        *(f"ten-{tool}-{i}" for tool in ("tinystacks", "ecs-deploy") for i in range(TEN)),
    ]
    apps = create_apps(team, cluster, names, desired_count=2)
    setup = follow_with_tinystacks(sandbox, apps, V1)
    failed = [d.app.name for d in setup.deployments if d.status != Deployment.Status.SUCCEEDED]
    if failed:
        raise RuntimeError(f"v1 did not roll out to {failed}")
    return FollowCluster(team, cluster, {app.name: app for app in apps})


@contextmanager
def counted(sandbox: BenchSandbox) -> Iterator[dict[str, Any]]:
    """The sandbox's counters and call log for one tool's run, counters zeroed first."""
    sandbox.clear_counters()
    since = time.time()
    measured: dict[str, Any] = {}
    yield measured
    measured["counters"] = sandbox.counters()
    measured["calls"] = sandbox.calls_since(since)


def peer_row(
    sandbox: BenchSandbox,
    runs: Sequence[peers.PeerRun],
    measured: dict[str, Any],
    *,
    cluster: str,
    scenario: str,
    settled_state: str,
) -> FollowRow:
    detection = []
    for run in runs:
        settled = sandbox.settled_since(cluster, run.service, run.started_at, settled_state)
        if settled is not None:
            detection.append(run.said_done_at - settled.at)
    return FollowRow(
        part=1,
        scenario=scenario,
        tool=runs[0].tool + (f" ×{len(runs)}" if len(runs) > 1 else ""),
        rollouts=len(runs),
        outcomes=[run.verdict for run in runs],
        reported_success=sum(run.reported_success for run in runs),
        calls=measured["counters"],
        following_calls=following_calls(measured["calls"]),
        wall_seconds=[run.said_done_at - run.started_at for run in runs],
        detection_seconds=detection,
        extra={"output_tail": [run.tail() for run in runs]},
    )


def image(round_: int) -> str:
    """The image of round `round_` (0 = v2): every round is one more task definition change."""
    return f"nginx:1.{28 + round_}"


def merged(rows: Sequence[FollowRow]) -> FollowRow:
    """Several rounds of one tool on one scenario, as one row."""
    first = rows[0]
    calls: dict[str, int] = {}
    extra: dict[str, Any] = {}
    for row in rows:
        for action, count in row.calls.items():
            calls[action] = calls.get(action, 0) + count
        for key, value in row.extra.items():
            extra[key] = extra.get(key, []) + (value if isinstance(value, list) else [value])
    if "lost" in extra:
        extra["lost"] = sum(extra["lost"])
    return FollowRow(
        part=first.part,
        scenario=first.scenario,
        tool=first.tool,
        rollouts=sum(r.rollouts for r in rows),
        outcomes=[o for r in rows for o in r.outcomes],
        reported_success=sum(r.reported_success for r in rows),
        calls=dict(sorted(calls.items())),
        following_calls=sum(r.following_calls for r in rows),
        wall_seconds=[s for r in rows for s in r.wall_seconds],
        detection_seconds=[s for r in rows for s in r.detection_seconds],
        extra=extra | {"rounds": len(rows)},
    )


def tinystacks_round(
    sandbox: BenchSandbox, apps: Sequence[App], image: str, *, scenario: str, tool: str
) -> FollowRow:
    with counted(sandbox) as measured:
        run = follow_with_tinystacks(sandbox, apps, image)
    row = tinystacks_row(sandbox, run, part=1, scenario=scenario, tool=tool)
    row.calls = measured["counters"]  # the sandbox's own counters, as for the peers
    return row


def one_rollout(sandbox: BenchSandbox, env: FollowCluster, rounds: int) -> list[FollowRow]:
    """The same v1 → v2 rollout, followed by each tool in turn; `rounds` times (v2 → v3, …)
    because one rollout's numbers hang on where the poll fell."""
    scenario = "one rollout v1→v2"
    cluster = env.cluster.ecs_name
    progress(f"part 1: {scenario}, {rounds} rounds — TinyStacks")
    ours = [
        tinystacks_round(sandbox, [env.apps["one-tinystacks"]], image(r), scenario=scenario,
                         tool="TinyStacks")
        for r in range(rounds)
    ]  # fmt: skip

    progress(f"part 1: {scenario}, {rounds} rounds — ecs deploy")
    ecs_deploy = []
    for r in range(rounds):
        with counted(sandbox) as measured:
            run = peers.ecs_deploy(sandbox.url, cluster, "one-ecs-deploy", image(r), PEER_TIMEOUT)
        ecs_deploy.append(
            peer_row(sandbox, [run], measured, cluster=cluster, scenario=scenario,
                     settled_state="COMPLETED")
        )  # fmt: skip

    rows = [merged(ours), merged(ecs_deploy)]
    # The shipped 15 s period is measured once: it only shows what the default costs in time.
    for service, delay, times in (
        ("one-aws-wait", POLL_SECONDS, rounds),
        ("one-aws-wait-15s", None, 1),
    ):
        progress(f"part 1: {scenario}, {times} rounds — aws ecs wait (poll {delay or 15:g} s)")
        family = f"tinystacks-{env.team.slug}-{service}"
        waits = []
        for r in range(times):
            with counted(sandbox) as measured:
                run = peers.aws_cli_deploy(
                    sandbox.url, cluster, service, family, image(r), waiter_delay=delay
                )
            waits.append(
                peer_row(sandbox, [run], measured, cluster=cluster, scenario=scenario,
                         settled_state="COMPLETED")
            )  # fmt: skip
        rows.append(merged(waits))
    return rows


def ten_at_once(sandbox: BenchSandbox, env: FollowCluster, rounds: int) -> list[FollowRow]:
    """Ten rollouts on one cluster: one TinyStacks worker against ten `ecs deploy` processes."""
    scenario = "10 rollouts at once, 1 cluster"
    cluster = env.cluster.ecs_name
    progress(f"part 1: {scenario}, {rounds} rounds — TinyStacks")
    apps = [env.apps[f"ten-tinystacks-{i}"] for i in range(TEN)]
    ours = [
        tinystacks_round(sandbox, apps, image(r), scenario=scenario, tool="TinyStacks (1 worker)")
        for r in range(rounds)
    ]
    progress(f"part 1: {scenario}, {rounds} rounds — 10 × ecs deploy")
    theirs = []
    for r in range(rounds):
        with counted(sandbox) as measured:
            running = [
                peers.start_ecs_deploy(
                    sandbox.url, cluster, f"ten-ecs-deploy-{i}", image(r), PEER_TIMEOUT
                )
                for i in range(TEN)
            ]
            runs = [peers.with_ecs_deploy_verdict_time(p.wait(PEER_TIMEOUT + 30)) for p in running]
        theirs.append(
            peer_row(sandbox, runs, measured, cluster=cluster, scenario=scenario,
                     settled_state="COMPLETED")
        )  # fmt: skip
    return [merged(ours), merged(theirs)]


def rollback(sandbox: BenchSandbox, env: FollowCluster) -> list[FollowRow]:
    """A crashing image: ECS's circuit breaker marks the rollout FAILED and rolls back to v1.

    Detection is measured from the moment ECS marked it FAILED: that is when the truth is known.
    """
    scenario = "crashing image → circuit-breaker rollback"
    cluster = env.cluster.ecs_name
    rows = []
    progress(f"part 1: {scenario} — TinyStacks")
    rows.append(
        tinystacks_round(sandbox, [env.apps["crash-tinystacks"]], CRASHING, scenario=scenario,
                         tool="TinyStacks")
    )  # fmt: skip

    progress(f"part 1: {scenario} — ecs deploy")
    with counted(sandbox) as measured:
        ecs_deploy = peers.ecs_deploy(
            sandbox.url, cluster, "crash-ecs-deploy", CRASHING, PEER_TIMEOUT
        )
    rows.append(
        peer_row(sandbox, [ecs_deploy], measured, cluster=cluster, scenario=scenario,
                 settled_state="FAILED")
    )  # fmt: skip

    progress(f"part 1: {scenario} — aws ecs wait services-stable")
    family = f"tinystacks-{env.team.slug}-crash-aws-wait"
    with counted(sandbox) as measured:
        waited = peers.aws_cli_deploy(
            sandbox.url, cluster, "crash-aws-wait", family, CRASHING, waiter_delay=POLL_SECONDS
        )
    rows.append(
        peer_row(sandbox, [waited], measured, cluster=cluster, scenario=scenario,
                 settled_state="FAILED")
    )  # fmt: skip
    return rows


ONE_ROLLOUT_ROUNDS = 5
TEN_AT_ONCE_ROUNDS = 3


def part_one(
    sandbox: BenchSandbox, team: Team, account: AwsAccount, *, quick: bool = False
) -> list[FollowRow]:
    env = set_up_part_one(sandbox, team, account)
    one, ten = (2, 1) if quick else (ONE_ROLLOUT_ROUNDS, TEN_AT_ONCE_ROUNDS)
    return [
        *one_rollout(sandbox, env, one),
        *ten_at_once(sandbox, env, ten),
        *rollback(sandbox, env),
    ]


# Part 2: many rollouts, one worker

# (rollouts, clusters): 1 rollout is the same on 1 and on 10 clusters, so it is measured once.
SCALE_SCENARIOS = ((1, 1), (10, 1), (100, 1), (500, 1), (10, 10), (100, 10), (500, 10))


def expected_describe_calls(apps_per_cluster: Sequence[int]) -> int:
    """What the design promises: ceil(services / 10) DescribeServices per cluster per tick."""
    return sum(math.ceil(n / 10) for n in apps_per_cluster if n)


def spread(rollouts: int, clusters: int) -> list[int]:
    """How many of `rollouts` apps land on each cluster, round-robin."""
    return [len(range(i, rollouts, clusters)) for i in range(clusters)]


def part_two(
    sandbox: BenchSandbox,
    team: Team,
    account: AwsAccount,
    scenarios: Sequence[tuple[int, int]] = SCALE_SCENARIOS,
) -> list[FollowRow]:
    """N first deploys (CreateService) on C clusters, started with simulated ECS held still so
    they all roll out at once, followed by one worker's tick; each scenario's services are
    deleted afterwards so that the next one starts from an idle sandbox."""
    layouts = sorted({clusters for _, clusters in scenarios})
    largest = {c: max(n for n, k in scenarios if k == c) for c in layouts}
    clusters_by_layout: dict[int, list[Cluster]] = {}
    for layout in layouts:
        per_cluster = max(spread(largest[layout], layout))
        # 0.25 vCPU tasks: 32 fit an m6i.2xlarge; keep a spare instance or two.
        instances = min(100, math.ceil(per_cluster / 32) + 2)
        progress(f"part 2: provisioning {layout} cluster(s) of {instances} m6i.2xlarge")
        clusters_by_layout[layout] = [
            provision_cluster(team, account, f"many{layout}-{i}", instances=instances)
            for i in range(layout)
        ]
    rows = []
    for rollouts, layout in scenarios:
        progress(f"part 2: {rollouts} rollouts at once on {layout} cluster(s)")
        rows.append(scale_scenario(sandbox, team, clusters_by_layout[layout], rollouts))
    return rows


def scale_scenario(
    sandbox: BenchSandbox, team: Team, clusters: Sequence[Cluster], rollouts: int
) -> FollowRow:
    counts = spread(rollouts, len(clusters))
    apps: list[App] = []
    for index, (cluster, count) in enumerate(zip(clusters, counts, strict=True)):
        names = [f"s{rollouts}x{len(clusters)}-c{index}-{i}" for i in range(count)]
        apps += create_apps(team, cluster, names, desired_count=1)
    run = follow_with_tinystacks(sandbox, apps, V1, all_at_once=True)
    scenario = (
        f"{rollouts} rollout{'s' if rollouts > 1 else ''} at once, "
        f"{len(clusters)} cluster{'s' if len(clusters) > 1 else ''}"
    )
    row = tinystacks_row(sandbox, run, part=2, scenario=scenario, tool="TinyStacks (1 worker)")
    row.extra["apps_per_cluster"] = counts
    delete_services(sandbox, apps)
    return row


def delete_services(sandbox: BenchSandbox, apps: Sequence[App]) -> None:
    """Delete a finished scenario's ECS services, so the simulator's ticks stay as short as they
    were for the next scenario."""
    ecs = ecs_client(sandbox)
    for app in apps:
        ecs.delete_service(cluster=app.cluster.ecs_name, service=app.name, force=True)


def describe_stats(row: FollowRow) -> dict[str, float]:
    """DescribeServices per tick: on the first tick (every rollout in flight) and against what
    ceil(in flight / 10) per cluster allows on every tick; tick durations."""
    per_tick = row.extra["describe_calls_per_tick"] or [0]
    expected = row.extra["expected_describe_calls_per_tick"] or [0]
    seconds = row.extra["tick_seconds"] or [0.0]
    return {
        "first_tick_calls": per_tick[0],
        "first_tick_expected": expected[0],
        "ticks": len(per_tick),
        "ticks_as_expected": sum(c == e for c, e in zip(per_tick, expected, strict=True)),
        "worst_excess": max(c - e for c, e in zip(per_tick, expected, strict=True)),
        "tick_p50": percentile(seconds, 50),
        "tick_max": max(seconds),
    }
