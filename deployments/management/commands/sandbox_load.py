"""Set the simulated CPU utilisation of a service in the running sandbox, to watch autoscaling."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

TIMEOUT_SECONDS = 10


class Command(BaseCommand):
    help = (
        "Set a sandbox service's simulated average CPU utilisation, e.g. "
        "`sandbox_load my-cluster/web 90`; target tracking policies act on it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target", help="<cluster>/<service>")
        parser.add_argument("percent", type=float, help="CPU utilisation, 0-100")
        parser.add_argument("--region", help="Only look in this region.")

    def handle(
        self, *args: Any, target: str, percent: float, region: str | None, **options: Any
    ) -> None:
        cluster, _, service = target.partition("/")
        if not cluster or not service:
            raise CommandError("Name the service as <cluster>/<service>.")
        body: dict[str, Any] = {"cluster": cluster, "service": service, "cpu": percent}
        if region:
            body["region"] = region
        url = f"{settings.TINYSTACKS_SANDBOX_URL.rstrip('/')}/_sandbox/load"
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                result = json.load(response)
        except urllib.error.HTTPError as error:
            raise CommandError(json.load(error).get("error", str(error))) from error
        except urllib.error.URLError as error:
            raise CommandError(
                f"No sandbox answers at {settings.TINYSTACKS_SANDBOX_URL} ({error.reason}); "
                "start it with `manage.py sandbox`."
            ) from error
        self.stdout.write(
            f"{result['cluster']}/{result['service']} in {result['region']}: "
            f"CPU {result['cpu']:g} % across {result['runningCount']} running tasks."
        )
