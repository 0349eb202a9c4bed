"""Run the local sandbox (simulated AWS) in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

DEFAULT_PORT = 4566


class Command(BaseCommand):
    help = "Serve the AWS APIs the product calls (moto plus an ECS rollout simulator) locally."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port",
            type=int,
            default=urlsplit(settings.TINYSTACKS_SANDBOX_URL).port or DEFAULT_PORT,
            help="Port on 127.0.0.1 (default: the port of TINYSTACKS_SANDBOX_URL).",
        )
        parser.add_argument(
            "--tick", type=float, default=1.0, help="Seconds between simulator ticks (default 1)."
        )

    def handle(self, *args: Any, port: int, tick: float, **options: Any) -> None:
        if tick <= 0:
            raise CommandError("--tick must be a positive number of seconds.")
        try:
            from deployments.sandbox import LABEL
            from deployments.sandbox.server import Sandbox
        except RuntimeError as error:  # SandboxVersionError: the wrong moto is installed
            raise CommandError(str(error)) from error

        stopping = threading.Event()

        def stop(signum: int, frame: object) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        sandbox = Sandbox(
            port=port,
            tick_seconds=tick,
            iam_propagation_seconds=settings.TINYSTACKS_SANDBOX_IAM_PROPAGATION_SECONDS,
        )
        try:
            sandbox.start()
        except OSError as error:
            raise CommandError(f"Cannot listen on 127.0.0.1:{port}: {error}") from error
        self.stdout.write(f"{LABEL} on {sandbox.url} (Ctrl-C stops it)")
        try:
            while not stopping.wait(0.5):
                pass
        finally:
            sandbox.stop()
            self.stdout.write(f"{LABEL} stopped.")
