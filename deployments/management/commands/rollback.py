"""manage.py rollback <team>/<app> v<N>: release vN's image and config again, optionally waiting."""

from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from deployments import services
from deployments.management import progress

VERSION = re.compile(r"[vV]?([1-9][0-9]{0,8})")


class Command(BaseCommand):
    help = (
        "Roll an app back to an earlier release: a new release with that release's image and "
        "config vars, reusing its task definition. --wait and the exit codes are as for deploy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app", help="The app, as <team>/<app>, e.g. acme/web.")
        parser.add_argument("version", help="The release to go back to, e.g. v3.")
        progress.add_wait_arguments(parser)

    def handle(
        self, *args: Any, app: str, version: str, wait: bool, timeout: float | None,
        **options: Any,
    ) -> None:  # fmt: skip
        progress.check_timeout(timeout)
        match = VERSION.fullmatch(version)
        if match is None:
            raise progress.refused(f"Name the release as v<number>, e.g. v3; got {version!r}.")
        target = progress.app_from_path(app)
        deployment = progress.start(
            lambda: services.app_rollback(
                app=target, actor=None, version=int(match[1]), ip_address=None
            )
        )
        progress.report_started(self.stdout, deployment)
        if wait:
            progress.wait(self.stdout, deployment.pk, timeout=timeout)
