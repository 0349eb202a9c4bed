"""manage.py deploy <team>/<app> <image>: release an image and roll it out, optionally waiting."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from deployments import services
from deployments.management import progress


class Command(BaseCommand):
    help = (
        "Deploy an image to an app as its next release. The worker and the tracker tick roll it "
        "out; with --wait the command follows the rollout (reading the database) and exits 0 if "
        "it succeeded, 1 if it failed, rolled back, timed out or was cancelled (or --timeout "
        "passed), 2 if the deploy was refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app", help="The app, as <team>/<app>, e.g. acme/web.")
        parser.add_argument("image", help="The image reference, e.g. nginx:1.27.")
        parser.add_argument("--description", default="", help="Shown with the release.")
        progress.add_wait_arguments(parser)

    def handle(
        self, *args: Any, app: str, image: str, description: str, wait: bool,
        timeout: float | None, **options: Any,
    ) -> None:  # fmt: skip
        progress.check_timeout(timeout)
        target = progress.app_from_path(app)
        deployment = progress.start(
            lambda: services.deployment_start(
                app=target, actor=None, image=image, description=description, ip_address=None
            )
        )
        progress.report_started(self.stdout, deployment)
        if wait:
            progress.wait(self.stdout, deployment.pk, timeout=timeout)
