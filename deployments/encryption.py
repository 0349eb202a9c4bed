"""Secret config vars at rest: Fernet tokens under a MultiFernet, so keys can be rotated.

The first key of TINYSTACKS_SECRET_KEYS encrypts; every key decrypts. A value is decrypted only in
the job that hands it to SSM Parameter Store; it is never rendered, logged or audited.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class UnreadableSecret(Exception):
    """No configured key decrypts this token (a key was removed before rotating)."""


def _cipher() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.TINYSTACKS_SECRET_KEYS])


def encrypt(value: str) -> str:
    return _cipher().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UnreadableSecret(
            "A secret cannot be decrypted with the configured TINYSTACKS_SECRET_KEYS."
        ) from None


def rotate(token: str) -> str:
    """The same value, encrypted under the current first key."""
    try:
        return _cipher().rotate(token.encode()).decode()
    except InvalidToken:
        raise UnreadableSecret(
            "A secret cannot be decrypted with the configured TINYSTACKS_SECRET_KEYS."
        ) from None
