from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from deployments.services import demo_environment_ensure


class Command(BaseCommand):
    help = "Create the demo team, the user `demo` and a sandbox AWS account (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", help="Set this password instead of a random one.")

    def handle(self, *args: Any, password: str | None, **options: Any) -> None:
        user, new_password = demo_environment_ensure(password=password)
        if new_password:
            self.stdout.write(f"Sign in as {user.get_username()} with password: {new_password}")
        else:
            self.stdout.write(
                f"Demo user {user.get_username()} already exists; its password is unchanged "
                "(pass --password to set one)."
            )
