"""Run the whole product on one machine, in order: the embedded Redis (when REDIS_URL is unset),
the local sandbox (simulated AWS), migrations, the demo team, then a worker with its scheduler,
the tick scheduler and the web server.

Ctrl-C (or SIGTERM) stops everything this command started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any
from urllib.error import URLError

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments import embedded_redis
from deployments.management.commands.demo_setup import SANDBOX_OFF


class Command(BaseCommand):
    help = "Start everything the dashboard needs locally; Ctrl-C stops it all."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, port: int, **options: Any) -> None:
        if not settings.TINYSTACKS_ALLOW_SANDBOX:
            raise CommandError(SANDBOX_OFF)  # before anything starts
        # Infrastructure (Redis, sandbox) starts first and stops last, after the app processes.
        infrastructure: list[subprocess.Popen[bytes]] = []
        children: list[subprocess.Popen[bytes]] = []
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            if not settings.REDIS_URL:
                infrastructure.append(self._start_embedded_redis())
            manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
            # The sandbox answers at once and costs nothing: follow rollouts every second.
            os.environ.setdefault("TINYSTACKS_POLL_SECONDS", "1")
            infrastructure.append(subprocess.Popen([*manage, "sandbox"]))
            _wait_for_sandbox(infrastructure[-1])
            call_command("migrate", interactive=False, verbosity=0)
            call_command("demo_setup")
            for command in (
                ["rqworker", "--with-scheduler", "default"],
                ["rqcron", "deployments.cron"],
                ["runserver", "--noreload", f"127.0.0.1:{port}"],
            ):
                children.append(subprocess.Popen([*manage, *command]))
            self.stdout.write(f"TinyStacks on http://127.0.0.1:{port}/ (Ctrl-C stops everything)")
            while not stopping and all(p.poll() is None for p in infrastructure + children):
                time.sleep(0.2)
        finally:
            _terminate(children)
            _terminate(infrastructure)
        if not stopping:
            raise CommandError("a process stopped unexpectedly; everything else was stopped too")

    def _start_embedded_redis(self) -> subprocess.Popen[bytes]:
        socket = settings.EMBEDDED_REDIS_SOCKET
        if embedded_redis.is_answering(socket):
            raise CommandError(
                f"an embedded Redis already answers on {socket}: is another `make run` running?"
            )
        process = embedded_redis.start(socket)
        self.stdout.write(f"Embedded Redis on {socket}")
        return process


def _wait_for_sandbox(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Block until the sandbox answers, so the demo account's verification finds it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError("the local sandbox did not start (see its message above)")
        try:
            urllib.request.urlopen(f"{settings.TINYSTACKS_SANDBOX_URL}/_sandbox/health", timeout=1)
            return
        except (URLError, OSError):
            time.sleep(0.2)
    raise CommandError(f"the local sandbox did not answer on {settings.TINYSTACKS_SANDBOX_URL}")


def _terminate(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM them all at once, then give each up to 10 s before killing it."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
