"""Run the whole product on one machine, in order: the embedded Redis (when REDIS_URL is unset),
migrations, the demo team, then a worker with its scheduler, the tick scheduler and the web server.

Ctrl-C (or SIGTERM) stops everything this command started.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments import embedded_redis


class Command(BaseCommand):
    help = "Start everything the dashboard needs locally; Ctrl-C stops it all."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, port: int, **options: Any) -> None:
        children: list[subprocess.Popen[bytes]] = []
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            if not settings.REDIS_URL:
                children.append(self._start_embedded_redis())
            call_command("migrate", interactive=False, verbosity=0)
            call_command("demo_setup")
            manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
            for command in (
                ["rqworker", "--with-scheduler", "default"],
                ["rqcron", "deployments.cron"],
                ["runserver", "--noreload", f"127.0.0.1:{port}"],
            ):
                children.append(subprocess.Popen([*manage, *command]))
            self.stdout.write(f"TinyStacks on http://127.0.0.1:{port}/ (Ctrl-C stops everything)")
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.2)
        finally:
            for child in reversed(children):
                _terminate(child)
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


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
