from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from deployments.encryption import UnreadableSecret
from deployments.services import secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every secret config var under the first key of TINYSTACKS_SECRET_KEYS. "
        "Put the new key first (new,old), run this, then drop the old key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = secrets_rotate()
        except UnreadableSecret as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Re-encrypted {count} secret values under the current key.")
