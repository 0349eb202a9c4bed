"""`python -m bench.run`: every benchmark in one run, printed as one table.

Everything runs against a fresh var dir (SQLite database, secret key, embedded Redis socket) made
for this run and removed after it: parts 1-3 against a sandbox on a free 127.0.0.1 port, parts
4-5 against the dashboard's pages (in-process, then served by gunicorn), part 6 in a process of
its own (`python -m bench.load`, the whole product under load). The results are also written to
var/bench/results.json. See bench/README.md for how to read the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.deploy_latency import LatencyRow
    from bench.http_load import LoadRow
    from bench.pages import PageRow
    from bench.rollouts import FollowRow

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS = BASE_DIR / "var" / "bench" / "results.json"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--parts", default="1,2,3,4,5,6", help="which parts to run, e.g. 1,3 (default: all)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="part 2 up to 100 rollouts, 5 latency samples; shorter timings and loads (4-6)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's var dir")
    return parser.parse_args(argv)


def prepare_environment() -> Path:
    """A var dir of the run's own, DEBUG on, the embedded Redis; then Django, migrated."""
    parent = os.environ.get("TINYSTACKS_VAR_DIR") or None
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="tinystacks-bench-", dir=parent))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tinystacks.settings"
    os.environ["DEBUG"] = "1"
    os.environ["TINYSTACKS_VAR_DIR"] = str(var_dir)
    # The benchmark's queue is its own embedded Redis: it flushes it, so never someone else's.
    os.environ.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=BASE_DIR,
        env=os.environ | {"DEBUG": "1"},
        check=True,
    )
    import django

    django.setup()
    # Jobs and the tracker log every step at INFO; the table is the output here.
    logging.getLogger().setLevel(logging.WARNING)
    return var_dir


# The table


@dataclass
class Line:
    part: str
    scenario: str
    tool: str
    outcome: str
    calls: str = "—"
    follow: str = "—"
    wall: str = "—"
    latency: str = "—"
    queries: str = "—"  # parts 4-6: SQL queries per page
    rate: str = "—"  # requests per second
    ms: str = "—"  # server (part 4) or client-seen (5, 6) time per request
    target: str = "—"


HEADER = Line(
    part="part", scenario="scenario", tool="tool", outcome="said", calls="AWS calls/rollout",
    follow="follow calls/rollout", wall="wall s p50", latency="latency s p50 / p95",
    queries="SQL queries", rate="req/s", ms="ms p50 / p95 / p99", target="target",
)  # fmt: skip
# Shown only when a row printed has something in them, so each part's table stays narrow.
OPTIONAL_COLUMNS = ("calls", "follow", "wall", "latency", "queries", "rate", "ms")


