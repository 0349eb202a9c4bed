"""Typed readers for settings taken from the environment.

Each one fails with an ImproperlyConfigured that names the variable, so a bad value stops start-up
with one clear line instead of surfacing later as a confusing error.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def env_str(name: str, default: str = "") -> str:
    """The variable's value, or the contents of the file named by `<name>_FILE` (for secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as error:
            raise ImproperlyConfigured(
                f"{name}_FILE: cannot read {file_name!r}: {error.strerror}"
            ) from error
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be 1/0, true/false, yes/no or on/off; got {raw!r}")


def env_float(name: str, default: float, *, minimum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number; got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {raw!r}")
    return value


def env_int(name: str, default: int, *, minimum: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {raw!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_database(name: str, default_sqlite: Path) -> dict[str, Any]:
    url = env_str(name) or f"sqlite:///{default_sqlite}"
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} is not a valid database URL (expected e.g. "
            f"postgres://user@host:5432/name or sqlite:///path/db.sqlite3); got {url!r}"
        ) from None
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} must name a database; got {url!r}")
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Web and worker processes write concurrently: take the write lock when a transaction
        # starts (so select_for_update's guarantee holds) and wait for it instead of failing.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        # A file, not memory, so that worker processes started by tests see the test data.
        config["TEST"] = {"NAME": f"{config['NAME']}.test"}
    return dict(config)


def env_redis_url(name: str) -> str:
    """The Redis URL, or "" when unset (then the embedded Redis is used)."""
    url = env_str(name)
    if url and urlsplit(url).scheme not in REDIS_SCHEMES:
        raise ImproperlyConfigured(
            f"{name} must start with redis://, rediss:// or unix://; got {url!r}"
        )
    return url


def fernet_keys(name: str, *, secret_key: str) -> list[bytes]:
    """Fernet keys, comma-separated, newest first; unset = one derived from SECRET_KEY."""
    raw = env_str(name)
    if not raw:
        return [base64.urlsafe_b64encode(hashlib.sha256(f"fernet:{secret_key}".encode()).digest())]
    keys = [key.strip().encode() for key in raw.split(",") if key.strip()]
    for key in keys:
        try:
            if len(base64.urlsafe_b64decode(key)) != 32:
                raise ValueError
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must hold Fernet keys (32 url-safe base64-encoded bytes each), "
                "comma-separated, newest first"
            ) from None
    return keys


def secret_key(*, debug: bool, local_file: Path) -> str:
    """SECRET_KEY from the environment; for local use only, a key generated once into var/."""
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not debug:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set when DEBUG is off")
    if not local_file.exists():
        local_file.parent.mkdir(parents=True, exist_ok=True)
        local_file.write_text(secrets.token_urlsafe(50))
        local_file.chmod(0o600)
    return local_file.read_text().strip()
