from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.services import demo_environment_ensure

SANDBOX_OFF = (
    "The demo's account is a local sandbox, which is turned off on this server: "
    "set DEBUG=1 or TINYSTACKS_ALLOW_SANDBOX=1."
)


class Command(BaseCommand):
    help = "Create the demo team, the user `demo` and a sandbox AWS account (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", help="Set this password instead of a random one.")

    def handle(self, *args: Any, password: str | None, **options: Any) -> None:
        if not settings.TINYSTACKS_ALLOW_SANDBOX:
            raise CommandError(SANDBOX_OFF)
        user, new_password = demo_environment_ensure(password=password)
        if new_password:
            self.stdout.write(f"Sign in as {user.get_username()} with password: {new_password}")
        else:
            self.stdout.write(
                f"Demo user {user.get_username()} already exists; its password is unchanged "
                "(pass --password to set one)."
            )