def seconds(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


def p50_p95(values: Sequence[float]) -> str:
    from bench.harness import percentile

    if not values:
        return "—"
    if len(values) == 1:
        return seconds(values[0])
    return f"{seconds(percentile(values, 50))} / {seconds(percentile(values, 95))}"


def said(row: FollowRow) -> str:
    """What the tool told its user, and, after a rollback, whether that was true."""
    from deployments.models import Deployment

    if row.rollouts == 1:
        text = row.outcomes[0]
    elif row.tool.startswith("TinyStacks"):
        text = f"{row.reported_success}/{row.rollouts} succeeded"
    else:
        text = f"{row.reported_success}/{row.rollouts} success"
    if "rollback" in row.scenario:
        false_success = row.reported_success > 0
        right = row.outcomes[0] == Deployment.Status.ROLLED_BACK or not false_success
        text += " (false success)" if false_success else (" (right)" if right else "")
    if "lost" in row.extra and row.part == 2:
        text += f", {row.extra['lost']} lost"
    return text


def follow_line(row: FollowRow) -> Line:
    from bench.harness import percentile

    return Line(
        part=str(row.part),
        scenario=row.scenario,
        tool=row.tool,
        outcome=said(row),
        calls=f"{row.total_calls / row.rollouts:.1f}",
        follow=f"{row.following_calls / row.rollouts:.1f}",
        wall=seconds(percentile(row.wall_seconds, 50)),
        latency=p50_p95(row.detection_seconds),
    )


def latency_line(row: LatencyRow) -> Line:
    samples = len(row.seconds)
    return Line(
        part=str(row.part),
        scenario=row.scenario,
        tool=row.tool,
        outcome=f"{samples} samples" + (f", {row.missing} never arrived" if row.missing else ""),
        calls="—",
        follow="—",
        wall="—",
        latency=p50_p95(row.seconds),
    )


def render(lines: Sequence[Line]) -> str:
    shown = [
        name
        for name in vars(HEADER)
        if name not in OPTIONAL_COLUMNS or any(getattr(line, name) != "—" for line in lines)
    ]
    rows = [[getattr(line, name) for name in shown] for line in [HEADER, *lines]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def fmt(row: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(rows[0]), rule, *(fmt(row) for row in rows[1:])])


# Targets: each checked on the rows it is about, written into their target cell.


@dataclass
class Target:
    name: str
    passed: bool
    detail: str

    def cell(self) -> str:
        return f"{'PASS' if self.passed else 'MISS'} {self.detail}"


def at_most(name: str, value: float, bound: float, unit: str, what: str) -> Target:
    """value ≤ bound, saying by how much it is missed otherwise."""
    if value <= bound:
        return Target(name, True, f"{what} {value:g}{unit} ≤ {bound:g}{unit}")
    over = value - bound
    share = f", +{over / bound:.0%}" if bound else ""
    return Target(
        name, False, f"{what} {value:g}{unit} > {bound:g}{unit}: missed by {over:g}{unit}{share}"
    )


def find(rows: Sequence[FollowRow], scenario: str, tool: str) -> FollowRow | None:
    return next(
        (r for r in rows if r.scenario.startswith(scenario) and r.tool.startswith(tool)), None
    )


def part_one_targets(rows: Sequence[FollowRow]) -> dict[int, list[Target]]:
    from bench.rollouts import DETECTION_BOUND
    from deployments.models import Deployment

    checks: dict[int, list[Target]] = {}

    def add(row: FollowRow | None, target: Target) -> None:
        if row is not None:
            checks.setdefault(id(row), []).append(target)

    for scenario, share in (("one rollout", 2), ("10 rollouts", 10)):
        ours, theirs = find(rows, scenario, "TinyStacks"), find(rows, scenario, "ecs-deploy")
        if ours is None or theirs is None:
            continue
        per_rollout = ours.following_calls / ours.rollouts
        bound = theirs.following_calls / theirs.rollouts / share
        add(ours, at_most(
            f"{scenario}: follow calls ≤ 1/{share} of ecs-deploy's", round(per_rollout, 2),
            round(bound, 2), "", f"follow calls/rollout (≤ 1/{share} of ecs-deploy's)",
        ))  # fmt: skip
        worst = max(ours.detection_seconds, default=math.inf)
        add(ours, at_most(
            f"{scenario}: detection ≤ one tick + 1 s", round(worst, 2), DETECTION_BOUND, " s",
            "slowest detection",
        ))  # fmt: skip
    crashed = find(rows, "crashing image", "TinyStacks")
    if crashed is not None:
        status = crashed.outcomes[0]
        add(crashed, Target(
            "rollback: no false success", status == Deployment.Status.ROLLED_BACK,
            f"said {status}" + ("" if status == "rolled_back" else ", expected rolled_back"),
        ))  # fmt: skip
    return checks


def part_two_targets(row: FollowRow) -> list[Target]:
    from bench.rollouts import describe_stats

    stats = describe_stats(row)
    exact = stats["ticks_as_expected"] == stats["ticks"]
    detail = (
        f"DescribeServices/tick = Σ⌈in flight/10⌉ per cluster on {stats['ticks_as_expected']:g}/"
        f"{stats['ticks']:g} ticks (first {stats['first_tick_calls']:g})"
    )
    if not exact:
        detail += f": missed by up to {stats['worst_excess']:g} calls on a tick"
    calls = Target(f"{row.scenario}: DescribeServices grow with clusters, not apps", exact, detail)
    unfinished = row.rollouts - row.reported_success
    lost = Target(
        f"{row.scenario}: no deployment lost",
        row.extra["lost"] == 0 and unfinished == 0,
        f"{row.extra['lost']} lost, {unfinished} not succeeded",
    )
    return [calls, lost]


def tick_note(row: FollowRow) -> str:
    from bench.rollouts import describe_stats

    stats = describe_stats(row)
    return f"; tick {stats['tick_p50']:.2f} s p50, {stats['tick_max']:.2f} s max"


# Running it all


@dataclass
class Results:
    part1: list[FollowRow]
    part2: list[FollowRow]
    part3: list[LatencyRow]
    part4: list[PageRow]
    part5: list[LoadRow]
    part6: dict[str, Any] | None
    sandbox_info: dict[str, Any]


def run_parts(parts: set[str], quick: bool, var_dir: Path) -> Results:
    from bench import http_load, pages

    results = Results([], [], [], [], [], None, {})
    # Pages first, on a database no other part has written to yet: the admin lists every
    # team's rows, and its smaller size must be small.
    if "4" in parts:
        results.part4 = pages.part_four(quick=quick)
    if "5" in parts:
        results.part5 = http_load.part_five(var_dir, quick=quick)
    # Their rollout in flight is on no sandbox: the tick of parts 1-3 must not follow it.
    pages.end_rollouts_in_flight()
    if parts & {"1", "2", "3"}:
        run_rollout_parts(parts, quick, var_dir, results)
    if "6" in parts:
        results.part6 = run_load(var_dir, quick)
    return results


def run_rollout_parts(parts: set[str], quick: bool, var_dir: Path, results: Results) -> None:
    """Parts 1-3, on one sandbox in this process and the run's embedded Redis."""
    from django.conf import settings

    from bench import deploy_latency, rollouts
    from bench.harness import BenchSandbox, bench_team
    from deployments import embedded_redis

    redis = embedded_redis.start(settings.EMBEDDED_REDIS_SOCKET)
    sandbox = BenchSandbox()
    sandbox.start()
    settings.TINYSTACKS_SANDBOX_URL = sandbox.url
    os.environ["TINYSTACKS_SANDBOX_URL"] = sandbox.url  # for the worker of part 3
    try:
        team, account = bench_team()
        if "1" in parts:
            results.part1 = rollouts.part_one(sandbox, team, account, quick=quick)
        # Before part 2, whose hundreds of services would slow every simulated tick.
        if "3" in parts:
            samples = 5 if quick else deploy_latency.SAMPLES
            results.part3 = deploy_latency.part_three(sandbox, team, account, var_dir, samples)
        if "2" in parts:
            scenarios = [s for s in rollouts.SCALE_SCENARIOS if not quick or s[0] <= 100]
            results.part2 = rollouts.part_two(sandbox, team, account, scenarios)
        ticks = sandbox.simulator.tick_durations
        results.sandbox_info = {
            "url": sandbox.url,
            "tick_seconds": sandbox.tick_seconds,
            "simulator_ticks": len(ticks),
            "simulator_tick_seconds_max": round(max(ticks, default=0.0), 4),
        }
    finally:
        sandbox.stop()
        redis.terminate()
        redis.wait(timeout=10)


def run_load(var_dir: Path, quick: bool) -> dict[str, Any]:
    """Part 6 is `python -m bench.load`, in a process of its own: its own var dir (under this
    run's), database, Redis, sandbox, web server and workers, all DEBUG off."""
    output = var_dir / "load.json"
    command = [sys.executable, "-m", "bench.load", "--json", str(output)]
    process = subprocess.Popen(
        command + (["--quick"] if quick else []),
        cwd=BASE_DIR,
        env=os.environ | {"TINYSTACKS_VAR_DIR": str(var_dir)},
        stdout=subprocess.DEVNULL,
    )
    try:
        code = process.wait()
    finally:
        if process.poll() is None:  # interrupted: let it stop what it started
            process.terminate()
            process.wait()
    if code:
        raise RuntimeError(f"part 6 (python -m bench.load) failed with exit status {code}")
    results: dict[str, Any] = json.loads(output.read_text())
    return results


def build_lines(results: Results) -> tuple[list[Line], list[Target]]:
    from bench import http_load, load, pages

    part1, part2, part3 = results.part1, results.part2, results.part3
    lines: list[Line] = []
    targets: list[Target] = []
    checks = part_one_targets(part1)
    for row in part1:
        line = follow_line(row)
        mine = checks.get(id(row), [])
        targets += mine
        line.target = "; ".join(t.cell() for t in mine) or "—"
        lines.append(line)
    for row in part2:
        line = follow_line(row)
        mine = part_two_targets(row)
        targets += mine
        line.target = "; ".join(t.cell() for t in mine) + tick_note(row)
        lines.append(line)
    lines += [latency_line(row) for row in part3]
    for more, checked in (
        pages.lines(results.part4),
        http_load.lines(results.part5),
        load.lines(results.part6) if results.part6 else ([], []),
    ):
        lines += more
        targets += checked
    return lines, targets


def as_dicts(rows: Sequence[FollowRow | LatencyRow | PageRow | LoadRow]) -> list[dict[str, Any]]:
    return [row.as_dict() for row in rows]


def write_results(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from bench.http_load import exit_on_sigterm

    exit_on_sigterm()
    began = time.monotonic()
    var_dir = prepare_environment()
    from bench import peers

    load_before = os.getloadavg()
    try:
        results = run_parts(set(args.parts.split(",")), args.quick, var_dir)
    finally:
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)
    lines, targets = build_lines(results)
    runtime = time.monotonic() - began
    versions = peers.versions()
    sandbox_info = results.sandbox_info
    print(
        f"TinyStacks vs ecs-deploy {versions['ecs-deploy']} and awscli {versions['awscli']} on "
        f"the local sandbox (tick {sandbox_info.get('tick_seconds', 1.0):g} s; every tool polls "
        f"every 1 s unless its row says otherwise) — {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {load_before[0]:.1f} at the start"
    )
    print(render(lines))
    passed = sum(t.passed for t in targets)
    print(
        f"targets: {passed} PASS, {len(targets) - passed} MISS; total runtime {runtime:.0f} s; "
        f"results in {RESULTS.relative_to(BASE_DIR)}"
    )
    write_results(
        RESULTS,
        {
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "runtime_seconds": round(runtime, 1),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_average_at_start": [round(x, 2) for x in load_before],
                "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            },
            "versions": versions,
            "sandbox": sandbox_info,
            "options": {"parts": args.parts, "quick": args.quick},
            "table": [vars(line) for line in lines],
            "targets": [vars(t) for t in targets],
            "part1_follow": as_dicts(results.part1),
            "part2_many_rollouts": as_dicts(results.part2),
            "part3_deploy_latency": as_dicts(results.part3),
            "part4_pages": as_dicts(results.part4),
            "part5_http": as_dicts(results.part5),
            "part6_load": results.part6,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
